//! Composition: checks the machine, builds TLS, starts one pinned executor per data shard and
//! the control executor, and stops them all on SIGINT or SIGTERM.
//!
//! Before the shards start it reads the spool (every shard's message log) and hands each
//! shard what it must resume. The control executor owns what is not on the data path: the
//! configuration snapshot, the stop signal and the periodic summary lines (link state,
//! messages); CDR flushing joins it with its issue.
//!
//! The embedded default (`smppgw` with no arguments) runs a whole two-hop system in one
//! process: a simulated upstream SMSC on 127.0.0.1:2776 (its own executor), the gateway
//! with a client link to it and `default_route` to that link, and a spool in a temporary
//! directory that the log names.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, LocalExecutorPoolBuilder, Placement, PoolPlacement};
use log::{error, info, warn};

use crate::cdr::writer::CdrFile;
use crate::config::{default::DEFAULT_CERT_NAME, Config};
use crate::net::{sys, tls};
use crate::route::RouteTable;
use crate::shard::{
    self, ListenerSpec, Mode, ShardReport, ShardStart, Shared, SimOptions, TlsSlot,
};

/// Locked memory each executor registers for IO; small, the hard limit is often 8 MiB.
mod admin;
mod cdr;
pub mod client;
mod config_api;
pub mod config_cli;
pub mod files;
pub mod reload;

use cdr::{CdrWriter, ControlJoin};
pub use files::{load_routes, read_config};

/// CDR batches the queue from the shards to the control shard holds (a shard hands one per
/// tick at most, of up to a few hundred records).
const CDR_BATCHES: usize = 4096;

const IO_MEMORY: usize = 256 * 1024;
const RING_DEPTH: usize = 256;

/// How to run.
pub struct RunOptions {
    pub config: Config,
    /// Where relative paths (certificates, the spool) resolve; `None` runs the embedded
    /// default, whose self-signed certificate and spool go to a temporary directory.
    pub config_dir: Option<PathBuf>,
    pub mode: Mode,
    /// A simulated upstream SMSC to run in this process (the embedded default's second hop).
    pub upstream_sim: Option<std::net::SocketAddr>,
}

/// Totals at exit.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunReport {
    pub accepted: u64,
    pub rejected: u64,
    pub deliveries_sent: u64,
    pub deliveries_acked: u64,
    pub connections: u64,
    /// Messages not final at exit (they stay in the spool for the next start).
    pub pending: usize,
}

/// The configuration of a simulator listening on `addr` (`smppgw sim`, and the embedded
/// default's upstream); `tls`: the context of a TLS listener, if it is one.
pub fn sim_config(addr: std::net::SocketAddr, tls: Option<crate::config::TlsContext>) -> Config {
    Config {
        general: crate::config::General::default(),
        server: crate::config::Server::default(),
        listeners: vec![crate::config::Listener {
            name: "sim".into(),
            enable: true,
            addr: addr.ip(),
            port: addr.port(),
            sslcontext: tls.as_ref().map(|t| t.name.clone()),
            line: 0,
        }],
        accounts: Vec::new(),
        tls: tls.into_iter().collect(),
        clients: Vec::new(),
        yatesmsc: crate::config::Yatesmsc::default(),
        cdr: crate::config::CdrConfig::default(),
        http: None,
        http_target: Default::default(),
        admin: Default::default(),
        cluster: None,
        warnings: Vec::new(),
    }
}

fn check_machine() -> Result<(), String> {
    let (before, after, hard) =
        sys::raise_memlock().map_err(|e| format!("cannot read or raise RLIMIT_MEMLOCK: {e}"))?;
    if before < after {
        info!(
            "raised the locked-memory limit from {} KiB to {} KiB (the hard limit)",
            before / 1024,
            after / 1024
        );
    }
    if after < sys::MIN_MEMLOCK {
        return Err(format!(
            "the locked-memory limit is {} KiB (hard limit {} KiB); glommio needs at least 512 KiB. \
             Raise it: `ulimit -l 8192` in the shell, or LimitMEMLOCK=8M in the systemd unit (see tuning/README.md)",
            after / 1024,
            hard / 1024
        ));
    }
    match sys::raise_nofile() {
        Ok(n) if n < 4096 => warn!("only {n} file descriptors may be open: that many connections at most (raise `ulimit -n`)"),
        Ok(_) => {}
        Err(e) => warn!("cannot raise the open-files limit: {e}"),
    }
    sys::probe_io_uring()
}

