//! A TCP stream whose reads go straight to the socket while it has data.
//!
//! glommio's `TcpStream` reads optimistically, but after every read that does not fill the
//! buffer it arms a readiness poll in its ring, and the next read waits for that poll's
//! completion even when the socket already holds the next bytes: every read of a busy
//! connection then costs a ring submission, a completion and a wake (several
//! `io_uring_enter` per read, measured in issue 13). [`Direct`] reads the socket itself
//! (`recv` with `MSG_DONTWAIT`) and falls back to glommio's read, which waits for readiness
//! through the ring, only when the socket is empty. Writes are glommio's (they already send
//! first and wait only when the socket buffer is full).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

pub struct Direct {
    inner: TcpStream,
    fd: RawFd,
}

impl Direct {
    pub fn new(inner: TcpStream) -> Direct {
        let fd = inner.as_raw_fd();
        Direct { inner, fd }
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for Direct {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let Some(r) = super::sys::recv_now(me.fd, buf) {
            return Poll::Ready(r);
        }
        // Empty: glommio waits for readiness (its poll stays armed across wakes) and reads.
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Direct {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
