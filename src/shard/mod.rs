//! A data shard: one glommio executor pinned to a core, owning the SMPP connections it
//! accepts, and routing receipts to receivers on itself or, over the channel mesh, on the
//! shard where the receiver is bound.
//!
//! | file | job |
//! |---|---|
//! | `state` | what shards share: configuration, accounts and their atomic counters, stop flag |
//! | `server` | the per-connection handler: bind, limits, terminating mode and simulator |
//!
//! Every shard accepts on every listener (glommio sets SO_REUSEPORT, so the kernel spreads
//! connections). Nothing here takes a lock on the data path.

pub mod server;
pub mod state;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_rustls::TlsAcceptor;
use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::TcpListener;
use glommio::{spawn_local, GlommioError, ResourceType};
use log::{error, info, warn};

use crate::net::conn::{self, DriverLimits};
use crate::smpp::{COctet, DeliverSm, Role, Session, SessionConfig, Tlvs};
use server::ServerHandler;
pub use state::{AccountState, Mode, Shared, SimOptions};

/// A receipt (or any deliver_sm) on its way to a receiver of `account`.
pub struct Delivery {
    pub account: Arc<AccountState>,
    pub body: DeliverSm,
    pub tlvs: Tlvs,
    pub attempts: u8,
}

/// Work for one connection from elsewhere in the shard. (Deliveries are the traffic; `Stop`
/// comes once, so the size difference costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
pub enum Outbound {
    Deliver(Delivery),
    /// Unbind and close: the gateway is stopping.
    Stop,
}

/// Octets in a gateway message id.
pub const MESSAGE_ID_LEN: usize = 20;

/// Receipts held per account on one shard while no receiver is bound anywhere.
const MAX_PARKED_PER_ACCOUNT: usize = 20_000;
/// Items a connection's inbox holds before senders look elsewhere. (The channel itself is
/// unbounded so that an idle connection's inbox allocates nothing; senders check the bound.)
const INBOX: usize = 1024;

type AccountKey = usize;

/// Deliveries of one account waiting on this shard for a receiver.
struct Parked {
    account: Arc<AccountState>,
    queue: VecDeque<Delivery>,
    /// Deliveries dropped since the queue was last full.
    dropped: u64,
}

/// A connection's inbox, shared by the registries that deliver to it.
type Inbox = Rc<LocalSender<Outbound>>;

fn key(a: &Arc<AccountState>) -> AccountKey {
    Arc::as_ptr(a) as usize
}

/// A listener as a shard runs it.
#[derive(Clone)]
pub struct ListenerSpec {
    pub name: String,
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
}

/// One shard's own state.
pub struct ShardState {
    pub id: usize,
    pub shared: Arc<Shared>,
    conns: RefCell<HashMap<u64, Inbox>>,
    receivers: RefCell<HashMap<AccountKey, Vec<(u64, Inbox)>>>,
    round_robin: Cell<usize>,
    parked: RefCell<HashMap<AccountKey, Parked>>,
    delayed: RefCell<VecDeque<(Instant, Delivery)>>,
    mesh: Option<Senders<Delivery>>,
    next_id: Cell<u64>,
    id_arena: RefCell<BytesMut>,
    next_conn: Cell<u64>,
    rng: Cell<u64>,
}

/// Takes a message back out of a channel error.
fn take_back<T>(e: GlommioError<T>) -> Option<T> {
    match e {
        GlommioError::WouldBlock(ResourceType::Channel(t))
        | GlommioError::Closed(ResourceType::Channel(t)) => Some(t),
        _ => None,
    }
}

