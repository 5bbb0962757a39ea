//! The `smppgw` command line.
//!
//! ```text
//! smppgw                          run on the embedded default configuration
//! smppgw run --config DIR         run with the configuration files in DIR
//! smppgw check --config DIR       validate DIR and print a summary
//! smppgw route --config DIR CALLED [name=value ...]
//!                                 explain how DIR/regexroute.conf routes a message
//! smppgw sim --listen ADDR        run an SMSC simulator (acks, receipts, errors, throttling)
//! smppgw reload --config DIR      make the gateway running on DIR read its files again
//! smppgw status --config DIR      what the gateway running on DIR reports (/status)
//! smppgw config get|set|delete KIND [NAME] [key=value ...] --config DIR
//!                                 the configuration API of the gateway running on DIR
//! ```
//!
//! Options are parsed with lexopt (`--config DIR` and `--config=DIR` alike).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use smppgw::config::{default, value, Config, ConfigFiles};
use smppgw::control::{self, RunOptions};
use smppgw::shard::{Mode, SimOptions};
use smppgw::smpp::receipt::IdRadix;

const USAGE: &str = "usage:
  smppgw                              run on the embedded default configuration:
                                      plain 127.0.0.1:2775, TLS 127.0.0.1:3550, account demo/demo
  smppgw run --config DIR [--shards N]
                                      run with DIR/ysmpp.conf, regfile.conf, openssl.conf,
                                      yatesmsc.conf (optional)
  smppgw check --config DIR           validate the configuration and print a summary
  smppgw route --config DIR CALLED [name=value ...]
                                      explain how DIR/regexroute.conf routes a message:
                                      the rules that match (file:line), parameters set, target
                                      e.g. smppgw route --config /etc/smppgw 88229002 \
                                             module=smsc_map submit_info=SMPP
  smppgw sim --listen ADDR [--shards N] [--receipt-delay DUR] [--temp-errors PCT]
             [--perm-errors PCT] [--throttle MSG_PER_S] [--throttle-every N]
             [--msgid hex|decimal|hex/decimal] [--tls CERT_AND_KEY.pem] [--record FILE]
                                      an SMSC simulator: any system_id binds; messages are
                                      acknowledged, receipted, refused or throttled as asked
  smppgw reload --config DIR | --admin ADDR
                                      make the gateway running on DIR read every file again
                                      (as SIGHUP does) and print what changed; through the
                                      admin endpoint ([general] admin, or --admin), exit
                                      status 2 if refused
  smppgw status --config DIR | --admin ADDR [--json]
                                      what the gateway running on DIR reports: binds, links,
                                      queues, spool, configuration version
  smppgw config get KIND [NAME] | set KIND [NAME] key=value... | set routes FILE
         | delete KIND NAME   (--config DIR | --admin ADDR [--token T] [--json])
                                      the configuration API of a running gateway: KIND is
                                      accounts, clients, listeners, routes or general; set
                                      changes only the keys given (key= removes one) and
                                      refuses if the configuration changed meanwhile
  (reload, status and config send [admin] token or user/password of DIR's ysmpp.conf,
   --token, or SMPPGW_ADMIN_TOKEN when the endpoint asks for credentials)
  smppgw --version | --help

environment: SMPPGW_LOG=error|warn|info|debug|trace (default info)
";

/// The options of a command, parsed with lexopt: `--name VALUE` (or `--name=VALUE`) and
/// `--flag`; `positional` collects the rest (only `route` takes any).
#[derive(Default)]
struct Opts {
    values: Vec<(String, String)>,
    flags: Vec<String>,
    positional: Vec<String>,
}

