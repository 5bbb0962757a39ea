//! The admin endpoint (`[general] admin`, 127.0.0.1:9775 unless set), on the control shard:
//! HTTP/1.1 requests parsed with `httparse`, one request per connection.
//!
//! - `GET /metrics`: Prometheus text (see `crate::metrics`);
//! - `GET /health`: 200 `{"status":"ok"}` when every listener is open and every shard has
//!   ticked within the last second, else 503 with what is wrong;
//! - `GET /status`: JSON: binds by account, connections by shard, links and their state,
//!   messages pending per shard, message counts, the spool, the configuration and when it was
//!   loaded.
//!
//! A request that does not parse, or whose head passes 8 KiB, gets 400 and the connection is
//! closed; other paths 404, other methods 405.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use log::{debug, info, warn};
use metrics_exporter_prometheus::PrometheusHandle;

use super::reload::ReloadReport;
use crate::http::{Answer, Framed, Limits, Request};
use crate::metrics::{Scrape, Stages};
use crate::shard::Shared;

/// The most a request's head may take.
const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take, from its first byte to the end of the answer.
const DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once at most; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A shard that has not ticked for this long is unhealthy.
const STALL: Duration = Duration::from_secs(1);

/// What the endpoint reports about.
pub struct Admin {
    pub shared: Arc<Shared>,
    pub prometheus: Option<PrometheusHandle>,
    /// The configuration directory.
    pub config_dir: String,
    pub spool_dir: Option<std::path::PathBuf>,
    /// `POST /reload`.
    pub reloader: Arc<super::reload::Reloader>,
    /// `[admin] sslcontext`: HTTPS (the certificate is read again on reload).
    pub tls: Option<crate::shard::TlsSlot>,
}

/// How long the endpoint tries to bind an address that is in use: right after a crash the
/// dead process's socket may hold it for a moment (io_uring closes sockets asynchronously).
const BIND_PATIENCE: Duration = Duration::from_secs(5);

/// Opens the listener (without SO_REUSEPORT: a second gateway on the same address is told,
/// not silently given half the scrapes) and serves it until the gateway stops.
pub fn start(addr: std::net::SocketAddr, admin: Admin) {
    glommio::spawn_local(async move {
        let t0 = Instant::now();
        let mut told = false;
        let std_listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && t0.elapsed() < BIND_PATIENCE
                        && !admin.shared.is_stopping() =>
                {
                    if !told {
                        info!("admin endpoint: {addr} is in use; trying again for up to {BIND_PATIENCE:?}");
                        told = true;
                    }
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    warn!("admin endpoint: cannot listen on {addr}: {e}; no /metrics, /health or /status");
                    return;
                }
            }
        };
        serve_listener(std_listener, addr, admin).await;
    })
    .detach();
}

