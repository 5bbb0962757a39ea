//! The configuration API on the admin endpoint: `/config/...` reads the files, and a write
//! changes them (validated as a reload reads them, written atomically, installed as a reload
//! installs them). The files stay the single source of truth: what the API shows is what
//! they hold, and a restart reads what it wrote.
//!
//! Every answer carries the running configuration version as its `ETag`; a write with
//! `If-Match` for another version changes nothing (409). Each change is logged (who, what,
//! the version before and after) and, with `[admin] audit=`, appended to the audit file.

use std::net::SocketAddr;
use std::sync::Arc;

use log::{info, warn};

use super::admin::Admin;
use super::reload::{ReloadReport, WriteError};
use crate::config::api::{self, Kind, Texts};
use crate::http::{json_str, Answer, Request};

/// The most a configuration request's body may hold.
pub const MAX_BODY: usize = 1 << 20;

/// Who made a request (for the log and the audit file).
pub struct Caller {
    pub who: String,
    pub peer: Option<SocketAddr>,
}

/// A write, as it came: applied to the files as they are when its turn comes.
enum Write {
    Routes(String),
    General(Vec<(String, Option<String>)>),
    Put {
        kind: Kind,
        name: String,
        keys: Vec<(String, Option<String>)>,
        /// `If-None-Match: *`: only if there is none yet.
        create_only: bool,
    },
    Delete {
        kind: Kind,
        name: String,
    },
}

impl Write {
    /// The new texts of the files it changes, and whether it created its resource.
    fn apply(self, dir: &std::path::Path) -> Result<(api::Changes, bool), api::Refusal> {
        match self {
            Write::Routes(text) => Ok((vec![("regexroute.conf", text)], false)),
            Write::General(keys) => {
                let texts = read_texts(dir).map_err(|e| (500, vec![e]))?;
                api::put_general(&texts, &keys).map(|c| (c, false))
            }
            Write::Put {
                kind,
                name,
                keys,
                create_only,
            } => {
                let texts = read_texts(dir).map_err(|e| (500, vec![e]))?;
                let created = api::show(kind, &texts, &name).is_none();
                if create_only && !created {
                    return Err((
                        409,
                        vec![format!(
                            "{} {name:?} exists (If-None-Match: *)",
                            api::kind_word(kind)
                        )],
                    ));
                }
                api::put(kind, &texts, &name, &keys).map(|c| (c, created))
            }
            Write::Delete { kind, name } => {
                let texts = read_texts(dir).map_err(|e| (500, vec![e]))?;
                api::delete(kind, &texts, &name).map(|c| (c, false))
            }
        }
    }
}

/// Serves a request under `/config`.
pub async fn handle(req: &Request, admin: &Arc<Admin>, caller: Caller) -> Answer {
    let parts: Vec<&str> = req
        .path
        .trim_start_matches("/config")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let method = req.method.as_str();
    let Some(dir) = admin.reloader.dir().map(|d| d.to_path_buf()) else {
        return Answer::error(
            409,
            "the gateway runs on its embedded default: there are no files to show or change (start it with --config DIR)",
        );
    };
    // The version first: a write that lands between the two then makes the ETag stale, never
    // the other way round.
    let version = admin.reloader.version();
    let etag = format!("\"{version}\"");
    let read = |body: serde_json::Value| {
        Answer::json(200, format!("{body}\n")).header("ETag", etag.clone())
    };
    let texts = || read_texts(&dir);
    let write = match (method, parts.as_slice()) {
        ("GET" | "HEAD", ["routes"]) => {
            return match std::fs::read_to_string(dir.join("regexroute.conf")) {
                Ok(text) => Answer::text(200, text).header("ETag", etag),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Answer::error(
                    404,
                    "no regexroute.conf (default_route or terminating); PUT one to install it",
                ),
                Err(e) => Answer::error(500, &format!("regexroute.conf: {e}")),
            };
        }
        ("PUT", ["routes"]) => match std::str::from_utf8(&req.body) {
            Ok(t) => Write::Routes(t.to_string()),
            Err(_) => return refused(400, &["the route file must be UTF-8 text".to_string()]),
        },
        ("POST", ["routes", "explain"]) => return explain(req, admin),
        (_, ["routes", "explain"]) => return method_not_allowed("POST"),
        ("GET" | "HEAD", ["general"]) => {
            return match texts() {
                Ok(t) => read(api::show_general(&t)),
                Err(e) => Answer::error(500, &e),
            }
        }
        ("PUT", ["general"]) => match api::keys_from_json(&req.body, true) {
            Ok(keys) => Write::General(keys),
            Err((status, why)) => return refused(status, &why),
        },
        ("GET" | "HEAD", [kind]) => match (Kind::from_path(kind), texts()) {
            (Some(k), Ok(t)) => return read(api::list(k, &t)),
            (None, _) => return not_found(),
            (_, Err(e)) => return Answer::error(500, &e),
        },
        (_, [kind, name]) => {
            let Some(k) = Kind::from_path(kind) else {
                return not_found();
            };
            let name = name.to_string();
            match method {
                "GET" | "HEAD" => {
                    return match texts() {
                        Ok(t) => match api::show(k, &t, &name) {
                            Some(v) => read(v),
                            None => {
                                Answer::error(404, &format!("no {} {name:?}", api::kind_word(k)))
                            }
                        },
                        Err(e) => Answer::error(500, &e),
                    }
                }
                "PUT" => match api::keys_from_json(&req.body, false) {
                    Ok(keys) => Write::Put {
                        kind: k,
                        name,
                        keys,
                        create_only: req.if_none_match.as_deref().map(str::trim) == Some("*"),
                    },
                    Err((status, why)) => return refused(status, &why),
                },
                "DELETE" => Write::Delete { kind: k, name },
                _ => return method_not_allowed("GET, PUT, DELETE"),
            }
        }
        (_, ["routes"]) => return method_not_allowed("GET, PUT"),
        (_, ["general"]) => return method_not_allowed("GET, PUT"),
        (_, [kind]) if Kind::from_path(kind).is_some() => return method_not_allowed("GET"),
        _ => return not_found(),
    };
    let if_match = match req.if_match.as_deref().map(parse_etag) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(v))) => Some(v),
        Some(Err(())) => {
            return Answer::error(
                400,
                &format!("If-Match must be a configuration version such as \"{version}\""),
            )
        }
    };
    let what = format!("{method} {}", req.path);
    let reloader = admin.reloader.clone();
    let audit = admin
        .shared
        .live
        .load()
        .config
        .admin
        .audit
        .as_ref()
        .map(|f| dir.join(f));
    let who = caller.who.clone();
    let peer = caller
        .peer
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    // Validation, fsyncs and certificates: off the control executor's thread. A panic there
    // would take glommio's blocking thread (and every later reload) with it: it is caught.
    glommio::executor()
        .spawn_blocking(move || {
            let why = format!("config API ({what})");
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reloader.write(|dir| write.apply(dir), if_match, &why)
            }))
            .unwrap_or_else(|_| {
                Err(WriteError::Io(
                    "internal error while writing (logged); nothing was installed".into(),
                ))
            });
            let answer = written(&result);
            match &result {
                Ok((report, before, _)) => {
                    info!(
                        "config: {who} from {peer}: {what}: version {before} -> {}",
                        report.version
                    );
                    if let Some(path) = audit {
                        append_audit(&path, &who, &peer, &what, *before, report.version);
                    }
                }
                Err(_) => info!(
                    "config: {who} from {peer}: {what}: refused ({})",
                    answer.status
                ),
            }
            answer
        })
        .await
}