impl Opts {
    /// Parses `argv` (after the command): `takes_value` and `flags` name what it accepts.
    fn parse(argv: Vec<String>, takes_value: &[&str], flags: &[&str]) -> Result<Opts, String> {
        use lexopt::Arg;
        let mut p = lexopt::Parser::from_args(argv);
        let mut o = Opts::default();
        loop {
            let arg = p.next().map_err(|e| e.to_string())?;
            match arg {
                None => break,
                Some(Arg::Long(name)) => {
                    let flag = format!("--{name}");
                    if takes_value.contains(&flag.as_str()) {
                        let v = p
                            .value()
                            .map_err(|_| format!("{flag} needs a value"))?
                            .into_string()
                            .map_err(|_| format!("{flag}: not UTF-8"))?;
                        o.values.push((flag, v));
                    } else if flags.contains(&flag.as_str()) {
                        o.flags.push(flag);
                    } else {
                        return Err(format!("unknown argument {flag:?}"));
                    }
                }
                Some(Arg::Short(c)) => return Err(format!("unknown argument \"-{c}\"")),
                Some(Arg::Value(v)) => o.positional.push(
                    v.into_string()
                        .map_err(|_| "an argument is not UTF-8".to_string())?,
                ),
            }
        }
        Ok(o)
    }

    fn value(&self, flag: &str) -> Option<String> {
        self.values
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.clone())
    }

    fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// `--config DIR`, which `command` needs.
    fn config_dir(&self, command: &str) -> Result<PathBuf, String> {
        self.value("--config")
            .map(PathBuf::from)
            .ok_or_else(|| format!("{command} needs --config DIR"))
    }

    /// No positional arguments (every command but `route`).
    fn no_positional(&self) -> Result<(), String> {
        match self.positional.first() {
            None => Ok(()),
            Some(a) => Err(format!("unknown argument {a:?}")),
        }
    }
}

fn read_config(dir: &Path) -> Result<Config, String> {
    control::read_config(dir)
}

/// The admin endpoint of the gateway that runs on `--config DIR` (its `[general] admin`),
/// or `--admin ADDR`.
fn admin_of(opts: &Opts, command: &str) -> Result<std::net::SocketAddr, String> {
    if let Some(a) = opts.value("--admin") {
        return a
            .parse()
            .map_err(|_| format!("--admin {a:?}: expected ADDRESS:PORT"));
    }
    let dir = opts.config_dir(command)?;
    let config = read_config(&dir)?;
    config.general.admin.ok_or_else(|| {
        format!(
            "{}/ysmpp.conf: [general] admin=off: the running gateway has no admin endpoint (send it SIGHUP instead)",
            dir.display()
        )
    })
}

/// The credentials for the admin endpoint: `--token`, `SMPPGW_ADMIN_TOKEN`, or with
/// `--config DIR` what `[admin]` of its ysmpp.conf holds (none: no header).
fn admin_auth(opts: &Opts) -> Result<Vec<(&'static str, String)>, String> {
    let token = opts
        .value("--token")
        .or_else(|| std::env::var("SMPPGW_ADMIN_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if let Some(t) = token {
        return Ok(vec![("Authorization", format!("Bearer {t}"))]);
    }
    let Some(dir) = opts.value("--config") else {
        return Ok(Vec::new());
    };
    let a = read_config(Path::new(&dir))?.admin;
    Ok(match (a.token, a.user, a.password) {
        (Some(t), _, _) => vec![("Authorization", format!("Bearer {t}"))],
        (None, Some(u), Some(p)) => vec![("Authorization", control::config_cli::basic(&u, &p))],
        _ => Vec::new(),
    })
}

fn default_config() -> Config {
    Config::parse(&ConfigFiles {
        ysmpp: Some(default::YSMPP),
        regfile: Some(default::REGFILE),
        openssl: Some(default::OPENSSL),
        yatesmsc: None,
    })
    .unwrap_or_else(|e| unreachable!("the embedded default is valid: {e:?}"))
}

fn shards_flag(opts: &Opts, config: &mut Config) -> Result<(), String> {
    if let Some(n) = opts.value("--shards") {
        let n: usize = n
            .parse()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| format!("--shards {n:?}: expected a number from 1 to 1024"))?;
        config.general.shards = smppgw::config::Shards::Count(n);
    }
    Ok(())
}