impl ShardState {
    /// A gateway message id: start time, shard and a counter, as 20 hex digits. Unique
    /// across shards, and across restarts more than a second apart. Ids are cut from a shared
    /// arena buffer, so the submit path does not allocate per message.
    pub fn next_message_id(&self) -> COctet {
        let n = self.next_id.get();
        self.next_id.set(n.wrapping_add(1));
        let mut digits = [0u8; MESSAGE_ID_LEN];
        let hex = |v: u64, out: &mut [u8]| {
            for (i, d) in out.iter_mut().rev().enumerate() {
                *d = b"0123456789abcdef"[((v >> (4 * i)) & 0xF) as usize];
            }
        };
        hex(self.shared.start_secs as u64, &mut digits[..8]);
        hex(self.id as u64 & 0xFF, &mut digits[8..10]);
        hex(n & 0xFF_FFFF_FFFF, &mut digits[10..]);
        let mut arena = self.id_arena.borrow_mut();
        if arena.capacity() < MESSAGE_ID_LEN {
            *arena = BytesMut::with_capacity(MESSAGE_ID_LEN * 3200);
        }
        arena.put_slice(&digits);
        COctet::from_bytes_unchecked(arena.split_to(MESSAGE_ID_LEN).freeze())
    }

    /// A uniform draw in [0, 100) (xorshift; the simulator's error shares).
    pub fn percent(&self) -> f64 {
        let mut s = self.rng.get();
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.rng.set(s);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }

    fn register(&self, conn: u64, tx: Inbox) {
        self.conns.borrow_mut().insert(conn, tx);
    }

    fn unregister(&self, conn: u64) {
        self.conns.borrow_mut().remove(&conn);
    }

    /// A bound receiver or transceiver of `account` on this shard can take deliveries.
    pub fn add_receiver(&self, account: &Arc<AccountState>, conn: u64) {
        let Some(tx) = self.conns.borrow().get(&conn).cloned() else {
            return;
        };
        self.receivers
            .borrow_mut()
            .entry(key(account))
            .or_default()
            .push((conn, tx));
        account.receivers[self.id].fetch_add(1, Ordering::Relaxed);
        self.release_parked(account);
    }

    pub fn remove_receiver(&self, account: &Arc<AccountState>, conn: u64) {
        let mut map = self.receivers.borrow_mut();
        if let Some(list) = map.get_mut(&key(account)) {
            let before = list.len();
            list.retain(|(c, _)| *c != conn);
            if list.len() < before {
                account.receivers[self.id].fetch_sub(1, Ordering::Relaxed);
            }
            if list.is_empty() {
                map.remove(&key(account));
            }
        }
    }

    /// Sends a delivery toward a receiver of its account: on this shard if there is one,
    /// else on a shard that has one, else it waits here for a receiver to bind.
    pub fn route(&self, d: Delivery) {
        if let Err(d) = self.try_deliver(d) {
            self.park(d);
        }
    }

    /// Hands a delivery to a local receiver's inbox or to a shard with a receiver; gives it
    /// back when none has room.
    #[allow(clippy::result_large_err)] // the Err hands the delivery back; no copy is avoided by boxing
    fn try_deliver(&self, mut d: Delivery) -> Result<(), Delivery> {
        let local: Vec<Inbox> = self
            .receivers
            .borrow()
            .get(&key(&d.account))
            .map(|l| l.iter().map(|(_, tx)| tx.clone()).collect())
            .unwrap_or_default();
        if !local.is_empty() {
            let start = self.round_robin.get();
            self.round_robin.set(start.wrapping_add(1));
            for i in 0..local.len() {
                let tx = &local[(start + i) % local.len()];
                if tx.len() >= INBOX {
                    continue;
                }
                match tx.try_send(Outbound::Deliver(d)) {
                    Ok(()) => return Ok(()),
                    Err(e) => match take_back(e) {
                        Some(Outbound::Deliver(back)) => d = back,
                        _ => return Ok(()),
                    },
                }
            }
        }
        if let (Some(mesh), Some(peer)) = (&self.mesh, d.account.shard_with_receiver(self.id)) {
            match mesh.try_send_to(peer, d) {
                Ok(()) => return Ok(()),
                Err(e) => match take_back(e) {
                    Some(back) => d = back,
                    None => return Ok(()),
                },
            }
        }
        Err(d)
    }