/// The files' texts now.
fn read_texts(dir: &std::path::Path) -> Result<Texts, String> {
    let files = super::files::ConfigDir::on_disk(dir);
    Ok(Texts {
        ysmpp: files.read("ysmpp.conf")?,
        regfile: files.read("regfile.conf")?,
        openssl: files.read("openssl.conf")?,
        yatesmsc: files.read("yatesmsc.conf")?,
    })
}

/// `"7"`, `W/"7"` or `7`: version 7; `*`: any.
fn parse_etag(v: &str) -> Result<Option<u64>, ()> {
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    v.parse().map(Some).map_err(|_| ())
}

fn written(result: &Result<(ReloadReport, u64, bool), WriteError>) -> Answer {
    match result {
        Ok((report, _, created)) => Answer::json(if *created { 201 } else { 200 }, report.json())
            .header("ETag", format!("\"{}\"", report.version)),
        Err(WriteError::NoFiles) => Answer::error(409, "the embedded default has no files"),
        Err(WriteError::Stale { asked, running }) => Answer::json(
            409,
            format!(
                "{{\"error\":{},\"version\":{running}}}\n",
                json_str(&format!(
                    "the configuration changed since version {asked}: it is version {running} now; read it again and retry"
                ))
            ),
        )
        .header("ETag", format!("\"{running}\"")),
        Err(WriteError::Refused(status, why)) => refused(*status, why),
        Err(WriteError::Invalid(errors)) => refused(422, errors),
        Err(WriteError::Io(e)) => Answer::error(500, e),
    }
}

fn refused(status: u16, why: &[String]) -> Answer {
    let list: Vec<String> = why.iter().map(|w| json_str(w)).collect();
    Answer::json(
        status,
        format!(
            "{{\"error\":{},\"errors\":[{}]}}\n",
            json_str(why.first().map_or("refused", |w| w.as_str())),
            list.join(",")
        ),
    )
}

fn not_found() -> Answer {
    Answer::error(
        404,
        "no such resource (/config/accounts, /config/clients, /config/listeners, each /NAME; /config/routes, /config/routes/explain, /config/general)",
    )
}

fn method_not_allowed(allow: &'static str) -> Answer {
    Answer::error(405, &format!("allowed: {allow}")).header("Allow", allow.to_string())
}

/// `POST /config/routes/explain` with `{"called": "...", "caller": "...", ...}`: how the
/// running route table routes that message.
fn explain(req: &Request, admin: &Admin) -> Answer {
    let keys = match api::keys_from_json(&req.body, false) {
        Ok(k) => k,
        Err((status, why)) => return refused(status, &why),
    };
    let Some(table) = admin.shared.routes.current() else {
        return Answer::error(
            404,
            "no route file is installed (default_route or terminating)",
        );
    };
    let mut params = crate::route::Params::default();
    if !keys.iter().any(|(k, _)| k == "called") {
        return Answer::error(400, "called: required");
    }
    for (k, v) in &keys {
        params.set(k, v.as_deref().unwrap_or(""));
    }
    let mut vars = crate::route::Vars::new(&table, std::process::id() as u64);
    let v = crate::route::explain_json(&table, &params, &mut vars);
    Answer::json(200, format!("{v}\n"))
}

/// One tab-separated line per change: time (UTC), who, peer, what, version before, after.
fn append_audit(path: &std::path::Path, who: &str, peer: &str, what: &str, old: u64, new: u64) {
    use std::io::Write as _;
    let line = format!(
        "{}\t{who}\t{peer}\t{what}\t{old}\t{new}\n",
        crate::logger::timestamp()
    );
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(line.as_bytes())?;
            f.sync_data()
        });
    if let Err(e) = r {
        warn!("config: audit file {}: {e}", path.display());
    }
}