/// How https targets are verified: the system's CA certificates and `[http-target] ca_file`,
/// or (verify=no) not at all, which the log says.
fn http_target_tls(
    config: &Config,
    dir: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let t = &config.http_target;
    if !t.verify {
        warn!("[http-target] verify=no: https targets are not authenticated (tests only)");
        return Ok(tls::client_insecure());
    }
    let extra = match &t.ca_file {
        None => None,
        Some(f) => {
            let path = dir.map_or_else(|| PathBuf::from(f), |d| d.join(f));
            Some(std::fs::read(&path).map_err(|e| {
                format!("[http-target] ca_file: cannot read {}: {e}", path.display())
            })?)
        }
    };
    tls::client_with_system_roots(extra.as_deref())
        .map_err(|e| format!("[http-target] ca_file: {e}"))
}

/// The TLS configuration of every context a listener uses (swapped by a reload).
fn tls_contexts(opts: &RunOptions) -> Result<HashMap<String, TlsSlot>, String> {
    let mut out = HashMap::new();
    let http = opts.config.http.iter().map(|h| &h.sslcontext);
    let smpp = opts
        .config
        .listeners
        .iter()
        .filter(|l| l.enable)
        .map(|l| &l.sslcontext);
    let admin = std::iter::once(&opts.config.admin.sslcontext);
    for name in smpp.chain(http).chain(admin) {
        let Some(name) = name else { continue };
        if out.contains_key(name) {
            continue;
        }
        let ctx = opts
            .config
            .tls_context(name)
            .ok_or_else(|| format!("sslcontext {name:?} is not in openssl.conf"))?;
        let cfg = match &opts.config_dir {
            Some(dir) => tls::load_server(ctx, dir)?,
            None => {
                let dir = std::env::temp_dir().join(format!("smppgw-{}", std::process::id()));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let path = dir.join(DEFAULT_CERT_NAME);
                let mut names = ctx.domains.clone();
                names.push("127.0.0.1".into());
                let pem = tls::self_signed_pem(&names)?;
                std::fs::write(&path, &pem)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                info!(
                    "TLS context {name:?}: self-signed certificate for {} written to {}",
                    names.join(", "),
                    path.display()
                );
                tls::load_server(ctx, &dir)?
            }
        };
        out.insert(name.clone(), Arc::new(arc_swap::ArcSwap::new(cfg)));
    }
    Ok(out)
}

/// The TLS client configuration of each client link (`None` for plain links).
fn client_tls(
    config: &Config,
    dir: Option<&std::path::Path>,
) -> Result<Vec<Option<Arc<rustls::ClientConfig>>>, String> {
    config.clients.iter().map(|c| link_tls(c, dir)).collect()
}

/// The TLS client configuration of one client link (`None` for a plain link).
fn link_tls(
    c: &crate::config::ClientLink,
    dir: Option<&std::path::Path>,
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if !c.tls {
        return Ok(None);
    }
    if !c.verify {
        warn!(
            "client {:?}: TLS without certificate verification (verify=no)",
            c.name
        );
        return Ok(Some(tls::client_insecure()));
    }
    let file = c.ca_file.as_deref().unwrap_or_default();
    let path = dir.map_or_else(|| std::path::PathBuf::from(file), |d| d.join(file));
    let pem = files::read_pem(&path).map_err(|e| {
        format!(
            "ysmpp.conf:{}: ca_file: cannot read {}: {e}",
            c.line,
            path.display()
        )
    })?;
    tls::client_with_roots(&pem)
        .map(Some)
        .map_err(|e| format!("ysmpp.conf:{}: ca_file: {}: {e}", c.line, path.display()))
}