    fn park(&self, d: Delivery) {
        let mut parked = self.parked.borrow_mut();
        let p = parked.entry(key(&d.account)).or_insert_with(|| Parked {
            account: d.account.clone(),
            queue: VecDeque::new(),
            dropped: 0,
        });
        if p.queue.len() >= MAX_PARKED_PER_ACCOUNT {
            self.shared
                .counters
                .receipts_dropped
                .fetch_add(1, Ordering::Relaxed);
            p.dropped += 1;
            if p.dropped.is_power_of_two() && p.dropped >= 1 {
                warn!(
                    "{}: {} receipts wait on shard {} for a receiver with room; {} dropped so far",
                    d.account.system_id, MAX_PARKED_PER_ACCOUNT, self.id, p.dropped
                );
            }
            return;
        }
        p.queue.push_back(d);
    }

    /// Delivers parked deliveries of an account, oldest first, until a receiver has no
    /// room.
    fn release_parked(&self, account: &Arc<AccountState>) {
        loop {
            let next = match self.parked.borrow_mut().get_mut(&key(account)) {
                Some(p) => p.queue.pop_front(),
                None => return,
            };
            let Some(d) = next else {
                self.parked.borrow_mut().remove(&key(account));
                return;
            };
            if let Err(d) = self.try_deliver(d) {
                if let Some(p) = self.parked.borrow_mut().get_mut(&key(account)) {
                    p.queue.push_front(d);
                    p.dropped = 0;
                }
                return;
            }
        }
    }

    /// Schedules a delivery for later (the simulator's receipt delay).
    pub fn route_at(&self, at: Instant, d: Delivery) {
        self.delayed.borrow_mut().push_back((at, d));
    }

    /// Periodic work: due delayed deliveries, parked deliveries whose account now has a
    /// receiver on another shard.
    fn tick(&self, now: Instant) {
        loop {
            let due = {
                let mut q = self.delayed.borrow_mut();
                match q.front() {
                    Some((t, _)) if *t <= now => q.pop_front().map(|e| e.1),
                    _ => None,
                }
            };
            match due {
                Some(d) => self.route(d),
                None => break,
            }
        }
        let ready: Vec<Arc<AccountState>> = self
            .parked
            .borrow()
            .values()
            .map(|p| &p.account)
            .filter(|a| {
                a.shard_with_receiver(self.id).is_some()
                    || a.receivers[self.id].load(Ordering::Relaxed) > 0
            })
            .cloned()
            .collect();
        for a in ready {
            self.release_parked(&a);
        }
    }

    fn session_config(&self) -> SessionConfig {
        let g = &self.shared.config.general;
        SessionConfig {
            max_pdu_size: g.max_pdu_size,
            window: g.window,
            response_timeout: g.response_timeout,
            session_init_timeout: Some(g.session_init_timeout),
            enquire_link_interval: g.enquire_link_interval,
            enquire_link_timeout: g.enquire_link_timeout,
            inactivity_timeout: g.inactivity_timeout,
            interface_version: 0x34,
        }
    }
}

/// What a shard reports when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardReport {
    pub id: usize,
    pub connections: u64,
}

