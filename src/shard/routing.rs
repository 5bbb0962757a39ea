//! A shard's side of routing: the route table it runs (picked up from [`RouteSlot`] when its
//! version changes), its decision cache, its global variables, and the parameter list it
//! refills for each message. What a decision means for the message is a [`Route`].
//!
//! [`RouteSlot`]: super::state::RouteSlot

use std::sync::Arc;

use log::info;

use bytes::Bytes;

use crate::ids::{AccountId, HttpId, LinkId};
use crate::route::{reject_status, Params, RouteCache, RouteTable, Target, Vars};
use crate::smpp::receipt::Receipt;
use crate::smpp::{Address, Body, CommandStatus, Pdu};

use super::state::Shared;

/// Decisions a shard remembers per cache generation.
pub const ROUTE_CACHE: usize = 16_384;

/// What to do with a message.
pub enum Route {
    /// There is no route file: the gateway's behaviour without one (default_route, else it
    /// terminates messages itself).
    NoTable,
    /// Forward over this client link.
    Forward(LinkId),
    /// Deliver (deliver_sm) to a bound receiver of this account.
    Deliver(AccountId),
    /// Send to this HTTP endpoint; the URL is in [`Router::url`].
    Http(HttpId),
    /// Nowhere the gateway serves: accepted, then ended undeliverable (with a receipt when
    /// asked); `why` goes to the log.
    NoRoute {
        why: String,
        /// One of [`crate::metrics::NO_ROUTE`].
        reason: &'static str,
    },
    /// Refused at once with this status (a route file reject); `why` goes to the log.
    Refuse { status: CommandStatus, why: String },
}

pub struct Router {
    table: Option<Arc<RouteTable>>,
    version: u64,
    cache: RouteCache,
    vars: Option<Vars>,
    /// Refilled for every message; values keep their allocations.
    pub params: Params,
    /// The `retries` the last decision's rules set, if they set one.
    pub retries: Option<u16>,
    /// The URL of the last decision, when it routed to HTTP.
    pub url: Option<Bytes>,
    /// HTTP endpoints this shard has routed to: the shared table (and its lock) is asked
    /// only for one not seen here before.
    endpoints: hashbrown::HashMap<String, HttpId>,
    seed: u64,
}

impl Router {
    pub fn new(seed: u64) -> Router {
        Router {
            table: None,
            version: 0,
            cache: RouteCache::new(ROUTE_CACHE),
            vars: None,
            params: Params::default(),
            retries: None,
            url: None,
            endpoints: hashbrown::HashMap::new(),
            seed,
        }
    }

    /// Routes the message whose parameters are in `self.params`.
    /// `default_link`: the shard's snapshot's `default_route`, for messages no rule routes.
    pub fn decide(&mut self, shared: &Shared, default_link: Option<LinkId>, shard: usize) -> Route {
        let version = shared.routes.version();
        self.retries = None;
        self.url = None;
        if version == 0 {
            return Route::NoTable;
        }
        if version != self.version {
            self.table = shared.routes.current();
            self.version = version;
            self.vars = self.table.as_deref().map(|t| Vars::new(t, self.seed));
            info!("shard {shard}: routing with regexroute.conf version {version}");
        }
        let (Some(table), Some(vars)) = (self.table.as_deref(), self.vars.as_mut()) else {
            return Route::NoTable;
        };
        let decision = self.cache.route(table, &self.params, vars);
        self.retries = decision
            .changes
            .iter()
            .rev()
            .find_map(|c| match c {
                crate::route::ParamChange::Set(n, v) if n == "retries" => {
                    Some(v.trim().parse().ok())
                }
                crate::route::ParamChange::Clear(n) if n == "retries" => Some(None),
                _ => None,
            })
            .flatten();
        let refuse = |reason: &'static str, why: String| Route::NoRoute { why, reason };
        let called = self.params.get("called").unwrap_or("");
        match Target::of(decision, &self.params) {
            Target::SmppClient(id) => match shared.links.position(id) {
                Some(i) if !sendable(shared, i) => refuse(
                    "link_cannot_send",
                    format!(
                        "{called}: route to smppclient/{id}, which {}",
                        unsendable_why(shared, i)
                    ),
                ),
                Some(i) => Route::Forward(i),
                None => refuse(
                    "no_such_link",
                    format!(
                    "{called}: route to smppclient/{id}, but ysmpp.conf has no such client link"
                ),
                ),
            },
            Target::SmppServer(id) => match shared.accounts.id_of(id) {
                Some(a) => Route::Deliver(a),
                None => refuse(
                    "no_such_account",
                    format!(
                        "{called}: route to smppserver/{id}, but regfile.conf has no such account"
                    ),
                ),
            },
            Target::Unrouted => match default_link {
                Some(i) if !sendable(shared, i) => refuse(
                    "link_cannot_send",
                    format!(
                        "{called}: default_route names smppclient/{}, which {}",
                        shared.links[i].name,
                        unsendable_why(shared, i)
                    ),
                ),
                Some(i) => Route::Forward(i),
                None => refuse(
                    "no_rule",
                    format!(
                    "{called}: no rule in regexroute.conf routes it and there is no default_route"
                ),
                ),
            },
            Target::Reject { error, reason } => Route::Refuse {
                status: reject_status(&error),
                why: format!("{called}: {}", Target::Reject { error, reason }.describe()),
            },
            Target::Http(url) => {
                let url = match url.or(shared.config.http_target.url.as_deref()) {
                    Some(u) => u.to_string(),
                    None => {
                        return refuse(
                            "no_http_url",
                            format!(
                                "{called}: route to http, but ysmpp.conf [http-target] has no url="
                            ),
                        )
                    }
                };
                match crate::http::target::Url::parse(&url) {
                    Err(e) => refuse("bad_url", format!("{called}: route to {url}: {e}")),
                    Ok(u) => match endpoint(&mut self.endpoints, shared, u.key()) {
                        Some(h) => {
                            self.url = Some(Bytes::from(url));
                            Route::Http(h)
                        }
                        None => refuse(
                            "too_many_endpoints",
                            format!(
                                "{called}: route to {url}: {} HTTP endpoints are the most the gateway tells apart",
                                super::endpoints::MAX_ENDPOINTS
                            ),
                        ),
                    },
                }
            }
            t @ Target::Unsupported(_) => {
                refuse("unsupported_target", format!("{called}: {}", t.describe()))
            }
        }
    }
}

