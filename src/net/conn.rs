//! The connection driver: moves bytes and time between a socket (plain or TLS) and a
//! [`Session`], and hands the session's events to a [`Handler`].
//!
//! One task per connection, one loop:
//! 1. everything the session wants to send goes out in one write (all the responses produced
//!    by one read travel together), bounded by a write timeout so a peer that stops reading
//!    is cut off instead of holding memory;
//! 2. then wait for whichever comes first: bytes from the peer (only while the handler says
//!    there is room: backpressure), work from elsewhere in the shard (the inbox), or the
//!    session's next timer;
//! 3. feed what came into the session and drain its events through the handler.
//!
//! A read carries as many PDUs as the socket has, and the session parses all of them before
//! anything is written, so syscalls are paid per read, not per PDU. A peer that writes one PDU
//! per write is read almost as each lands; after four such reads in a row, each within
//! [`BUSY_GAP`] of the one before, the next read waits [`GATHER`] first, so that its PDUs
//! arrive together and their answers leave together (`DriverLimits::gather`; the load
//! generator reads without it, as ESMEs do). Reads go to the socket first ([`super::direct`]):
//! the ring is used only to wait for a socket that is empty.

use std::future::pending;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};
use glommio::channels::local_channel::LocalReceiver;

use crate::smpp::{Event, Session};

/// Octets read per read call: the chunk adapts between these, growing while reads fill it
/// (a busy link gets many PDUs per syscall) and shrinking while they do not (an idle session
/// holds almost no buffer).
const MIN_READ: usize = 512;
const MAX_READ: usize = 64 * 1024;
/// After reads that brought fewer PDUs than this, four in a row, the next read waits
/// [`GATHER`] first, so that a peer writing one PDU per write is read in batches.
const GATHER_BELOW: u64 = 4;
const GATHER: Duration = Duration::from_micros(100);
/// Only reads that come this soon after the one before count as a busy peer's: a quiet
/// connection (a PDU now and then, as with a thousand binds at a modest rate) is read at once.
const BUSY_GAP: Duration = Duration::from_millis(1);

/// Inbox items handled per wake before the writes go out.
const INBOX_BATCH: usize = 256;

/// What a connection's owner does with the session's events.
pub trait Handler {
    /// Work delivered to this connection from elsewhere in the shard.
    type Outbound;

    /// One event of the session; may answer through `session`.
    fn on_event(&mut self, session: &mut Session, event: Event, now: Instant);

    /// One item from the inbox.
    fn on_outbound(&mut self, session: &mut Session, item: Self::Outbound, now: Instant);

    /// May the driver read more from the peer now? (false: backpressure)
    fn can_read(&self, session: &Session) -> bool;

    /// May the driver take more from the inbox now? (false: the inbox fills up and its
    /// senders go elsewhere)
    fn can_take(&self, session: &Session) -> bool;

    /// The connection is over (the session closed, the peer left, or IO failed).
    fn on_close(&mut self, session: &mut Session, why: &str, io: IoCounts);

    /// Called once before the first read (an ESME binds here).
    fn on_start(&mut self, _session: &mut Session, _now: Instant) {}

    /// The handler's own next timer, if it has one (a load generator's send schedule).
    fn next_wakeup(&self) -> Option<Instant> {
        None
    }

    /// The handler's timer is due.
    fn on_wakeup(&mut self, _session: &mut Session, _now: Instant) {}
}

/// What one connection cost in system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct IoCounts {
    pub reads: u64,
    pub writes: u64,
    pub frames_in: u64,
}

/// Limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct DriverLimits {
    /// Longest a write of pending output may take before the peer is considered stuck.
    pub write_timeout: Duration,
    /// One write per PDU instead of one per batch: how most ESME libraries write (the load
    /// generator's `--write-each`); never set by the gateway.
    pub write_each: bool,
    /// Let the input of a busy peer that writes a PDU or two at a time gather before reading
    /// it (see [`GATHER`]); the gateway's sessions do, the load generator does not (it reads
    /// as most ESMEs read: as soon as anything arrives).
    pub gather: bool,
}

enum Wake<T> {
    Read(io::Result<usize>),
    Inbox(Option<T>),
    Timer,
}

