//! Live reload: SIGHUP, the admin endpoint's `POST /reload`, and `smppgw reload` read every
//! file again (ysmpp.conf, regfile.conf, openssl.conf, yatesmsc.conf, regexroute.conf).
//!
//! Nothing changes until all of it validates: a file with an error, a certificate that does
//! not load, a route file that does not compile leaves the running configuration as it is,
//! and the report says why (`file:line`). What passes is installed without dropping
//! unaffected binds:
//! - accounts: passwords and limits change in place (new binds and messages use them); a new
//!   account binds at once; a removed account's sessions are unbound;
//! - client links: a changed link rebinds with its new settings (what it had in flight goes
//!   back to its queue); a new link starts; a removed one unbinds;
//! - TLS contexts of the listeners: the certificate and key are read again and serve new
//!   handshakes (sessions up keep theirs);
//! - routes, yatesmsc.conf (retries, failover, validity, `smppgw_address`), `[general]`
//!   `log_level`, `default_route` and `delivery_retry`, `[cdr] format`;
//! - anything else (listeners, shards, the spool, the other `[general]` keys, `[cdr] file`)
//!   is reported as needing a restart and keeps its running value.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use log::{error, info, warn};

use crate::config::{ClientLink, Config, General};
use crate::net::tls;
use crate::shard::{Shared, TlsSlot};

/// Why a configuration API write changed nothing.
#[derive(Debug)]
pub enum WriteError {
    /// The gateway runs on its embedded default: there are no files.
    NoFiles,
    /// The write was for version `asked`, but `running` runs now.
    Stale { asked: u64, running: u64 },
    /// What does not validate, each naming file and line.
    Invalid(Vec<String>),
    /// The edit itself refused (HTTP status, reasons): a bad name, key or value.
    Refused(u16, Vec<String>),
    /// A file could not be written.
    Io(String),
}

/// What one reload did.
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Installed (false: refused, nothing changed).
    pub ok: bool,
    /// The configuration version running after it.
    pub version: u64,
    /// What changed, one line each.
    pub changes: Vec<String>,
    /// What changed in the files but needs a restart (the running value stays).
    pub restart: Vec<String>,
    /// Why it was refused.
    pub errors: Vec<String>,
}

impl ReloadReport {
    fn refused(errors: Vec<String>, version: u64) -> ReloadReport {
        ReloadReport {
            ok: false,
            version,
            errors,
            ..ReloadReport::default()
        }
    }

