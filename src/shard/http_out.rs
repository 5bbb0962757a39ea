//! HTTP targets on a shard: a message routed to `http` or to a URL, or a status report for
//! one submitted with a callback, is sent as one HTTP request (a JSON POST; a Kannel
//! `dlr-url`: a GET) and its answer reported to the flow like any attempt (see
//! [`crate::http::target`] for what answers mean). The flow's retries, failover, receipts and
//! CDR legs apply as for SMPP targets.
//!
//! Connections are kept alive and pooled per endpoint (scheme, host, port) and shard; at most
//! `[http-target] connections` requests are in flight per endpoint and shard, the flow's queue
//! holds the rest (a slow target fills its queue up to `queue_limit`, then new messages for it
//! are refused: backpressure, not memory). A request not answered within `timeout` is a
//! temporary failure. A kept connection the server closed before answering is retried once
//! on a new one.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use hashbrown::HashMap;

use super::ShardState;
use crate::flow::Outcome;
use crate::http::target::{self, About, Call, Response, Verdict};
use crate::ids::{HttpId, MessageId};
use crate::smpp::{CommandStatus, Pdu};
use crate::store::record::Kind;

/// Most of a response the gateway reads (the status is all it needs; the body is drained
/// to keep the connection).
const MAX_RESPONSE: usize = 1 << 20;
/// Connections kept idle per endpoint and shard.
const MAX_IDLE: usize = 64;

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

struct Pool {
    idle: RefCell<Vec<Conn>>,
    permits: Semaphore,
}

/// A shard's pools, by endpoint.
#[derive(Default)]
pub struct HttpOut {
    pools: RefCell<HashMap<HttpId, Rc<Pool>>>,
}

/// Why an exchange failed (all temporary for the message).
struct Failed {
    why: String,
    /// No byte of an answer came: on a reused connection, worth one more try.
    silent: bool,
}

impl ShardState {
    fn pool(&self, h: HttpId) -> Rc<Pool> {
        self.http_out
            .pools
            .borrow_mut()
            .entry(h)
            .or_insert_with(|| {
                Rc::new(Pool {
                    idle: RefCell::new(Vec::new()),
                    permits: Semaphore::new(self.shared.config.http_target.connections as u64),
                })
            })
            .clone()
    }