async fn serve_listener(
    std_listener: std::net::TcpListener,
    addr: std::net::SocketAddr,
    admin: Admin,
) {
    let local = std_listener.local_addr().map_or(addr, |a| a);
    let listener: TcpListener = match crate::net::sys::glommio_listener(std_listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("admin endpoint: {e}");
            return;
        }
    };
    let scheme = if admin.tls.is_some() { "https" } else { "http" };
    info!("admin endpoint on {scheme}://{local} (/metrics, /health, /status, /config)");
    let admin = Arc::new(admin);
    let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
    while !admin.shared.is_stopping() {
        match glommio::timer::timeout(Duration::from_millis(200), async {
            listener.accept().await
        })
        .await
        {
            Ok(stream) => {
                if open.get() >= MAX_CONNECTIONS {
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (admin, open) = (admin.clone(), open.clone());
                glommio::spawn_local(async move {
                    // Deadlines bound the handshake, the request and the answer's writing (a
                    // client that trickles or never reads is cut off), not the work between:
                    // a write handed to the blocking thread cannot be called back half done.
                    accepted(stream, &admin).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Err(glommio::GlommioError::TimedOut(_)) => {}
            Err(e) => {
                debug!("admin endpoint: accept: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A connection: over TLS when `[admin] sslcontext` says so.
async fn accepted(stream: TcpStream, admin: &Arc<Admin>) {
    let peer = stream.peer_addr().ok();
    match &admin.tls {
        None => serve(stream, peer, admin).await,
        Some(slot) => {
            let acceptor = futures_rustls::TlsAcceptor::from(slot.load_full());
            let handshake = glommio::timer::timeout(DEADLINE, async {
                acceptor.accept(stream).await.map_err(Into::into)
            });
            match handshake.await {
                Ok(s) => serve(s, peer, admin).await,
                Err(e) => debug!("admin endpoint: TLS handshake with {peer:?} failed: {e}"),
            }
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: Option<std::net::SocketAddr>,
    admin: &Arc<Admin>,
) {
    let limits = Limits {
        max_head: MAX_HEAD,
        max_body: super::config_api::MAX_BODY,
        request_timeout: DEADLINE,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_HEAD);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut continued = false;
    let started = std::time::Instant::now();
    let answer = loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let read = glommio::timer::timeout(left, async {
            stream.read(&mut chunk).await.map_err(Into::into)
        });
        match read.await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        match crate::http::frame(&buf, &limits) {
            Ok(Framed::Request(req, _)) => break Some(req),
            Ok(Framed::Partial { expect_continue }) => {
                if expect_continue && !continued {
                    continued = true;
                    let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                }
            }
            Err(refusal) => {
                let a = Answer::error(refusal.status, &refusal.why);
                let mut out = Vec::new();
                a.write(&mut out, true, false);
                let _ = stream.write_all(&out).await;
                let _ = stream.flush().await;
                // The client may still be sending what was refused: closing now would reset
                // the connection and lose the answer. Read and drop it for a moment first.
                let _ = stream.close().await;
                let _ = glommio::timer::timeout(Duration::from_secs(1), async {
                    let mut left = 8usize << 20;
                    while left > 0 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => left = left.saturating_sub(n),
                        }
                    }
                    Ok(())
                })
                .await;
                return;
            }
        }
    };
    let Some(req) = answer else { return };
    let head_only = req.method == "HEAD";
    let a = dispatch(&req, admin, peer).await;
    write_answer(&mut stream, &a, head_only).await;
}

async fn write_answer<S: AsyncWrite + Unpin>(stream: &mut S, a: &Answer, head_only: bool) {
    let mut out = Vec::with_capacity(a.body.len() + 256);
    a.write(&mut out, true, head_only);
    let _ = glommio::timer::timeout(DEADLINE, async {
        stream.write_all(&out).await?;
        stream.flush().await?;
        stream.close().await?;
        Ok(())
    })
    .await;
}

/// Answers one request: `/metrics` and `/health` to anyone; `/status`, `/reload` and
/// `/config` to callers with the `[admin]` credentials, when there are any.
async fn dispatch(req: &Request, admin: &Arc<Admin>, peer: Option<std::net::SocketAddr>) -> Answer {
    let path = req.path.as_str();
    let guarded = path == "/status" || path == "/reload" || path.starts_with("/config");
    let who = if guarded {
        match authorise(req, &admin.shared.live.load().config.admin) {
            Ok(who) => who,
            Err(a) => return a,
        }
    } else {
        "-".to_string()
    };
    // `?format=text`: for people (what `smppgw reload` and `status` print).
    let text = req.query.split('&').any(|p| p == "format=text");
    if path == "/config" || path.starts_with("/config/") {
        let caller = super::config_api::Caller { who, peer };
        return super::config_api::handle(req, admin, caller).await;
    }
    let (status, _, content_type, body) = if path == "/reload" {
        reload(&req.method, admin, text).await
    } else {
        route(&req.method, path, admin, text)
    };
    Answer {
        status,
        content_type,
        headers: Vec::new(),
        body,
    }
}

/// Who the request's credentials name; 401 when credentials are configured and it has
/// none that match (no credentials configured: anyone, as `-`).
fn authorise(req: &Request, cfg: &crate::config::AdminConfig) -> Result<String, Answer> {
    if !cfg.has_credentials() {
        return Ok("-".to_string());
    }
    let given = req.authorization.as_deref().unwrap_or("");
    if let (Some(token), Some((scheme, t))) = (&cfg.token, given.trim().split_once(' ')) {
        if scheme.eq_ignore_ascii_case("bearer") && same(t.trim().as_bytes(), token.as_bytes()) {
            return Ok("token".to_string());
        }
    }
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        if let Some((u, p)) = crate::http::form::basic_auth(given) {
            if same(u.as_bytes(), user.as_bytes()) & same(p.as_bytes(), password.as_bytes()) {
                return Ok(u);
            }
        }
    }
    Err(Answer::error(
        401,
        if given.is_empty() {
            "credentials required ([admin] of ysmpp.conf): Authorization: Bearer TOKEN or basic auth"
        } else {
            "wrong credentials"
        },
    )
    .header("WWW-Authenticate", "Basic realm=\"smppgw admin\"".to_string()))
}

/// Compares in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

type Reply = (u16, &'static str, &'static str, String);

/// `POST /reload`: every file read again, as SIGHUP does; the answer says what changed (200),
/// or why nothing did (422).
async fn reload(method: &str, admin: &Admin, text: bool) -> Reply {
    if method != "POST" {
        return (
            405,
            "Method Not Allowed",
            "application/json",
            "{\"error\":\"POST only\"}\n".into(),
        );
    }
    let reloader = admin.reloader.clone();
    // File reads and certificate parsing: off the control executor's thread.
    let report = glommio::executor()
        .spawn_blocking(move || {
            // A panic would take glommio's blocking thread (and every later reload) with it.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reloader.reload("POST /reload")
            }))
            .unwrap_or_else(|_| ReloadReport {
                errors: vec![
                    "internal error while reloading (logged); nothing was installed".into(),
                ],
                ..ReloadReport::default()
            })
        })
        .await;
    let (kind, body) = if text {
        ("text/plain; charset=utf-8", report.text())
    } else {
        ("application/json", report.json())
    };
    if report.ok {
        (200, "OK", kind, body)
    } else {
        (422, "Unprocessable Entity", kind, body)
    }
}

fn route(method: &str, path: &str, admin: &Admin, text: bool) -> Reply {
    if !matches!(path, "/metrics" | "/health" | "/status") {
        return (
            404,
            "Not Found",
            "application/json",
            "{\"error\":\"no such path (/metrics, /health, /status, POST /reload)\"}\n".into(),
        );
    }
    if method != "GET" && method != "HEAD" {
        return (
            405,
            "Method Not Allowed",
            "application/json",
            "{\"error\":\"GET only\"}\n".into(),
        );
    }
    match path {
        "/metrics" => match &admin.prometheus {
            Some(h) => {
                if let Some(c) = &admin.shared.cluster {
                    c.publish_metrics();
                }
                (
                    200,
                    "OK",
                    "text/plain; version=0.0.4",
                    scrape(&admin.shared, admin.reloader.counts()).render(h),
                )
            }
            None => (
                503,
                "Service Unavailable",
                "application/json",
                "{\"error\":\"no metrics recorder\"}\n".into(),
            ),
        },
        "/health" => health(&admin.shared),
        _ if text => (200, "OK", "text/plain; charset=utf-8", status_text(admin)),
        _ => (200, "OK", "application/json", status(admin)),
    }
}

fn scrape(shared: &Shared, reloads: (u64, u64)) -> Scrape {
    let stages = (0..shared.shards.max(1))
        .map(|i| {
            let c = shared.counters(i);
            let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            Stages {
                accepted: l(&c.accepted),
                refused: l(&c.rejected),
                delivered: l(&c.delivered),
                undelivered: l(&c.undelivered),
                unrouted: l(&c.unrouted),
                receipts_unmatched: l(&c.receipts_unmatched),
                receipts_deferred: l(&c.receipts_deferred),
                binds: l(&c.binds),
                bind_failures: l(&c.bind_failures),
            }
        })
        .collect();
    Scrape {
        connections: shared.connections.load(Ordering::Relaxed),
        stages,
        binds: shared
            .accounts
            .configured()
            .map(|a| {
                (
                    a.system_id.clone(),
                    a.binds.load(Ordering::Relaxed) as usize,
                )
            })
            .collect(),
        links: shared
            .links
            .iter()
            .filter(|l| !l.is_removed())
            .map(|l| crate::metrics::LinkScrape {
                name: l.name.clone(),
                transmitters: l.bound_tx_total() as usize,
                receivers: l.bound_rx_total() as usize,
                in_flight: l.in_flight.load(Ordering::Relaxed),
                queued: l.queued.load(Ordering::Relaxed),
            })
            .collect(),
        config_version: shared.live.load().version,
        reloads,
        cdr_dropped: shared
            .cdr
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed)),
    }
}

fn health(shared: &Shared) -> Reply {
    let mut problems = Vec::new();
    let failed = shared.listeners_failed.load(Ordering::Relaxed);
    if failed > 0 {
        problems.push(format!("{failed} listeners could not be opened"));
    }
    let now = shared.epoch.elapsed().as_millis() as u64;
    for (i, h) in shared.heartbeats.iter().enumerate() {
        let last = h.load(Ordering::Relaxed);
        if last == 0 {
            problems.push(format!("shard {i} has not started"));
            continue;
        }
        let quiet = now.saturating_sub(last);
        if quiet > STALL.as_millis() as u64 {
            problems.push(format!("shard {i} has not answered for {quiet} ms"));
        }
    }
    let warnings: Vec<String> = shared
        .cluster
        .as_ref()
        .and_then(|c| c.health_warning())
        .map(|w| json_str(&w))
        .into_iter()
        .collect();
    if problems.is_empty() && warnings.is_empty() {
        (
            200,
            "OK",
            "application/json",
            "{\"status\":\"ok\"}\n".into(),
        )
    } else if problems.is_empty() {
        (
            200,
            "OK",
            "application/json",
            format!(
                "{{\"status\":\"ok\",\"warnings\":[{}]}}\n",
                warnings.join(",")
            ),
        )
    } else {
        let list: Vec<String> = problems.iter().map(|p| json_str(p)).collect();
        (
            503,
            "Service Unavailable",
            "application/json",
            format!(
                "{{\"status\":\"unhealthy\",\"problems\":[{}]}}\n",
                list.join(",")
            ),
        )
    }
}

fn status(admin: &Admin) -> String {
    let shared = &admin.shared;
    let live = shared.live.load();
    let mut s = String::from("{");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = write!(
        s,
        "\"version\":{},\"uptime_seconds\":{},\"config\":{{\"dir\":{},\"version\":{},\"loaded_unix\":{},\"routes_version\":{}}},\"shards\":{},\"connections\":{}",
        json_str(crate::VERSION),
        shared.epoch.elapsed().as_secs(),
        json_str(&admin.config_dir),
        live.version,
        live.loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        shared.routes.version(),
        shared.shards,
        shared.connections.load(Ordering::Relaxed)
    );
    let _ = write!(s, ",\"connections_by_shard\":[");
    for (i, n) in shared.served.iter().enumerate() {
        let _ = write!(
            s,
            "{}{}",
            if i > 0 { "," } else { "" },
            n.load(Ordering::Relaxed)
        );
    }
    let _ = write!(s, "],\"pending_by_shard\":[");
    for (i, n) in shared.pending.iter().enumerate() {
        let _ = write!(
            s,
            "{}{}",
            if i > 0 { "," } else { "" },
            n.load(Ordering::Relaxed)
        );
    }
    let _ = write!(s, "],\"accounts\":[");
    for (i, a) in shared.accounts.configured().enumerate() {
        let receivers: Vec<String> = a
            .receivers
            .iter()
            .map(|r| r.load(Ordering::Relaxed).to_string())
            .collect();
        let _ = write!(
            s,
            "{}{{\"system_id\":{},\"binds\":{},\"receivers_by_shard\":[{}]}}",
            if i > 0 { "," } else { "" },
            json_str(&a.system_id),
            a.binds.load(Ordering::Relaxed),
            receivers.join(",")
        );
    }
    let _ = write!(s, "],\"links\":[");
    for (i, l) in shared.links.iter().filter(|l| !l.is_removed()).enumerate() {
        let _ = write!(
            s,
            "{}{{\"name\":{},\"transmitters\":{},\"receivers\":{},\"slots\":{},\"state\":{}}}",
            if i > 0 { "," } else { "" },
            json_str(&l.name),
            l.bound_tx_total(),
            l.bound_rx_total(),
            l.config().binds,
            json_str(&l.summary())
        );
    }
    let total =
        |f: fn(&crate::shard::state::Counters) -> &std::sync::atomic::AtomicU64| shared.total(f);
    let _ = write!(
        s,
        "],\"messages\":{{\"accepted\":{},\"refused\":{},\"delivered\":{},\"undelivered\":{}}}",
        total(|c| &c.accepted),
        total(|c| &c.rejected),
        total(|c| &c.delivered),
        total(|c| &c.undelivered)
    );
    if let Some(dir) = &admin.spool_dir {
        let _ = write!(
            s,
            ",\"spool\":{{\"dir\":{},\"octets\":{}}}",
            json_str(&dir.display().to_string()),
            dir_octets(dir)
        );
    }
    if let Some(c) = &shared.cluster {
        let _ = write!(s, ",\"cluster\":{}", c.status_json());
    }
    let _ = writeln!(s, ",\"now_unix\":{now}}}");
    s
}

/// `/status?format=text`: what `smppgw status` prints.
fn status_text(admin: &Admin) -> String {
    let shared = &admin.shared;
    let live = shared.live.load();
    let mut s = String::new();
    let loaded = live.loaded_at.elapsed().map_or(0, |d| d.as_secs());
    let _ = writeln!(
        s,
        "smppgw {}, up {}s, {} shards, configuration {} version {} (loaded {loaded}s ago), routes version {}",
        crate::VERSION,
        shared.epoch.elapsed().as_secs(),
        shared.shards,
        admin.config_dir,
        live.version,
        shared.routes.version()
    );
    let total =
        |f: fn(&crate::shard::state::Counters) -> &std::sync::atomic::AtomicU64| shared.total(f);
    let pending: u64 = shared
        .pending
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .sum();
    let _ = writeln!(
        s,
        "messages: {} accepted, {} refused, {} delivered or forwarded, {} undelivered, {pending} pending",
        total(|c| &c.accepted),
        total(|c| &c.rejected),
        total(|c| &c.delivered),
        total(|c| &c.undelivered)
    );
    let _ = writeln!(
        s,
        "connections: {}",
        shared.connections.load(Ordering::Relaxed)
    );
    for a in shared.accounts.configured() {
        let _ = writeln!(
            s,
            "account {}: {} binds",
            a.system_id,
            a.binds.load(Ordering::Relaxed)
        );
    }
    for l in shared.links.iter().filter(|l| !l.is_removed()) {
        let _ = writeln!(s, "{}", l.summary());
    }
    if let Some(dir) = &admin.spool_dir {
        let _ = writeln!(s, "spool {}: {} octets", dir.display(), dir_octets(dir));
    }
    s
}

/// Octets of the files under `dir` (the spool's shard directories).
fn dir_octets(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_octets(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A JSON string.
pub(super) fn json_str(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
