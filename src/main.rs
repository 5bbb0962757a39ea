//! The `smppgw` command line.
//!
//! ```text
//! smppgw                          run on the embedded default configuration
//! smppgw run --config DIR         run with the configuration files in DIR
//! smppgw check --config DIR       validate DIR and print a summary
//! smppgw route --config DIR CALLED [name=value ...]
//!                                 explain how DIR/regexroute.conf routes a message
//! smppgw sim --listen ADDR        run an SMSC simulator (acks, receipts, errors, throttling)
//! ```

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
  smppgw --version | --help

environment: SMPPGW_LOG=error|warn|info|debug|trace (default info)
";

struct Args {
    rest: Vec<String>,
}

impl Args {
    fn value(&mut self, flag: &str) -> Result<Option<String>, String> {
        match self.rest.iter().position(|a| a == flag) {
            None => Ok(None),
            Some(i) => {
                if i + 1 >= self.rest.len() {
                    return Err(format!("{flag} needs a value"));
                }
                let v = self.rest.remove(i + 1);
                self.rest.remove(i);
                Ok(Some(v))
            }
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.rest.first() {
            None => Ok(()),
            Some(a) => Err(format!("unknown argument {a:?}")),
        }
    }
}

fn read_config(dir: &Path) -> Result<Config, String> {
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let read = |name: &str| -> Result<Option<String>, String> {
        let p = dir.join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    };
    let (ysmpp, regfile, openssl, yatesmsc) = (
        read("ysmpp.conf")?,
        read("regfile.conf")?,
        read("openssl.conf")?,
        read("yatesmsc.conf")?,
    );
    Config::parse(&ConfigFiles {
        ysmpp: ysmpp.as_deref(),
        regfile: regfile.as_deref(),
        openssl: openssl.as_deref(),
        yatesmsc: yatesmsc.as_deref(),
    })
    .map_err(|errs| {
        let mut s = format!(
            "{} configuration error(s) in {}:\n",
            errs.len(),
            dir.display()
        );
        for e in errs {
            s.push_str(&format!("  {e}\n"));
        }
        s.trim_end().to_string()
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

fn shards_flag(args: &mut Args, config: &mut Config) -> Result<(), String> {
    if let Some(n) = args.value("--shards")? {
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

fn main_inner(argv: Vec<String>) -> Result<(), String> {
    let mut args = Args { rest: argv };
    let command = args.rest.first().cloned();
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
            args.rest.remove(0);
            let dir = PathBuf::from(args.value("--config")?.ok_or("run needs --config DIR")?);
            let mut config = read_config(&dir)?;
            shards_flag(&mut args, &mut config)?;
            args.finish()?;
            warn_all(&config);
            run(RunOptions {
                config,
                config_dir: Some(dir),
                mode: Mode::Terminating,
                upstream_sim: None,
            })
        }
        Some("check") => {
            args.rest.remove(0);
            let dir = PathBuf::from(args.value("--config")?.ok_or("check needs --config DIR")?);
            args.finish()?;
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
            args.rest.remove(0);
            let dir = PathBuf::from(args.value("--config")?.ok_or("route needs --config DIR")?);
            let mut rest = std::mem::take(&mut args.rest).into_iter();
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
            args.rest.remove(0);
            let listen = args
                .value("--listen")?
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
            let receipt_delay = match args.value("--receipt-delay")? {
                None => Duration::ZERO,
                Some(v) => value::duration(&v).map_err(|e| format!("--receipt-delay: {e}"))?,
            };
            let temp_error_pct = pct(args.value("--temp-errors")?, "--temp-errors")?;
            let perm_error_pct = pct(args.value("--perm-errors")?, "--perm-errors")?;
            let throttle = match args.value("--throttle")? {
                None => 0.0,
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r >= 0.0)
                    .ok_or_else(|| format!("--throttle {v:?}: expected messages per second"))?,
            };
            let throttle_every = match args.value("--throttle-every")? {
                None => 0,
                Some(v) => v
                    .parse::<u32>()
                    .map_err(|_| format!("--throttle-every {v:?}: expected a number"))?,
            };
            let msgid = match args.value("--msgid")? {
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
            let record = args.value("--record")?.map(PathBuf::from);
            let tls_cert = args.value("--tls")?.map(PathBuf::from);
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
            shards_flag(&mut args, &mut config)?;
            args.finish()?;
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