    /// Sends message `id` (a status report when `kind` is `Receipt`) to the URL `to` names.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn http_send(
        self: Rc<Self>,
        h: HttpId,
        id: MessageId,
        billid: MessageId,
        kind: Kind,
        to: Bytes,
        pdu: Bytes,
        origin: Bytes,
    ) {
        glommio::spawn_local(async move {
            let outcome = self
                .http_attempt(h, id, billid, kind, &to, &pdu, &origin)
                .await;
            self.report(id, outcome);
        })
        .detach();
    }

    #[allow(clippy::too_many_arguments)]
    async fn http_attempt(
        &self,
        h: HttpId,
        id: MessageId,
        billid: MessageId,
        kind: Kind,
        to: &[u8],
        stored: &Bytes,
        origin: &[u8],
    ) -> Outcome {
        let call = match Call::parse(to) {
            Ok(c) => c,
            Err(e) => {
                self.log_undelivered(|| {
                    format!("message {id} to {:?}: {e}", String::from_utf8_lossy(to))
                });
                return Outcome::Permanent(CommandStatus::RINVDSTADR);
            }
        };
        let Ok(pdu) = Pdu::decode(stored) else {
            return Outcome::Permanent(CommandStatus::RSYSERR);
        };
        let body = if call.get {
            String::new()
        } else {
            let (id_hex, billid_hex) = (id.to_hex(), billid.to_hex());
            target::json_body(
                &pdu,
                &About {
                    id: std::str::from_utf8(&id_hex).unwrap_or(""),
                    billid: std::str::from_utf8(&billid_hex).unwrap_or(""),
                    origin: std::str::from_utf8(origin).unwrap_or(""),
                    report: kind == Kind::Receipt,
                    zero: self.shared.coding_named(origin),
                },
            )
        };
        let mut req = Vec::with_capacity(256 + body.len());
        let proxied = !call.url.tls && self.shared.config.http_target.proxy.is_some();
        target::request(&call, &body, proxied, &mut req);
        let pool = self.pool(h);
        let Ok(_permit) = pool.permits.acquire_permit(1).await else {
            return Outcome::Temporary(CommandStatus::RX_T_APPN);
        };
        let timeout = self.shared.config.http_target.timeout;
        let result = glommio::timer::timeout(timeout, async {
            Ok(self.exchange(&pool, &call, &req).await)
        })
        .await;
        let count = |r: usize| {
            if let Some(m) = &self.metrics {
                m.http_target(r);
            }
        };
        let status = match result {
            Ok(Ok(status)) => status,
            Ok(Err(f)) => {
                count(1);
                self.log_undelivered(|| format!("message {id} to {}: {}", call.url.key(), f.why));
                return Outcome::Temporary(CommandStatus::RX_T_APPN);
            }
            Err(_) => {
                count(3);
                self.log_undelivered(|| {
                    format!(
                        "message {id} to {}: no answer within {} ms",
                        call.url.key(),
                        timeout.as_millis()
                    )
                });
                return Outcome::Timeout;
            }
        };
        match target::verdict(status) {
            Verdict::Delivered => {
                count(0);
                Outcome::Delivered
            }
            Verdict::Temporary => {
                count(1);
                self.log_undelivered(|| {
                    format!(
                        "message {id} to {}: HTTP {status} (retried)",
                        call.url.key()
                    )
                });
                Outcome::Temporary(CommandStatus::RX_T_APPN)
            }
            Verdict::Permanent => {
                count(2);
                self.log_undelivered(|| {
                    format!("message {id} to {}: HTTP {status} (final)", call.url.key())
                });
                Outcome::Permanent(CommandStatus::RX_P_APPN)
            }
        }
    }

    /// One request and its answer's status, on a kept connection or a new one.
    async fn exchange(&self, pool: &Pool, call: &Call, req: &[u8]) -> Result<u16, Failed> {
        let kept = pool.idle.borrow_mut().pop();
        let reused = kept.is_some();
        let mut conn = match kept {
            Some(c) => c,
            None => self.connect(call).await?,
        };
        match roundtrip(&mut conn, req).await {
            Ok((status, keep)) => {
                if keep && pool.idle.borrow().len() < MAX_IDLE {
                    pool.idle.borrow_mut().push(conn);
                }
                Ok(status)
            }
            Err(f) if reused && f.silent => {
                // The server closed the kept connection (its idle timeout): once more, anew.
                let mut conn = self.connect(call).await?;
                let (status, keep) = roundtrip(&mut conn, req).await?;
                if keep && pool.idle.borrow().len() < MAX_IDLE {
                    pool.idle.borrow_mut().push(conn);
                }
                Ok(status)
            }
            Err(f) => Err(f),
        }
    }

    async fn connect(&self, call: &Call) -> Result<Conn, Failed> {
        let fail = |why: String| Failed { why, silent: false };
        let (host, port) = match &self.shared.config.http_target.proxy {
            Some((h, p)) if !call.url.tls => (h.as_str(), *p),
            _ => (call.url.host.as_str(), call.url.port),
        };
        let addr: std::net::SocketAddr = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => (ip, port).into(),
            Err(_) => {
                // A name: resolved off the shard's thread (getaddrinfo blocks).
                let name = format!("{host}:{port}");
                let found = glommio::executor()
                    .spawn_blocking(move || {
                        std::net::ToSocketAddrs::to_socket_addrs(name.as_str())
                            .map(|mut a| a.next())
                    })
                    .await;
                match found {
                    Ok(Some(a)) => a,
                    Ok(None) => return Err(fail(format!("{host}: no address"))),
                    Err(e) => return Err(fail(format!("{host}: {e}"))),
                }
            }
        };
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| fail(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        if !call.url.tls {
            return Ok(Conn::Plain(stream));
        }
        let Some(cfg) = self.shared.http_tls.clone() else {
            return Err(fail("no TLS client configuration".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(call.url.host.clone())
            .map_err(|e| fail(format!("{:?} as a TLS name: {e}", call.url.host)))?;
        let tls = TlsConnector::from(cfg)
            .connect(name, stream)
            .await
            .map_err(|e| fail(format!("TLS: {e}")))?;
        Ok(Conn::Tls(Box::new(tls)))
    }
}

/// Writes the request and reads the answer: its status and whether the connection is kept.
async fn roundtrip(conn: &mut Conn, req: &[u8]) -> Result<(u16, bool), Failed> {
    conn.write_all(req).await.map_err(|e| Failed {
        why: format!("cannot send: {e}"),
        silent: true,
    })?;
    conn.flush().await.map_err(|e| Failed {
        why: format!("cannot send: {e}"),
        silent: true,
    })?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.map_err(|e| Failed {
            why: format!("reading the answer: {e}"),
            silent: buf.is_empty(),
        })?;
        if n == 0 {
            return Err(Failed {
                why: "the connection closed before an answer".into(),
                silent: buf.is_empty(),
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        match target::response(&buf) {
            Ok(Response::Partial) if buf.len() <= MAX_RESPONSE => continue,
            Ok(Response::Partial) => {
                return Err(Failed {
                    why: format!("an answer over {MAX_RESPONSE} octets"),
                    silent: false,
                })
            }
            Ok(Response::Done { status, len, keep }) => {
                // Anything after the answer is not ours to read: the connection goes.
                return Ok((status, keep && len == buf.len()));
            }
            Ok(Response::UntilClose { status }) => {
                // The body runs to the close: drain it (bounded), the connection goes.
                let mut total = buf.len();
                while total <= MAX_RESPONSE {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n,
                    }
                }
                return Ok((status, false));
            }
            Err(e) => {
                return Err(Failed {
                    why: e,
                    silent: false,
                })
            }
        }
    }
}
