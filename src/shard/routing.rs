//! A shard's side of routing: the route table it runs (picked up from [`RouteSlot`] when its
//! version changes), its decision cache, its global variables, and the parameter list it
//! refills for each message. What a decision means for the message is a [`Route`].
//!
//! [`RouteSlot`]: super::state::RouteSlot

use std::sync::Arc;

use log::info;

use crate::route::{reject_status, Params, RouteCache, RouteTable, Target, Vars};
use crate::smpp::CommandStatus;

use super::state::{AccountState, Shared};

/// Decisions a shard remembers per cache generation.
pub const ROUTE_CACHE: usize = 16_384;

/// What to do with a message.
pub enum Route {
    /// There is no route file: the gateway's behaviour without one (default_route, else it
    /// terminates messages itself).
    NoTable,
    /// Forward over this client link.
    Forward(usize),
    /// Deliver (deliver_sm) to a bound receiver of this account.
    Deliver(Arc<AccountState>),
    /// Refuse with this status; `why` goes to the log.
    Refuse { status: CommandStatus, why: String },
}

pub struct Router {
    table: Option<Arc<RouteTable>>,
    version: u64,
    cache: RouteCache,
    vars: Option<Vars>,
    /// Refilled for every message; values keep their allocations.
    pub params: Params,
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
            seed,
        }
    }

    /// Routes the message whose parameters are in `self.params`.
    pub fn decide(&mut self, shared: &Shared, shard: usize) -> Route {
        let version = shared.routes.version();
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
        let refuse = |why: String| Route::Refuse {
            status: CommandStatus::RINVDSTADR,
            why,
        };
        let called = self.params.get("called").unwrap_or("");
        match Target::of(decision, &self.params) {
            Target::SmppClient(id) => match shared.links.iter().position(|l| l.config.name == id) {
                Some(i) => Route::Forward(i),
                None => refuse(format!(
                    "{called}: route to smppclient/{id}, but ysmpp.conf has no such client link"
                )),
            },
            Target::SmppServer(id) => match shared.account(id) {
                Some(a) => Route::Deliver(a),
                None => refuse(format!(
                    "{called}: route to smppserver/{id}, but regfile.conf has no such account"
                )),
            },
            Target::Unrouted => match shared.default_link {
                Some(i) => Route::Forward(i),
                None => refuse(format!(
                    "{called}: no rule in regexroute.conf routes it and there is no default_route"
                )),
            },
            Target::Reject { error, reason } => Route::Refuse {
                status: reject_status(&error),
                why: format!("{called}: {}", Target::Reject { error, reason }.describe()),
            },
            t @ (Target::Http(_) | Target::Unsupported(_)) => {
                refuse(format!("{called}: {}", t.describe()))
            }
        }
    }
}