/// Logs a table's summary, its warnings, and targets that name links or accounts the
/// configuration does not have.
fn log_route_table(table: &RouteTable, config: &Config) {
    info!("{}", table.summary().trim_end());
    for w in &table.warnings {
        warn!("{w}");
    }
    for (line, target) in table.literal_targets() {
        let known = match target.split_once('/') {
            Some(("smppclient", id)) => config.clients.iter().any(|c| c.name == id),
            Some(("smppserver", id)) => config.accounts.iter().any(|a| a.system_id == id),
            _ => true,
        };
        if !known {
            warn!(
                "{}:{line}: {target}: no such {} in the configuration; messages routed there have no route (they end undeliverable)",
                table.file,
                if target.starts_with("smppclient/") { "client link in ysmpp.conf" } else { "account in regfile.conf" }
            );
        }
    }
}

/// Where the spool is: `spool_dir`, relative to the configuration directory; for the
/// embedded default, a temporary directory.
fn spool_dir(opts: &RunOptions) -> PathBuf {
    let dir = PathBuf::from(&opts.config.general.spool_dir);
    match &opts.config_dir {
        _ if dir.is_absolute() => dir,
        Some(base) => base.join(dir),
        None => std::env::temp_dir()
            .join(format!("smppgw-{}", std::process::id()))
            .join("spool"),
    }
}

/// The listeners of a configuration, with their TLS acceptors.
fn listener_specs(config: &Config, acceptors: &HashMap<String, TlsSlot>) -> Vec<ListenerSpec> {
    let mut specs = Vec::new();
    if config.server.enable {
        specs.extend(config.listeners.iter().filter(|l| l.enable).map(|l| {
            ListenerSpec {
                name: l.name.clone(),
                addr: l.socket_addr(),
                tls: l
                    .sslcontext
                    .as_ref()
                    .and_then(|c| acceptors.get(c).cloned()),
                http: None,
            }
        }));
    } else {
        warn!("[smpp-server] enable=no: no SMPP listener");
    }
    if let Some(h) = &config.http {
        specs.push(ListenerSpec {
            name: "http".into(),
            addr: h.socket_addr(),
            tls: h
                .sslcontext
                .as_ref()
                .and_then(|c| acceptors.get(c).cloned()),
            http: Some(crate::http::Limits {
                max_body: h.max_body,
                request_timeout: h.request_timeout,
                ..crate::http::Limits::default()
            }),
        });
    }
    specs
}