    /// For people: what `smppgw reload` prints.
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.ok {
            let _ = writeln!(s, "reloaded: configuration version {}", self.version);
        } else {
            let _ = writeln!(
                s,
                "refused: the running configuration (version {}) stays",
                self.version
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        for c in &self.changes {
            let _ = writeln!(s, "  {c}");
        }
        for r in &self.restart {
            let _ = writeln!(s, "  needs a restart: {r}");
        }
        s
    }

    /// For programs: the admin endpoint's answer.
    pub fn json(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|x| super::admin::json_str(x))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{{\"ok\":{},\"version\":{},\"changes\":[{}],\"restart_needed\":[{}],\"errors\":[{}]}}\n",
            self.ok,
            self.version,
            list(&self.changes),
            list(&self.restart),
            list(&self.errors)
        )
    }
}

/// Reloads the running gateway's configuration; one reload at a time.
pub struct Reloader {
    /// The configuration directory (`None`: the embedded default, nothing to reload).
    dir: Option<PathBuf>,
    shared: Arc<Shared>,
    /// The TLS contexts the listeners use, by name.
    server_tls: HashMap<String, TlsSlot>,
    one_at_a_time: Mutex<()>,
    /// Reloads installed, and refused.
    installed: AtomicU64,
    refused: AtomicU64,
    /// The CA file each verifying TLS link was last set up with, by link: a new one rebinds
    /// the link even when its section did not change.
    ca_files: Mutex<HashMap<String, Vec<u8>>>,
}

/// What a link's `ca_file` holds now (`None`: the link does not verify with one).
fn ca_of(c: &ClientLink, dir: &Path) -> Option<std::io::Result<Vec<u8>>> {
    let file = c.ca_file.as_deref().filter(|_| c.tls && c.verify)?;
    Some(super::files::read_pem(&dir.join(file)))
}

impl Reloader {
    pub fn new(
        dir: Option<PathBuf>,
        shared: Arc<Shared>,
        server_tls: HashMap<String, TlsSlot>,
    ) -> Reloader {
        Reloader {
            dir,
            shared,
            server_tls,
            one_at_a_time: Mutex::new(()),
            installed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            ca_files: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the CA files the links were set up with at start (call once, before any
    /// reload).
    pub fn note_ca_files(&self, config: &Config) {
        let Some(dir) = &self.dir else { return };
        let mut seen = self.ca_files.lock().unwrap_or_else(|p| p.into_inner());
        for c in &config.clients {
            if let Some(Ok(pem)) = ca_of(c, dir) {
                seen.insert(c.name.clone(), pem);
            }
        }
    }

    /// Reloads installed and refused so far (the metrics).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.installed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Reads every file again and installs what validates (see the module's text); `why`
    /// says what asked (for the log). Blocking: file reads and certificate parsing.
    pub fn reload(&self, why: &str) -> ReloadReport {
        let _one = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let running = self.shared.live.load_full();
        let Some(dir) = &self.dir else {
            info!("{why}: the embedded default has no configuration directory; nothing to reload");
            return ReloadReport::refused(
                vec!["running on the embedded default: there are no files to reload".into()],
                running.version,
            );
        };
        let report = match self.prepare(super::files::ConfigDir::on_disk(dir)) {
            Ok(next) => self.install(next, &running.config),
            Err(errors) => ReloadReport::refused(errors, running.version),
        };
        if report.ok {
            self.installed.fetch_add(1, Ordering::Relaxed);
            info!(
                "{why}: configuration version {} installed from {}",
                report.version,
                dir.display()
            );
            for c in &report.changes {
                info!("reload: {c}");
            }
            for r in &report.restart {
                warn!("reload: {r}: needs a restart; the running value stays");
            }
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            error!(
                "{why}: {} refused; keeping configuration version {}:\n  {}",
                dir.display(),
                report.version,
                report.errors.join("\n  ")
            );
        }
        report
    }

    /// A configuration API write. Under the reload lock, `edit` makes the new texts of the
    /// files it changes from the directory as it is now (so that two writes cannot lose each
    /// other's changes), and they are validated with the other files exactly as a reload
    /// reads them; when all of it passes, the files are written atomically and installed as
    /// a reload installs them. Nothing is written when the running version is not
    /// `if_match` (another write came first), when `edit` refuses, or when anything does not
    /// validate; files written are put back if installing still refuses. Returns the report,
    /// the version it replaced, and what `edit` returned beside the texts.
    pub fn write<T>(
        &self,
        edit: impl FnOnce(&Path) -> Result<(Vec<(&'static str, String)>, T), (u16, Vec<String>)>,
        if_match: Option<u64>,
        why: &str,
    ) -> Result<(ReloadReport, u64, T), WriteError> {
        let _one = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let running = self.shared.live.load_full();
        let Some(dir) = &self.dir else {
            return Err(WriteError::NoFiles);
        };
        if let Some(v) = if_match.filter(|&v| v != running.version) {
            return Err(WriteError::Stale {
                asked: v,
                running: running.version,
            });
        }
        let (changes, extra) =
            edit(dir).map_err(|(status, why)| WriteError::Refused(status, why))?;
        let files = super::files::ConfigDir {
            dir,
            overlay: &changes,
        };
        let next = self.prepare(files).map_err(WriteError::Invalid)?;
        self.shared
            .accounts
            .check_room(&next.config.accounts)
            .map_err(|e| WriteError::Invalid(vec![e]))?;
        // What each file held (absent: it did not exist), read before anything is written.
        let mut old = Vec::new();
        for (name, _) in &changes {
            match std::fs::read(dir.join(name)) {
                Ok(b) => old.push((*name, Some(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => old.push((*name, None)),
                Err(e) => return Err(WriteError::Io(format!("{}: {e}", dir.join(name).display()))),
            }
        }
        for (i, (name, text)) in changes.iter().enumerate() {
            if let Err(e) = super::files::write_atomically(dir, name, text.as_bytes()) {
                // This one may have been renamed into place before the error: it goes back too.
                self.put_back(dir, &old[..=i]);
                return Err(WriteError::Io(format!("{}: {e}", dir.join(name).display())));
            }
        }
        let report = self.install(next, &running.config);
        if report.ok {
            self.installed.fetch_add(1, Ordering::Relaxed);
            info!(
                "{why}: configuration version {} installed ({} written)",
                report.version,
                changes
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for c in &report.changes {
                info!("reload: {c}");
            }
            for r in &report.restart {
                warn!("reload: {r}: needs a restart; the running value stays");
            }
            Ok((report, running.version, extra))
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.put_back(dir, &old);
            Err(WriteError::Invalid(report.errors))
        }
    }

    /// Writes back the files a refused write had replaced (removing those it created).
    fn put_back(&self, dir: &Path, before: &[(&str, Option<Vec<u8>>)]) {
        for (name, old) in before {
            let r = match old {
                Some(bytes) => super::files::write_atomically(dir, name, bytes),
                None => match std::fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    r => r,
                },
            };
            if let Err(e) = r {
                error!(
                    "{}: cannot be put back after a refused write: {e}",
                    dir.join(name).display()
                );
            }
        }
    }

    /// The running configuration version.
    pub fn version(&self) -> u64 {
        self.shared.live.load().version
    }

    /// The configuration directory (none: the embedded default).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reads and validates everything; nothing is installed yet.
    fn prepare(&self, files: super::files::ConfigDir<'_>) -> Result<Next, Vec<String>> {
        let dir = files.dir;
        let config = super::files::read_config_in(files)
            .map_err(|e| e.lines().map(|l| l.trim().to_string()).collect::<Vec<_>>())?;
        let mut errors = Vec::new();
        // The endpoint stays on the address it was started on until a restart.
        errors.extend(crate::config::admin::reload_problem(
            self.shared.config.general.admin,
            &config.admin,
        ));
        let routes = match super::files::load_routes_in(files, self.shared.routes.version() + 1) {
            Ok(t) => t,
            Err(e) => {
                errors.extend(e.lines().map(|l| l.trim().to_string()));
                None
            }
        };
        let mut server_tls = Vec::new();
        for (name, slot) in &self.server_tls {
            match config.tls_context(name) {
                None => errors.push(format!(
                    "openssl.conf: sslcontext {name:?}, which a listener uses, is gone"
                )),
                Some(ctx) => match tls::load_server(ctx, dir) {
                    Ok(c) => server_tls.push((name.clone(), slot.clone(), c)),
                    Err(e) => errors.push(format!("TLS context {name:?}: {e}")),
                },
            }
        }
        // Client links that are new or changed (their section, or the CA file they verify
        // with): their TLS settings must load.
        let mut link_tls = HashMap::new();
        let mut ca_changed = Vec::new();
        let mut cas = HashMap::new();
        for c in &config.clients {
            // (A CA file that cannot be read differs from the one seen: loading the link's
            // TLS settings below says why.)
            if let Some(Ok(pem)) = ca_of(c, dir) {
                cas.insert(c.name.clone(), pem);
            }
            let same_section = self
                .shared
                .links
                .find(&c.name)
                .is_some_and(|l| !l.is_removed() && same_link(&l.config(), c));
            let same_ca = {
                let seen = self.ca_files.lock().unwrap_or_else(|p| p.into_inner());
                seen.get(&c.name) == cas.get(&c.name)
            };
            if same_section && same_ca {
                continue;
            }
            if same_section {
                ca_changed.push(c.name.clone());
            }
            match super::link_tls(c, Some(dir)) {
                Ok(t) => {
                    link_tls.insert(c.name.clone(), t);
                }
                Err(e) => errors.push(e),
            }
        }
        let added_links = config
            .clients
            .iter()
            .filter(|c| self.shared.links.find(&c.name).is_none())
            .count();
        if added_links > self.shared.links.room() {
            errors.push(format!(
                "ysmpp.conf: {added_links} new client links, but only {} more can be added without a restart",
                self.shared.links.room()
            ));
        }
        if errors.is_empty() {
            Ok(Next {
                config,
                routes,
                server_tls,
                link_tls,
                ca_changed,
                cas,
            })
        } else {
            Err(errors)
        }
    }

    /// Installs what `prepare` validated.
    fn install(&self, next: Next, old: &Config) -> ReloadReport {
        let shared = &self.shared;
        let mut report = ReloadReport {
            ok: true,
            ..ReloadReport::default()
        };
        // Accounts first: the one step that can still refuse (no slots left), before anything
        // else has changed.
        match shared.accounts.apply(&next.config.accounts) {
            Err(e) => {
                return ReloadReport::refused(vec![e], shared.live.load().version);
            }
            Ok(a) => {
                for name in &a.added {
                    report.changes.push(format!("account {name} added"));
                }
                for name in &a.removed {
                    let binds = shared
                        .accounts
                        .any_named(name)
                        .map_or(0, |x| x.binds.load(std::sync::atomic::Ordering::Relaxed));
                    report.changes.push(format!(
                        "account {name} removed{}",
                        if binds > 0 {
                            format!(": its {binds} binds are unbound")
                        } else {
                            String::new()
                        }
                    ));
                }
                for (name, keys) in &a.changed {
                    report.changes.push(format!(
                        "account {name}: {} changed (binds stay; new binds and messages use it)",
                        keys.join(", ")
                    ));
                }
            }
        }
        // Client links.
        let mut link_tls = next.link_tls;
        for c in &next.config.clients {
            match shared.links.find(&c.name) {
                Some(l) if next.ca_changed.contains(&c.name) => {
                    l.replace(c.clone(), link_tls.remove(&c.name).flatten());
                    report.changes.push(format!(
                        "client link {}: its ca_file changed: rebinding",
                        c.name
                    ));
                }
                Some(l) if !l.is_removed() && same_link(&l.config(), c) => {}
                Some(l) => {
                    let was_removed = l.is_removed();
                    let keys = l.config().changed_keys(c);
                    l.replace(c.clone(), link_tls.remove(&c.name).flatten());
                    report.changes.push(if was_removed {
                        format!("client link {} added back", c.name)
                    } else {
                        format!(
                            "client link {}: {} changed: rebinding",
                            c.name,
                            keys.join(", ")
                        )
                    });
                }
                None => {
                    let index = shared.links.len();
                    let link = crate::upstream::LinkShared::new(
                        index,
                        c.clone(),
                        shared.shards,
                        link_tls.remove(&c.name).flatten(),
                        shared.epoch,
                    );
                    if shared.links.push(link).is_some() {
                        report.changes.push(format!("client link {} added", c.name));
                    }
                }
            }
        }
        for l in shared.links.iter() {
            if !l.is_removed() && !next.config.clients.iter().any(|c| c.name == l.name) {
                l.remove();
                report
                    .changes
                    .push(format!("client link {} removed: unbinding", l.name));
            }
        }
        if let Some(c) = &shared.cluster {
            // The bridge takes leases on the links this node has now.
            c.set_links(next.config.clients.iter().map(|l| l.name.clone()).collect());
        }
        *self.ca_files.lock().unwrap_or_else(|p| p.into_inner()) = next.cas;
        // Certificates of the listeners' TLS contexts.
        for (name, slot, config) in next.server_tls {
            slot.store(config);
            report.changes.push(format!(
                "TLS context {name}: certificate and key read again (new handshakes use them)"
            ));
        }
        // Routes.
        match next.routes {
            Some(table) => {
                super::log_route_table(&table, &next.config);
                report.changes.push(format!(
                    "regexroute.conf version {} replaces version {}",
                    table.version,
                    shared.routes.version()
                ));
                shared.routes.install(table);
            }
            None if shared.routes.version() > 0 => report.changes.push(format!(
                "regexroute.conf is gone; keeping version {}",
                shared.routes.version()
            )),
            None => {}
        }
        if old.yatesmsc != next.config.yatesmsc {
            report
                .changes
                .push("yatesmsc.conf: retries, failover and validity as loaded".into());
        }
        let (g_old, g_new) = (&old.general, &next.config.general);
        if g_old.default_route != g_new.default_route {
            report.changes.push(format!(
                "default_route: {}",
                g_new.default_route.as_deref().unwrap_or("(none)")
            ));
        }
        if g_old.log_level != g_new.log_level {
            crate::logger::configure(g_new.log_level);
            report.changes.push(format!(
                "log_level: {}",
                g_new
                    .log_level
                    .map_or("(default)".to_string(), |l| l.to_string())
            ));
        }
        if g_old.delivery_retry != g_new.delivery_retry {
            report.changes.push(format!(
                "delivery_retry: {}",
                crate::config::value::duration_text(g_new.delivery_retry)
            ));
        }
        if old.cdr.template != next.config.cdr.template {
            report.changes.push("[cdr] format".into());
        }
        report.restart = restart_needed(&shared.config, &next.config);
        // The snapshot the data path reads, last: it names the links and accounts above.
        let version = shared.live.load().version + 1;
        let live = crate::shard::state::Live::new(
            Arc::new(next.config),
            version,
            &shared.links,
            &shared.accounts,
        );
        shared.live.store(Arc::new(live));
        report.version = version;
        report
    }
}

/// What `prepare` validated, to install.
struct Next {
    config: Config,
    routes: Option<crate::route::RouteTable>,
    server_tls: Vec<(String, TlsSlot, Arc<rustls::ServerConfig>)>,
    link_tls: HashMap<String, Option<Arc<rustls::ClientConfig>>>,
    /// Links whose section is the same but whose CA file changed.
    ca_changed: Vec<String>,
    /// Every verifying link's CA file as read now.
    cas: HashMap<String, Vec<u8>>,
}

/// Two loads of a link's section say the same (where the section stands aside).
fn same_link(a: &ClientLink, b: &ClientLink) -> bool {
    a.changed_keys(b).is_empty()
}

/// What differs between the running configuration and the files that only a restart
/// applies.
fn restart_needed(running: &Config, next: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b): (&General, &General) = (&running.general, &next.general);
    macro_rules! general {
        ($($f:ident),*) => { $( if a.$f != b.$f { out.push(format!("ysmpp.conf [general] {}", stringify!($f))); } )* };
    }
    general!(
        shards,
        spool_dir,
        sync,
        log_io,
        sync_window,
        segment_size,
        memory_messages,
        queue_limit,
        max_pdu_size,
        session_init_timeout,
        enquire_link_interval,
        enquire_link_timeout,
        response_timeout,
        inactivity_timeout,
        window,
        delivery_attempts,
        unmatched_receipt_wait,
        spin_before_park,
        max_connections,
        admin
    );
    if running.server != next.server {
        out.push("ysmpp.conf [smpp-server]".into());
    }
    let listeners = |c: &Config| {
        c.listeners
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.enable,
                    l.socket_addr(),
                    l.sslcontext.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    if listeners(running) != listeners(next) {
        out.push("ysmpp.conf listeners (addresses, ports, TLS contexts)".into());
    }
    if running.http != next.http {
        out.push("ysmpp.conf [http]".into());
    }
    if running.http_target != next.http_target {
        out.push("ysmpp.conf [http-target]".into());
    }
    if running.admin.sslcontext != next.admin.sslcontext {
        out.push("ysmpp.conf [admin] sslcontext".into());
    }
    if running.cdr.file != next.cdr.file || running.cdr.rotate_size != next.cdr.rotate_size {
        out.push("ysmpp.conf [cdr] file or rotate_size".into());
    }
    out
}