fn warn_all(config: &Config) {
    for w in &config.warnings {
        log::warn!("{w}");
    }
}

fn run(options: RunOptions) -> Result<(), String> {
    control::run(options).map(|_| ())
}

fn main_inner(mut argv: Vec<String>) -> Result<(), String> {
    let command = (!argv.is_empty()).then(|| argv.remove(0));
    match command.as_deref() {
        None => run(RunOptions {
            config: default_config(),
            config_dir: None,
            mode: Mode::Terminating,
            upstream_sim: Some(
                default::UPSTREAM_SIM
                    .parse()
                    .map_err(|_| "bad UPSTREAM_SIM")?,
            ),
        }),
        Some("--version" | "-V" | "version") => {
            println!("smppgw {}", smppgw::VERSION);
            Ok(())
        }
        Some("--help" | "-h" | "help") => {
            print!("smppgw {}: SMPP gateway\n\n{USAGE}", smppgw::VERSION);
            Ok(())
        }
        Some("run") => {
            let opts = Opts::parse(argv, &["--config", "--shards"], &[])?;
            opts.no_positional()?;
            let dir = opts.config_dir("run")?;
            let mut config = read_config(&dir)?;
            shards_flag(&opts, &mut config)?;
            warn_all(&config);
            run(RunOptions {
                config,
                config_dir: Some(dir),
                mode: Mode::Terminating,
                upstream_sim: None,
            })
        }
        Some("check") => {
            let opts = Opts::parse(argv, &["--config"], &[])?;
            opts.no_positional()?;
            let dir = opts.config_dir("check")?;
            let config = read_config(&dir)?;
            // Certificates are part of the configuration: load them too.
            for t in &config.tls {
                smppgw::net::tls::load_server(t, &dir)?;
            }
            let routes = control::load_routes(&dir, 1)?;
            for w in routes.iter().flat_map(|t| &t.warnings) {
                eprintln!("warning: {w}");
            }
            print!(
                "{}: configuration is valid\n{}{}",
                dir.display(),
                config.summary(),
                routes.map_or_else(
                    || "routes: no regexroute.conf (default_route or terminating)\n".to_string(),
                    |t| t.summary()
                )
            );
            Ok(())
        }
        Some("route") => {
            let opts = Opts::parse(argv, &["--config"], &[])?;
            let dir = opts.config_dir("route")?;
            let mut rest = opts.positional.into_iter();
            let called = rest.next().ok_or(
                "route needs the called number: smppgw route --config DIR CALLED [name=value ...]",
            )?;
            let table = control::load_routes(&dir, 1)?
                .ok_or_else(|| format!("{}: no regexroute.conf", dir.display()))?;
            for w in &table.warnings {
                eprintln!("warning: {w}");
            }
            let mut params = smppgw::route::Params::default();
            params.set("called", &called);
            for a in rest {
                let (n, v) = a
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("{a:?}: expected name=value"))?;
                params.set(n, v);
            }
            let mut vars = smppgw::route::Vars::new(&table, std::process::id() as u64);
            print!("{}", smppgw::route::explain(&table, &params, &mut vars));
            Ok(())
        }
        Some("sim") => {
            let opts = Opts::parse(
                argv,
                &[
                    "--listen",
                    "--shards",
                    "--receipt-delay",
                    "--temp-errors",
                    "--perm-errors",
                    "--throttle",
                    "--throttle-every",
                    "--msgid",
                    "--record",
                    "--tls",
                ],
                &[],
            )?;
            opts.no_positional()?;
            let listen = opts
                .value("--listen")
                .ok_or("sim needs --listen ADDR:PORT")?;
            let addr: std::net::SocketAddr = listen
                .parse()
                .map_err(|_| format!("--listen {listen:?}: expected ADDRESS:PORT"))?;
            let pct = |v: Option<String>, flag: &str| -> Result<f64, String> {
                match v {
                    None => Ok(0.0),
                    Some(v) => v
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(|| format!("{flag} {v:?}: expected a percentage 0-100")),
                }
            };
            let receipt_delay = match opts.value("--receipt-delay") {
                None => Duration::ZERO,
                Some(v) => value::duration(&v).map_err(|e| format!("--receipt-delay: {e}"))?,
            };
            let temp_error_pct = pct(opts.value("--temp-errors"), "--temp-errors")?;
            let perm_error_pct = pct(opts.value("--perm-errors"), "--perm-errors")?;
            let throttle = match opts.value("--throttle") {
                None => 0.0,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r >= 0.0)
                    .ok_or_else(|| format!("--throttle {v:?}: expected messages per second"))?,
            };
            let throttle_every = match opts.value("--throttle-every") {
                None => 0,
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| format!("--throttle-every {v:?}: expected a number"))?,
            };
            let msgid = match opts.value("--msgid") {
                None => (IdRadix::Hex, IdRadix::Hex),
                Some(v) => {
                    let one = |s: &str| {
                        IdRadix::from_name(s)
                            .ok_or(format!("--msgid {v:?}: hex, decimal or hex/decimal"))
                    };
                    match v.split_once('/') {
                        Some((a, b)) => (one(a)?, one(b)?),
                        None => (one(&v)?, one(&v)?),
                    }
                }
            };
            let record = opts.value("--record").map(PathBuf::from);
            let tls_cert = opts.value("--tls").map(PathBuf::from);
            let mut config_dir = None;
            let mut tls = None;
            if let Some(cert) = &tls_cert {
                let dir = cert
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                tls = Some(smppgw::config::TlsContext {
                    name: "sim".into(),
                    certificate: cert
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    key: None,
                    domains: Vec::new(),
                    line: 0,
                });
                config_dir = Some(dir);
            }
            let mut config = control::sim_config(addr, tls);
            shards_flag(&opts, &mut config)?;
            run(RunOptions {
                config,
                config_dir,
                mode: Mode::Simulator(SimOptions {
                    receipt_delay,
                    temp_error_pct,
                    perm_error_pct,
                    throttle,
                    throttle_every,
                    msgid,
                    record,
                }),
                upstream_sim: None,
            })
        }
        Some("reload") => {
            let opts = Opts::parse(argv, &["--config", "--admin", "--token"], &[])?;
            opts.no_positional()?;
            let answer = control::client::request_with(
                admin_of(&opts, "reload")?,
                "POST",
                "/reload?format=text",
                &admin_auth(&opts)?,
                b"",
            )?;
            print!("{}", answer.body);
            match answer.code {
                200 => Ok(()),
                422 => Err("reload refused".into()),
                code => Err(format!(
                    "the admin endpoint answered {code}: {}",
                    answer.body.trim()
                )),
            }
        }
        Some("status") => {
            let opts = Opts::parse(argv, &["--config", "--admin", "--token"], &["--json"])?;
            opts.no_positional()?;
            let path = if opts.flag("--json") {
                "/status"
            } else {
                "/status?format=text"
            };
            let answer = control::client::request_with(
                admin_of(&opts, "status")?,
                "GET",
                path,
                &admin_auth(&opts)?,
                b"",
            )?;
            if answer.code != 200 {
                return Err(format!(
                    "the admin endpoint answered {}: {}",
                    answer.code,
                    answer.body.trim()
                ));
            }
            print!("{}", answer.body);
            Ok(())
        }
        Some("config") => {
            let opts = Opts::parse(argv, &["--config", "--admin", "--token"], &["--json"])?;
            control::config_cli::run(
                admin_of(&opts, "config")?,
                &admin_auth(&opts)?,
                &opts.positional,
                opts.flag("--json"),
            )
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    smppgw::logger::init();
    match main_inner(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smppgw: {e}");
            ExitCode::from(2)
        }
    }
}