/// Runs one shard until the gateway stops.
pub async fn run(
    shared: Arc<Shared>,
    mesh: MeshBuilder<Delivery, glommio::channels::channel_mesh::Full>,
    listeners: Vec<ListenerSpec>,
) -> ShardReport {
    let (senders, mut receivers) = match mesh.join().await {
        Ok(pair) => pair,
        Err(_) => {
            error!("cannot join the shard mesh");
            shared.stopping.store(true, Ordering::Relaxed);
            return ShardReport::default();
        }
    };
    let id = senders.peer_id();
    let shard = Rc::new(ShardState {
        id,
        shared: shared.clone(),
        conns: RefCell::new(HashMap::new()),
        receivers: RefCell::new(HashMap::new()),
        round_robin: Cell::new(0),
        parked: RefCell::new(HashMap::new()),
        delayed: RefCell::new(VecDeque::new()),
        mesh: Some(senders),
        next_id: Cell::new(0),
        id_arena: RefCell::new(BytesMut::new()),
        next_conn: Cell::new(0),
        rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
    });

    // Deliveries from other shards.
    for (_, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_local(async move {
            while let Some(d) = rx.recv().await {
                shard.route(d);
            }
        })
        .detach();
    }

    let mut accept_tasks = Vec::new();
    let accepted = Rc::new(Cell::new(0u64));
    for spec in listeners {
        let listener = match TcpListener::bind(spec.addr) {
            Ok(l) => l,
            Err(e) => {
                error!(
                    "listener {:?}: cannot listen on {}: {e}",
                    spec.name, spec.addr
                );
                shared.stopping.store(true, Ordering::Relaxed);
                continue;
            }
        };
        if id == 0 {
            info!(
                "listener {:?} on {} ({})",
                spec.name,
                spec.addr,
                if spec.tls.is_some() { "TLS" } else { "plain" }
            );
        }
        let shard = shard.clone();
        let accepted = accepted.clone();
        accept_tasks.push(spawn_local(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("listener {:?}: accept failed: {e}", spec.name);
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                accepted.set(accepted.get() + 1);
                let peer = stream.peer_addr().ok();
                let total = shard.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                if total > shard.shared.config.general.max_connections || shard.shared.is_stopping()
                {
                    shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                    warn!(
                        "refusing connection from {peer:?}: {} connections is the limit",
                        shard.shared.config.general.max_connections
                    );
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shard = shard.clone();
                let tls = spec.tls.clone();
                spawn_local(async move {
                    serve(shard.clone(), stream, peer, tls).await;
                    shard.shared.connections.fetch_sub(1, Ordering::Relaxed);
                })
                .detach();
            }
        }));
    }

    // Periodic work and the stop flag.
    let mut stop_sent = false;
    let mut stop_deadline = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        shard.tick(now);
        if shared.is_stopping() {
            if !stop_sent {
                stop_sent = true;
                for t in accept_tasks.drain(..) {
                    drop(t.cancel());
                }
                let conns: Vec<Inbox> = shard.conns.borrow().values().cloned().collect();
                for tx in conns {
                    let _ = tx.try_send(Outbound::Stop);
                }
                stop_deadline = Some(
                    now + shared
                        .config
                        .general
                        .response_timeout
                        .min(Duration::from_secs(10)),
                );
            }
            let open = shard.conns.borrow().len();
            if open == 0 || stop_deadline.is_some_and(|d| now >= d) {
                if open > 0 {
                    warn!("shard {id}: {open} sessions did not unbind in time; closing them");
                }
                break;
            }
        }
    }
    ShardReport {
        id,
        connections: accepted.get(),
    }
}

/// One accepted connection, plain or TLS, until it closes.
async fn serve(
    shard: Rc<ShardState>,
    stream: glommio::net::TcpStream,
    peer: Option<SocketAddr>,
    tls: Option<TlsAcceptor>,
) {
    let conn = shard.next_conn.get();
    shard.next_conn.set(conn + 1);
    let (tx, rx) = local_channel::new_unbounded();
    shard.register(conn, Rc::new(tx));
    let now = Instant::now();
    let session = Session::new(Role::Smsc, shard.session_config(), now);
    let handler = ServerHandler::new(shard.clone(), conn, peer);
    let limits = DriverLimits {
        write_timeout: shard.shared.config.general.response_timeout,
    };
    match tls {
        None => conn::drive(stream, session, handler, rx, limits).await,
        // Boxed: a TLS session's state is several KiB, which plain sessions should not carry.
        Some(acceptor) => {
            Box::pin(async {
                let handshake = glommio::timer::timeout(
                    shard.shared.config.general.session_init_timeout,
                    async { acceptor.accept(stream).await.map_err(Into::into) },
                );
                match handshake.await {
                    Ok(tls_stream) => conn::drive(tls_stream, session, handler, rx, limits).await,
                    Err(e) => info!("TLS handshake with {peer:?} failed: {e}"),
                }
            })
            .await
        }
    }
    shard.unregister(conn);
}