/// glommio binds with SO_REUSEPORT, which would let a second gateway share a port with a
/// running one and take half its connections. If something answers on the address, refuse
/// to start. (A plain bind test would also trip on the sockets a crashed predecessor left
/// closing, which must not stop a restart.)
fn refuse_taken(specs: &[ListenerSpec]) -> Result<(), String> {
    for spec in specs {
        let mut probe = spec.addr;
        if probe.ip().is_unspecified() {
            probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        // A process killed a moment ago may still accept on it while the kernel tears its
        // sockets down: taken means taken for more than a second.
        let t0 = Instant::now();
        while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(300)).is_ok() {
            if t0.elapsed() > Duration::from_millis(1500) {
                return Err(format!(
                    "listener {:?}: something already listens on {} (another smppgw or SMPP server?)",
                    spec.name, spec.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Starts a pool of shards.
fn start_pool(
    name: &str,
    placement: PoolPlacement,
    shared: Arc<Shared>,
    specs: Vec<ListenerSpec>,
    start: Arc<ShardStart>,
) -> Result<glommio::PoolThreadHandles<ShardReport>, String> {
    // glommio's MeshBuilder is Send but counts its peers list with an `Rc`: clones made on
    // the shard threads at once race on that count and can free the list under a thread
    // still using it (a heap corruption seen at start, a few percent of the time). Every
    // clone is made here, on one thread, before any shard starts; each shard takes its own
    // (taking it out moves it, and counts nothing).
    let mesh = MeshBuilder::full(shared.shards, 4096);
    let meshes: Vec<_> = (0..shared.shards).map(|_| mesh.clone()).collect();
    // One clone is never dropped: no shard thread is ever the last owner, so no drop frees
    // the list while another thread's drop still counts on it.
    std::mem::forget(mesh);
    let meshes = Arc::new(std::sync::Mutex::new(meshes));
    let mut builder = LocalExecutorPoolBuilder::new(placement)
        .name(name)
        .io_memory(IO_MEMORY)
        .ring_depth(RING_DEPTH);
    if let Some(spin) = shared.config.general.spin_before_park {
        builder = builder.spin_before_park(spin);
    }
    builder
        .on_all_shards(move || {
            let shared = shared.clone();
            let mesh = meshes.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let specs = specs.clone();
            let start = start.clone();
            async move {
                match mesh {
                    Some(mesh) => shard::run(shared, mesh, specs, start).await,
                    None => {
                        error!("more shards started than the mesh has places for");
                        shared.stopping.store(true, Ordering::Relaxed);
                        ShardReport::default()
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the {name} shards: {e}"))
}

/// Runs the gateway (or the simulator) until SIGINT or SIGTERM.
pub fn run(opts: RunOptions) -> Result<RunReport, String> {
    crate::logger::configure(opts.config.general.log_level);
    check_machine()?;
    sys::ignore_sigxfsz();
    sys::return_large_blocks();
    // Before any thread starts: threads inherit the mask, and one that does not block the
    // stop signals would die of them.
    let wait_for_signal = sys::block_stop_signals();
    let acceptors = tls_contexts(&opts)?;
    // The CPUs the process was given, not the machine's: shards=auto counts them and the
    // shards are pinned inside them.
    let allowed = sys::allowed_cpus();
    let cores = if allowed.is_empty() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        allowed.len()
    };
    let shards = opts.config.shard_count(cores);
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);

    // The spool: read and replayed before anything listens.
    let mut checkpoint = None;
    let (spool_path, spool, start_secs) = match opts.mode {
        Mode::Terminating => {
            let dir = spool_dir(&opts);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("spool_dir {}: cannot create: {e}", dir.display()))?;
            // One gateway per spool: the lock goes with the process, however it ends.
            let lock = dir.join("LOCK");
            let held = sys::lock_exclusive(&lock).map_err(|e| {
                format!(
                    "spool {}: {e} (is another smppgw running on this spool?)",
                    dir.display()
                )
            })?;
            std::mem::forget(held);
            // With CDRs on, the finals after the CDR checkpoint are written again.
            let cdr_on = opts.config.cdr.file.is_some();
            let cp_path = cdr::checkpoint_path(&dir);
            let cp = if cdr_on {
                cdr::read_checkpoint(&cp_path).unwrap_or_else(|e| {
                    warn!(
                        "{e}; every final the message log holds is written to the CDR file again"
                    );
                    Some(Default::default())
                })
            } else {
                None
            };
            let spool = crate::store::load(
                &dir,
                shards,
                opts.config.general.memory_messages,
                cp.as_ref(),
            )?;
            if cdr_on {
                let written = match cp {
                    Some(cp) => cp,
                    None => {
                        // CDRs were not written before: the finals so far are not owed.
                        cdr::write_checkpoint(&cp_path, &spool.ends)
                            .map_err(|e| format!("CDR checkpoint: {e}"))?;
                        spool.ends.clone()
                    }
                };
                checkpoint = Some(cdr::Checkpoint {
                    path: cp_path,
                    written,
                });
            }
            for line in &spool.report {
                info!("{line}");
            }
            let g = &opts.config.general;
            match g.sync {
                crate::config::SyncMode::Batch => info!(
                    "message log in {}: sync=batch (every answer waits for its record's fdatasync; commit window {:?}), segments of {} MiB",
                    dir.display(),
                    g.sync_window,
                    g.segment_size >> 20
                ),
                crate::config::SyncMode::None => warn!(
                    "message log in {}: sync=none: answers do not wait for the disk; a crash of the machine can lose acknowledged messages (UNSAFE)",
                    dir.display()
                ),
            }
            let start_secs = now_secs.max(spool.max_epoch_secs.saturating_add(1));
            (
                Some(dir),
                spool.shards.into_iter().map(Some).collect(),
                start_secs,
            )
        }
        Mode::Simulator(_) => (None, Vec::new(), now_secs),
    };
    let start = Arc::new(ShardStart {
        spool_dir: spool_path,
        spool: Arc::new(std::sync::Mutex::new(spool)),
    });

    let config = Arc::new(opts.config.clone());
    let link_tls = client_tls(&config, opts.config_dir.as_deref())?;
    let mut shared = Shared::new(
        config.clone(),
        opts.mode.clone(),
        shards,
        start_secs,
        link_tls,
    );
    shared.http_tls = Some(http_target_tls(&config, opts.config_dir.as_deref())?);
    if let (Mode::Terminating, Some(c)) = (&opts.mode, &config.cluster) {
        let cluster = crate::cluster::bridge::start(c, shards)?;
        cluster.set_links(config.clients.iter().map(|l| l.name.clone()).collect());
        shared.cluster = Some(cluster);
    }
    let cdr = match (&opts.mode, &config.cdr.file) {
        (Mode::Terminating, Some(file)) => {
            let path = match &opts.config_dir {
                Some(dir) => dir.join(file),
                None => PathBuf::from(file),
            };
            let out = CdrFile::open(&path, config.cdr.rotate_size)
                .map_err(|e| format!("[cdr] file: {e}"))?;
            // Test hooks: a smaller queue, a writer that stalls (to show that what it cannot
            // take is counted and said).
            let batches = std::env::var("SMPPGW_CDR_QUEUE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(CDR_BATCHES);
            let (sink, rx) = crate::cdr::Sink::new(batches);
            shared.cdr = Some(sink);
            shared.legs = true;
            info!(
                "CDRs to {} ({}{})",
                path.display(),
                if config.cdr.template == crate::cdr::Template::default() {
                    "every column, tab-separated"
                } else {
                    "[cdr] format"
                },
                match config.cdr.rotate_size {
                    0 => String::new(),
                    n => format!(", rotated at {}", crate::config::value::size_text(n)),
                }
            );
            Some((out, rx))
        }
        _ => None,
    };
    // Metrics: the gateway's (the in-process simulator of the embedded default keeps none).
    // Without an admin endpoint nothing reads them: none are kept (`admin=off`).
    let prometheus = match (&opts.mode, config.general.admin) {
        (Mode::Terminating, Some(_)) => crate::metrics::install(),
        _ => None,
    };
    shared.metrics = prometheus.is_some();
    // Attempts are reported when CDRs or metrics want them.
    shared.legs |= shared.metrics;
    let shared = Arc::new(shared);
    // regexroute.conf and reloads: only a gateway run on a configuration directory has them.
    let route_dir = match (&opts.mode, &opts.config_dir) {
        (Mode::Terminating, Some(dir)) => Some(dir.clone()),
        _ => None,
    };
    let reloader = Arc::new(reload::Reloader::new(
        route_dir.clone(),
        shared.clone(),
        acceptors.clone(),
    ));
    reloader.note_ca_files(&config);
    let admin = config.general.admin.map(|addr| {
        (
            addr,
            admin::Admin {
                shared: shared.clone(),
                prometheus,
                config_dir: opts
                    .config_dir
                    .as_ref()
                    .map_or("(embedded default)".into(), |d| d.display().to_string()),
                spool_dir: start.spool_dir.clone(),
                reloader: reloader.clone(),
                tls: config
                    .admin
                    .sslcontext
                    .as_ref()
                    .and_then(|c| acceptors.get(c).cloned()),
            },
        )
    });
    let specs = listener_specs(&config, &acceptors);
    refuse_taken(&specs)?;

    // The embedded default's upstream: a simulator in this process, on its own executor.
    let upstream = match opts.upstream_sim {
        Some(addr) => {
            let sim_cfg = Arc::new(sim_config(addr, None));
            let sim_shared = Arc::new(Shared::new(
                sim_cfg.clone(),
                Mode::Simulator(SimOptions::default()),
                1,
                now_secs,
                Vec::new(),
            ));
            let sim_specs = listener_specs(&sim_cfg, &HashMap::new());
            refuse_taken(&sim_specs)?;
            let sim_start = Arc::new(ShardStart {
                spool_dir: None,
                spool: Arc::new(std::sync::Mutex::new(Vec::new())),
            });
            info!("upstream SMSC simulator on {addr} (the embedded default's second hop)");
            let pool = start_pool(
                "upstream-sim",
                PoolPlacement::Unbound(1),
                sim_shared.clone(),
                sim_specs,
                sim_start,
            )?;
            Some((sim_shared, pool))
        }
        None => None,
    };

    if let Some(dir) = &route_dir {
        match load_routes(dir, 1)? {
            Some(table) => {
                log_route_table(&table, &config);
                shared.routes.install(table);
            }
            None => info!(
                "no regexroute.conf in {}: messages go to default_route{}",
                dir.display(),
                if shared.live.load().default_link.is_some() {
                    ""
                } else {
                    " (none: terminating)"
                }
            ),
        }
    }
    if let Some((target, name)) = &shared.live.load().backup {
        info!(
            "backup_smpp_gw {name} ({}): messages go there once when their target is down or out of retries; its permanent errors are {}",
            match target {
                crate::flow::Target::Link(_) => "a client link",
                crate::flow::Target::Esme(_) => "an ESME account",
                crate::flow::Target::Http(_) => "an HTTP endpoint",
            },
            if shared.live.load().policy.trusted { "final (smppgw_trusted)" } else { "retried (not smppgw_trusted)" }
        );
    }

    let stop = shared.clone();
    let stop_sim = upstream.as_ref().map(|(s, _)| s.clone());
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let sig = wait_for_signal();
            if sig == sys::SIGHUP || sig == sys::SIGUSR1 {
                stop.cdr_reopen.store(true, Ordering::Relaxed);
            }
            if sig == sys::SIGHUP {
                if route_dir.is_some() {
                    reloader.reload("SIGHUP");
                } else {
                    info!(
                        "SIGHUP: no configuration directory, nothing to reload (CDR file reopened)"
                    );
                }
                continue;
            }
            if sig == sys::SIGUSR1 {
                continue;
            }
            info!("signal {sig} received: unbinding sessions and stopping");
            stop.stopping.store(true, Ordering::Relaxed);
            if let Some(s) = &stop_sim {
                s.stopping.store(true, Ordering::Relaxed);
            }
            return;
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;

    let mode = match &opts.mode {
        Mode::Terminating => match (shared.live.load().default_link, shared.routes.version()) {
            (None, 0) => "terminating gateway (no regexroute.conf, no default_route)".to_string(),
            _ => "store-and-forward gateway".to_string(),
        },
        Mode::Simulator(s) => format!(
            "SMSC simulator (receipt delay {:?}, temporary errors {}%, permanent errors {}%, throttle {})",
            s.receipt_delay,
            s.temp_error_pct,
            s.perm_error_pct,
            if s.throttle > 0.0 { format!("{}/s per session", s.throttle) } else { "off".into() }
        ),
    };
    info!(
        "smppgw {} starting: {mode}, {shards} shards on {cores} cores",
        crate::VERSION
    );

    let cpus = glommio::CpuSet::online()
        .ok()
        .map(|set| set.filter(|l| allowed.is_empty() || allowed.contains(&l.cpu)))
        .filter(|set| !set.is_empty());
    if !allowed.is_empty() {
        info!(
            "shards pinned within CPUs {}",
            allowed
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let pool = start_pool(
        "smppgw",
        PoolPlacement::MaxSpread(shards, cpus),
        shared.clone(),
        specs,
        start,
    )?;

    let control_shared = shared.clone();
    let shards_done = Arc::new(AtomicBool::new(false));
    let control_done = shards_done.clone();
    let control = LocalExecutorBuilder::new(Placement::Unbound)
        .name("control")
        .io_memory(IO_MEMORY)
        .ring_depth(64)
        .spawn(move || async move {
            if let Some((addr, a)) = admin {
                admin::start(addr, a);
            }
            let mut cdr = cdr.map(|(file, rx)| CdrWriter::new(file, rx, checkpoint));
            let stall = std::env::var("SMPPGW_CDR_STALL_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis);
            let mut last = Instant::now();
            let mut last_accepted = 0u64;
            let mut last_links: Vec<String> = Vec::new();
            let mut last_link_log = Instant::now();
            // Until the shards are done (their last CDRs come after the stop signal).
            while !control_done.load(Ordering::Acquire) {
                glommio::timer::sleep(Duration::from_millis(50)).await;
                if let Some(w) = &mut cdr {
                    if let Some(d) = stall {
                        std::thread::sleep(d);
                    }
                    w.run_once(&control_shared);
                }
                if control_shared.is_stopping() {
                    continue;
                }
                // Link health: worked out here for every shard (messages waiting for a link
                // go when it says up), said in the log as it changes.
                for l in control_shared.links.iter() {
                    if l.update_health() {
                        if l.is_healthy() {
                            info!("link {} is up: {} transmitters bound", l.name, l.bound_tx_total());
                        } else if !l.is_removed() {
                            warn!(
                                "link {} is down: no transmitter bound; its messages fail over once or wait",
                                l.name
                            );
                        }
                    }
                }
                // Link state: a line when it changes (at most every 5 s), and every minute.
                if last_link_log.elapsed() >= Duration::from_secs(5) {
                    let now: Vec<String> =
                        control_shared.links.iter().map(|l| l.summary()).collect();
                    let shape = |v: &[String]| {
                        v.iter()
                            .map(|l| l.split(", ").next().unwrap_or("").to_string())
                            .collect::<Vec<_>>()
                    };
                    if shape(&now) != shape(&last_links)
                        || last_link_log.elapsed() >= Duration::from_secs(60)
                    {
                        for l in &now {
                            info!("{l}");
                        }
                        last_link_log = Instant::now();
                    }
                    last_links = now;
                }
                if last.elapsed() >= Duration::from_secs(60) {
                    let c = &control_shared;
                    let accepted = c.total(|c| &c.accepted);
                    info!(
                        "{} connections, {} messages accepted ({:.0}/s), {} delivered or forwarded, {} undelivered, {} deliver_sm sent",
                        control_shared.connections.load(Ordering::Relaxed),
                        accepted,
                        (accepted - last_accepted) as f64 / last.elapsed().as_secs_f64(),
                        c.total(|c| &c.delivered),
                        c.total(|c| &c.undelivered),
                        c.total(|c| &c.deliveries_sent)
                    );
                    last = Instant::now();
                    last_accepted = accepted;
                }
            }
            if let Some(w) = &mut cdr {
                w.finish(&control_shared);
                let (written, lost) = w.totals(&control_shared);
                info!("CDRs: {written} records written, {lost} lost");
            }
        })
        .map_err(|e| format!("cannot start the control executor: {e}"))?;
    let control = ControlJoin {
        handle: Some(control),
        done: shards_done,
    };

    let mut report = RunReport::default();
    let (mut commits, mut records, mut sync_p50, mut sync_p99) = (0u64, 0u64, 0u32, 0u32);
    for r in pool.join_all() {
        match r {
            Ok(s) => {
                report.connections += s.connections;
                report.pending += s.pending;
                commits += s.commits;
                records += s.records;
                sync_p50 = sync_p50.max(s.sync_us.0);
                sync_p99 = sync_p99.max(s.sync_us.1);
            }
            Err(e) => error!("a shard failed: {e:?}"),
        }
    }
    shared.stopping.store(true, Ordering::Relaxed);
    if let Some((sim, pool)) = upstream {
        sim.stopping.store(true, Ordering::Relaxed);
        let _ = pool.join_all();
    }
    drop(control);
    let c = &shared;
    report.accepted = c.total(|c| &c.accepted);
    report.rejected = c.total(|c| &c.rejected);
    report.deliveries_sent = c.total(|c| &c.deliveries_sent);
    report.deliveries_acked = c.total(|c| &c.deliveries_acked);
    let (reads, writes, frames) = (
        c.total(|c| &c.reads),
        c.total(|c| &c.writes),
        c.total(|c| &c.frames_in),
    );
    info!(
        "io: {frames} PDUs received in {reads} reads ({:.1} per read), {writes} writes",
        frames as f64 / reads.max(1) as f64
    );
    if commits > 0 {
        info!(
            "message log: {records} records in {commits} commits ({:.1} per commit); fdatasync p50 {sync_p50} us, p99 {sync_p99} us (the slowest shard's)",
            records as f64 / commits as f64
        );
    }
    info!(
        "stopped: {} connections served, {} messages acknowledged, {} refused, {} delivered or forwarded, {} undelivered, {} deliver_sm sent, {} acknowledged, {} receipts matched no message, {} messages kept in the spool",
        report.connections,
        report.accepted,
        report.rejected,
        c.total(|c| &c.delivered),
        c.total(|c| &c.undelivered),
        report.deliveries_sent,
        report.deliveries_acked,
        c.total(|c| &c.receipts_unmatched),
        report.pending
    );
    Ok(report)
}