/// Runs the connection until the session closes or the peer goes away.
pub async fn drive<S, H>(
    mut stream: S,
    mut session: Session,
    mut handler: H,
    inbox: &LocalReceiver<H::Outbound>,
    limits: DriverLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let mut rbuf = BytesMut::new();
    // Octets of input at the front of `rbuf` (the rest, if any, is zeroed read space).
    let mut data = 0usize;
    let mut wbuf = BytesMut::new();
    let mut chunk = MIN_READ;
    let mut inbox_open = true;
    let mut io = IoCounts::default();
    let (mut small, mut gather) = (0u32, false);
    let mut last_read = Instant::now();
    handler.on_start(&mut session, Instant::now());
    let why = loop {
        session.poll_transmit(&mut wbuf);
        if !wbuf.is_empty() {
            let write = async {
                if limits.write_each {
                    // PDU by PDU, at their command_length boundaries.
                    let mut at = 0;
                    while at + 4 <= wbuf.len() {
                        let len = u32::from_be_bytes([
                            wbuf[at],
                            wbuf[at + 1],
                            wbuf[at + 2],
                            wbuf[at + 3],
                        ]) as usize;
                        let end = (at + len.max(16)).min(wbuf.len());
                        stream.write_all(&wbuf[at..end]).await?;
                        stream.flush().await?;
                        io.writes += 1;
                        at = end;
                    }
                    stream.write_all(&wbuf[at..]).await?;
                } else {
                    stream.write_all(&wbuf).await?;
                }
                stream.flush().await
            };
            match glommio::timer::timeout(limits.write_timeout, async {
                write.await.map_err(Into::into)
            })
            .await
            {
                Ok(()) => wbuf.clear(),
                Err(e) => break format!("write failed: {e}"),
            }
        }
        if let crate::smpp::State::Closed(reason) = session.state() {
            break format!("session closed ({reason:?})");
        }

        let now = Instant::now();
        let deadline = match (session.poll_timeout(), handler.next_wakeup()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let readable = handler.can_read(&session);
        let takes = inbox_open && handler.can_take(&session);
        // `rbuf` holds `filled` octets of input, then (after a wake that was not a read) the
        // zeroed space the last read was offered: kept, so that inbox and timer wakes do not
        // zero a read's worth of buffer each time.
        let filled = data;
        if filled == 0 && rbuf.capacity() > 4 * chunk {
            // Everything was consumed and the link has gone quiet: let the big buffer go.
            rbuf = BytesMut::new();
        }
        if readable && rbuf.len() < filled + chunk {
            rbuf.resize(filled + chunk, 0);
        }
        let wake = {
            let (head, tail) = rbuf.split_at_mut(filled);
            let _ = head;
            let read = async {
                if readable {
                    if gather {
                        glommio::timer::sleep(GATHER).await;
                    }
                    Wake::Read(stream.read(tail).await)
                } else {
                    pending().await
                }
            };
            let from_inbox = async {
                if takes {
                    Wake::Inbox(inbox.recv().await)
                } else {
                    pending().await
                }
            };
            let timer = async {
                match deadline {
                    Some(d) => glommio::timer::sleep(d.saturating_duration_since(now)).await,
                    None => pending::<()>().await,
                }
                Wake::Timer
            };
            read.or(from_inbox).or(timer).await
        };
        let now = Instant::now();
        match wake {
            Wake::Read(Ok(0)) => {
                break "peer closed the connection".to_string();
            }
            Wake::Read(Ok(n)) => {
                io.reads += 1;
                rbuf.truncate(filled + n);
                let frames0 = session.frames_received();
                chunk = if n == chunk {
                    (chunk * 4).min(MAX_READ)
                } else if n < chunk / 8 {
                    (chunk / 2).max(MIN_READ)
                } else {
                    chunk
                };
                session.handle_input(&mut rbuf, now);
                data = rbuf.len();
                // A busy peer whose reads bring a PDU or two: let the next ones gather.
                let frames = session.frames_received() - frames0;
                let busy = now.duration_since(last_read) < BUSY_GAP + GATHER;
                last_read = now;
                small = if frames < GATHER_BELOW && busy {
                    small + 1
                } else {
                    0
                };
                gather = limits.gather && small >= 4;
            }
            Wake::Read(Err(e)) => break format!("read failed: {e}"),
            Wake::Inbox(Some(item)) => {
                handler.on_outbound(&mut session, item, now);
                // Whatever else already waits in the inbox is taken now, so that one write
                // carries all of it (a link's read of 64 answers queues 64 of them here).
                for _ in 1..INBOX_BATCH {
                    if !handler.can_take(&session) {
                        break;
                    }
                    match futures_lite::future::poll_once(inbox.recv()).await {
                        Some(Some(item)) => handler.on_outbound(&mut session, item, now),
                        Some(None) => {
                            inbox_open = false;
                            break;
                        }
                        None => break,
                    }
                }
            }
            Wake::Inbox(None) => inbox_open = false,
            Wake::Timer => {
                session.handle_timeout(now);
                if handler.next_wakeup().is_some_and(|t| t <= now) {
                    handler.on_wakeup(&mut session, now);
                }
            }
        }
        while let Some(e) = session.poll_event() {
            handler.on_event(&mut session, e, now);
        }
    };
    // Whatever the session still has to say (a generic_nack before closing) goes out if the
    // socket takes it promptly.
    session.poll_transmit(&mut wbuf);
    if !wbuf.is_empty() {
        let _ = glommio::timer::timeout(Duration::from_millis(200), async {
            stream.write_all(&wbuf).await?;
            stream.flush().await.map_err(Into::into)
        })
        .await;
    }
    let _ = stream.close().await;
    if !session.is_closed() {
        session.abort();
    }
    while let Some(e) = session.poll_event() {
        handler.on_event(&mut session, e, Instant::now());
    }
    io.frames_in = session.frames_received();
    handler.on_close(&mut session, &why, io);
}