/// HTTP endpoint `key`'s id: from the shard's own map, else the shared table's.
fn endpoint(
    mine: &mut hashbrown::HashMap<String, HttpId>,
    shared: &Shared,
    key: String,
) -> Option<HttpId> {
    if let Some(&h) = mine.get(&key) {
        return Some(h);
    }
    let h = shared.endpoints.id_for(&key)?;
    mine.insert(key, h);
    Some(h)
}

/// Whether link `i` can send messages at all (enabled, and binding as something that
/// transmits); messages for one that cannot would wait forever.
pub fn sendable(shared: &Shared, i: LinkId) -> bool {
    let c = shared.links[i].config();
    c.enabled && c.bind.transmits()
}

pub fn unsendable_why(shared: &Shared, i: LinkId) -> &'static str {
    if shared.links[i].config().enabled {
        "binds as a receiver only and cannot send"
    } else {
        "is not enabled"
    }
}

/// The parameters for a message that came in through `module` (`smppserver` from an ESME,
/// `smppclient` for MO from an upstream link, `http` from the HTTP API; `submit_info` is
/// `HTTP` for the last, `SMPP` else).
pub fn fill_params(
    p: &mut Params,
    pdu: &Pdu,
    source: &Address,
    dests: &[&Address],
    system_id: &str,
    module: &str,
) {
    let (service_type, esm_class, data_coding) = match &pdu.body {
        Body::SubmitSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::DataSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::SubmitMulti(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        Body::DeliverSm(m) => (m.service_type.as_bytes(), m.esm_class, m.data_coding),
        _ => (&[][..], 0, 0),
    };
    let called = dests.first().map(|d| d.addr.as_bytes()).unwrap_or_default();
    p.set("called", &String::from_utf8_lossy(called));
    p.set("caller", &String::from_utf8_lossy(source.addr.as_bytes()));
    p.set("module", module);
    p.set(
        "submit_info",
        if module == "http" { "HTTP" } else { "SMPP" },
    );
    let report = esm_class & 0x3C == 0x04 || esm_class & 0x3C == 0x20;
    p.set("sms_type", if report { "status_report" } else { "sms" });
    // A status report's state (DELIVRD, UNDELIV, ...), from its receipt text.
    let stat = match (&pdu.body, report) {
        (Body::SubmitSm(m) | Body::DeliverSm(m), true) => {
            Receipt::parse(&m.short_message).map(|r| r.stat)
        }
        _ => None,
    };
    match stat {
        Some(st) => p.set("sms_stat", as_text(st)),
        None => p.clear("sms_stat"),
    }
    p.set("system_id", system_id);
    p.set("service_type", &String::from_utf8_lossy(service_type));
    let mut num = itoa(esm_class);
    p.set("esm_class", num.as_str());
    num = itoa(data_coding);
    p.set("data_coding", num.as_str());
}

/// Bytes as text for the route rules (they are ASCII in practice; anything else is replaced).
pub fn as_text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("?")
}

/// A small number as text without allocating.
struct Num([u8; 3], u8);

impl Num {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0[3 - self.1 as usize..]).unwrap_or("0")
    }
}

fn itoa(v: u8) -> Num {
    let mut out = [b'0'; 3];
    let mut v = v;
    let mut i = 3;
    loop {
        i -= 1;
        out[i] = b'0' + v % 10;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    Num(out, (3 - i) as u8)
}
