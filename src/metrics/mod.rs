//! Metrics, with the `metrics` crate and its Prometheus exporter (rendered by the admin
//! endpoint; the exporter's own HTTP listener is not built).
//!
//! Each shard makes its handles once, at start, labelled with its shard ([`ShardMetrics`]):
//! nothing is looked up by name on the data path, and each handle is written by one core
//! only. Histograms are bucket counts of our own ([`hist`]), not the exporter's (which keeps
//! every sample until a scrape: memory that grows while nobody scrapes, and an allocation on
//! the data path every few dozen samples). What the control shard knows (links, accounts, the CDR writer) it sets just before
//! a scrape ([`Scrape`]).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `smppgw_pdus_in_total` | shard, command | requests received from ESMEs |
//! | `smppgw_pdus_out_total` | shard, command, status | responses sent to ESMEs (submit_sm_resp, data_sm_resp, submit_multi_resp, other) by status (ok, throttled, queue_full, system_error, invalid_dest, invalid_coding, other), and deliver_sm sent (status `request`) |
//! | `smppgw_routes_total` | shard, decision, target | routing decisions: forward (to a link) and deliver (to an ESME) by target, no_route, refused (a route file reject), terminate (no route file) |
//! | `smppgw_no_route_total` | shard, reason | messages with no route by reason: no_rule, no_such_link, no_such_account, link_cannot_send, unsupported_target |
//! | `smppgw_tls_handshakes_total` | shard, result | TLS handshakes on the listeners: ok, failed |
//! | `smppgw_messages_total` | shard, stage | accepted, refused, delivered (or forwarded), undelivered, unrouted |
//! | `smppgw_binds_total` | shard, result | binds accepted and refused |
//! | `smppgw_attempts_total` | shard, outcome | attempts at links and ESMEs by outcome |
//! | `smppgw_failover_attempts_total` | shard | attempts at the backup gateway |
//! | `smppgw_receipts_total` | shard, kind | relayed (delivered to the originator), deferred (from links, matching no message yet: refused with ESME_RX_T_APPN), unmatched (from links, no message waited; dropped) |
//! | `smppgw_pending_messages` | shard | messages not final |
//! | `smppgw_link_backlog` | shard | messages queued for links that are up |
//! | `smppgw_awaiting_receipts` | shard | forwarded messages waiting for their receipt |
//! | `smppgw_log_commit_records` | shard | records per commit (histogram) |
//! | `smppgw_log_fdatasync_seconds` | shard | fdatasync latency (histogram) |
//! | `smppgw_submit_response_seconds` | shard | submit to submit_sm_resp (histogram) |
//! | `smppgw_message_final_seconds` | shard | accepted to final (histogram) |
//! | `smppgw_binds` | account | ESME binds now |
//! | `smppgw_link_binds` | link, direction | bound transmitters and receivers of each client link |
//! | `smppgw_connections` | | open connections |
//! | `smppgw_cdr_dropped_total` | | CDR records dropped because the writer fell behind |
//! | `smppgw_link_up` | link | 1 while the link has a bound session |
//! | `smppgw_link_in_flight`, `smppgw_link_queued` | link | the link's window occupancy (sent, unanswered) and its queue, over all shards |
//! | `smppgw_config_version` | | the configuration version running (one more per reload) |
//! | `smppgw_reloads_total` | result | reloads installed (ok) and refused |

mod hist;

use metrics::{counter, gauge, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::smpp::{Body, CommandId, CommandStatus};

/// Responses counted by command (`other` for the rest).
const OUT_COMMANDS: &[&str] = &[
    "submit_sm_resp",
    "data_sm_resp",
    "submit_multi_resp",
    "other",
];

/// Response statuses counted by name (`other` for the rest).
const OUT_STATUSES: &[&str] = &[
    "ok",
    "throttled",
    "queue_full",
    "system_error",
    "invalid_dest",
    "invalid_coding",
    "other",
];

/// Why a message had no route (the reasons routing gives).
pub const NO_ROUTE: &[&str] = &[
    "no_rule",
    "no_such_link",
    "no_such_account",
    "link_cannot_send",
    "unsupported_target",
    "no_http_url",
    "bad_url",
    "too_many_endpoints",
];

/// The requests counted by command (anything else is `other`).
const COMMANDS: &[(CommandId, &str)] = &[
    (CommandId::SUBMIT_SM, "submit_sm"),
    (CommandId::SUBMIT_MULTI, "submit_multi"),
    (CommandId::DATA_SM, "data_sm"),
    (CommandId::DELIVER_SM, "deliver_sm"),
    (CommandId::ENQUIRE_LINK, "enquire_link"),
    (CommandId::UNBIND, "unbind"),
    (CommandId::QUERY_SM, "query_sm"),
    (CommandId::CANCEL_SM, "cancel_sm"),
    (CommandId::REPLACE_SM, "replace_sm"),
];

/// Attempt outcomes, as the flow names them.
pub const OUTCOMES: &[&str] = &[
    "accepted",
    "delivered",
    "temporary",
    "permanent",
    "timeout",
    "unreachable",
    "no_room",
];

/// The HTTP API's endpoints and the statuses it answers (anything else is `other`).
pub const HTTP_APIS: &[&str] = &["messages", "sendsms", "other"];
pub const HTTP_STATUSES: &[u16] = &[
    202, 400, 401, 403, 404, 405, 408, 413, 417, 429, 431, 501, 503,
];
/// What an HTTP target's answer meant.
pub const HTTP_TARGET_RESULTS: &[&str] = &["delivered", "temporary", "permanent", "timeout"];

/// Installs the Prometheus recorder (once per process); `None` if one is installed already.
/// (The histograms are not the exporter's: see [`hist`].)
pub fn install() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

/// One shard's handles. (Its message counts by stage live in its `Counters`, which the
/// control shard copies into `smppgw_messages_total` at each scrape: counted once.)
pub struct ShardMetrics {
    pdus_in: Vec<Counter>,
    pdus_other: Counter,
    /// By `OUT_COMMANDS` then `OUT_STATUSES`.
    pdus_out: Vec<Counter>,
    deliver_out: Counter,
    /// By link and by account id, made on a target's first message (a name looked up once).
    routed_links: std::cell::RefCell<Vec<Option<Counter>>>,
    routed_accounts: std::cell::RefCell<Vec<Option<Counter>>>,
    routed_http: std::cell::RefCell<Vec<Option<Counter>>>,
    no_route: Vec<Counter>,
    no_route_total: Counter,
    route_refused: Counter,
    route_terminated: Counter,
    shard: String,
    pub tls_ok: Counter,
    pub tls_failed: Counter,
    attempts: Vec<Counter>,
    pub failover_attempts: Counter,
    pub receipts_relayed: Counter,
    pub pending: Gauge,
    pub link_backlog: Gauge,
    pub awaiting_receipts: Gauge,
    pub commit_records: Histogram,
    pub fdatasync: Histogram,
    pub submit_response: Histogram,
    pub message_final: Histogram,
    /// By `HTTP_APIS` then `HTTP_STATUSES` and other.
    http_requests: Vec<Counter>,
    /// By `HTTP_TARGET_RESULTS`.
    http_targets: Vec<Counter>,
    pub http_submit: Histogram,
}

impl ShardMetrics {
    pub fn new(shard: usize) -> ShardMetrics {
        let s = shard.to_string();
        ShardMetrics {
            pdus_in: COMMANDS
                .iter()
                .map(|(_, name)| {
                    counter!("smppgw_pdus_in_total", "shard" => s.clone(), "command" => *name)
                })
                .collect(),
            pdus_other: counter!("smppgw_pdus_in_total", "shard" => s.clone(), "command" => "other"),
            pdus_out: OUT_COMMANDS
                .iter()
                .flat_map(|c| OUT_STATUSES.iter().map(move |st| (*c, *st)))
                .map(|(c, st)| {
                    counter!("smppgw_pdus_out_total", "shard" => s.clone(), "command" => c, "status" => st)
                })
                .collect(),
            deliver_out: counter!("smppgw_pdus_out_total", "shard" => s.clone(), "command" => "deliver_sm", "status" => "request"),
            routed_links: Default::default(),
            routed_accounts: Default::default(),
            routed_http: Default::default(),
            no_route: NO_ROUTE
                .iter()
                .map(|r| counter!("smppgw_no_route_total", "shard" => s.clone(), "reason" => *r))
                .collect(),
            no_route_total: counter!("smppgw_routes_total", "shard" => s.clone(), "decision" => "no_route", "target" => ""),
            route_refused: counter!("smppgw_routes_total", "shard" => s.clone(), "decision" => "refused", "target" => ""),
            route_terminated: counter!("smppgw_routes_total", "shard" => s.clone(), "decision" => "terminate", "target" => ""),
            shard: s.clone(),
            tls_ok: counter!("smppgw_tls_handshakes_total", "shard" => s.clone(), "result" => "ok"),
            tls_failed: counter!("smppgw_tls_handshakes_total", "shard" => s.clone(), "result" => "failed"),
            attempts: OUTCOMES
                .iter()
                .map(|o| counter!("smppgw_attempts_total", "shard" => s.clone(), "outcome" => *o))
                .collect(),
            failover_attempts: counter!("smppgw_failover_attempts_total", "shard" => s.clone()),
            receipts_relayed: counter!("smppgw_receipts_total", "shard" => s.clone(), "kind" => "relayed"),
            pending: gauge!("smppgw_pending_messages", "shard" => s.clone()),
            link_backlog: gauge!("smppgw_link_backlog", "shard" => s.clone()),
            awaiting_receipts: gauge!("smppgw_awaiting_receipts", "shard" => s.clone()),
            commit_records: hist::histogram("smppgw_log_commit_records", &s, hist::RECORDS),
            fdatasync: hist::histogram("smppgw_log_fdatasync_seconds", &s, hist::SECONDS),
            submit_response: hist::histogram("smppgw_submit_response_seconds", &s, hist::SECONDS),
            message_final: hist::histogram("smppgw_message_final_seconds", &s, hist::SECONDS),
            http_requests: HTTP_APIS
                .iter()
                .flat_map(|a| {
                    HTTP_STATUSES
                        .iter()
                        .map(|st| st.to_string())
                        .chain(std::iter::once("other".to_string()))
                        .map(move |st| (*a, st))
                })
                .map(|(a, st)| {
                    counter!("smppgw_http_requests_total", "shard" => s.clone(), "api" => a, "status" => st)
                })
                .collect(),
            http_targets: HTTP_TARGET_RESULTS
                .iter()
                .map(|r| counter!("smppgw_http_target_requests_total", "shard" => s.clone(), "result" => *r))
                .collect(),
            http_submit: hist::histogram("smppgw_http_submit_seconds", &s, hist::SECONDS),
        }
    }

    /// An HTTP API request answered with `status` (`api`: an index of `HTTP_APIS`).
    pub fn http_request(&self, api: usize, status: u16) {
        let per = HTTP_STATUSES.len() + 1;
        let st = HTTP_STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(HTTP_STATUSES.len());
        if let Some(c) = self
            .http_requests
            .get(api.min(HTTP_APIS.len() - 1) * per + st)
        {
            c.increment(1);
        }
    }

    /// What an HTTP target's answer meant (an index of `HTTP_TARGET_RESULTS`).
    pub fn http_target(&self, result: usize) {
        if let Some(c) = self.http_targets.get(result) {
            c.increment(1);
        }
    }

    /// A request received from an ESME.
    pub fn pdu_in(&self, command: CommandId) {
        let i = match command {
            CommandId::SUBMIT_SM => 0,
            CommandId::SUBMIT_MULTI => 1,
            CommandId::DATA_SM => 2,
            CommandId::DELIVER_SM => 3,
            CommandId::ENQUIRE_LINK => 4,
            CommandId::UNBIND => 5,
            CommandId::QUERY_SM => 6,
            CommandId::CANCEL_SM => 7,
            CommandId::REPLACE_SM => 8,
            _ => return self.pdus_other.increment(1),
        };
        debug_assert_eq!(COMMANDS[i].0, command);
        self.pdus_in[i].increment(1);
    }

    /// A response sent to an ESME.
    pub fn pdu_out(&self, body: &Body, status: CommandStatus) {
        let c = match body {
            Body::SubmitSmResp(_) => 0,
            Body::DataSmResp(_) => 1,
            Body::SubmitMultiResp(_) => 2,
            _ => 3,
        };
        let st = match status {
            CommandStatus::ROK => 0,
            CommandStatus::RTHROTTLED => 1,
            CommandStatus::RMSGQFUL => 2,
            CommandStatus::RSYSERR => 3,
            CommandStatus::RINVDSTADR => 4,
            CommandStatus::RINVDCS => 5,
            _ => 6,
        };
        self.pdus_out[c * OUT_STATUSES.len() + st].increment(1);
    }

    /// A deliver_sm sent to an ESME.
    pub fn deliver_out(&self) {
        self.deliver_out.increment(1);
    }

    /// A message routed to `target` (`name`: its name, asked for on its first message only).
    pub fn routed_to(&self, target: crate::flow::Target, name: impl FnOnce() -> String) {
        let (list, i, decision) = match target {
            crate::flow::Target::Link(l) => (&self.routed_links, l, "forward"),
            crate::flow::Target::Esme(a) => (&self.routed_accounts, a, "deliver"),
            crate::flow::Target::Http(h) => (&self.routed_http, h, "http"),
        };
        let mut list = list.borrow_mut();
        if list.len() <= i {
            list.resize(i + 1, None);
        }
        list[i]
            .get_or_insert_with(|| {
                counter!("smppgw_routes_total", "shard" => self.shard.clone(), "decision" => decision, "target" => name())
            })
            .increment(1);
    }

    /// A message with no route, by reason (one of [`NO_ROUTE`]).
    pub fn no_route(&self, reason: &str) {
        self.no_route_total.increment(1);
        if let Some(i) = NO_ROUTE.iter().position(|r| *r == reason) {
            self.no_route[i].increment(1);
        }
    }

    /// A message a route file rejected.
    pub fn route_refused(&self) {
        self.route_refused.increment(1);
    }

    /// A message terminated by the gateway (no route file, no default_route).
    pub fn route_terminated(&self) {
        self.route_terminated.increment(1);
    }

    /// An attempt came back with `outcome` (one of [`OUTCOMES`]).
    pub fn attempt(&self, outcome: &str, on_backup: bool) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.attempts[i].increment(1);
        }
        if on_backup {
            self.failover_attempts.increment(1);
        }
    }
}

/// One shard's totals, as its `Counters` hold them.
pub struct Stages {
    pub accepted: u64,
    pub refused: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub unrouted: u64,
    pub receipts_unmatched: u64,
    pub receipts_deferred: u64,
    pub binds: u64,
    pub bind_failures: u64,
}

/// What the control shard sets before rendering a scrape.
pub struct Scrape {
    pub connections: usize,
    /// Per shard.
    pub stages: Vec<Stages>,
    /// (account, binds now).
    pub binds: Vec<(String, usize)>,
    pub links: Vec<LinkScrape>,
    pub cdr_dropped: u64,
    pub config_version: u64,
    /// Reloads installed and refused.
    pub reloads: (u64, u64),
}

/// One client link at a scrape.
pub struct LinkScrape {
    pub name: String,
    pub transmitters: usize,
    pub receivers: usize,
    pub in_flight: i64,
    pub queued: i64,
}

impl Scrape {
    /// Sets the control shard's gauges and renders everything as Prometheus text.
    pub fn render(&self, handle: &PrometheusHandle) -> String {
        gauge!("smppgw_connections").set(self.connections as f64);
        for (shard, st) in self.stages.iter().enumerate() {
            let s = shard.to_string();
            for (stage, n) in [
                ("accepted", st.accepted),
                ("refused", st.refused),
                ("delivered", st.delivered),
                ("undelivered", st.undelivered),
                ("unrouted", st.unrouted),
            ] {
                counter!("smppgw_messages_total", "shard" => s.clone(), "stage" => stage)
                    .absolute(n);
            }
            counter!("smppgw_receipts_total", "shard" => s.clone(), "kind" => "unmatched")
                .absolute(st.receipts_unmatched);
            counter!("smppgw_receipts_total", "shard" => s.clone(), "kind" => "deferred")
                .absolute(st.receipts_deferred);
            counter!("smppgw_binds_total", "shard" => s.clone(), "result" => "ok")
                .absolute(st.binds);
            counter!("smppgw_binds_total", "shard" => s, "result" => "refused")
                .absolute(st.bind_failures);
        }
        for (account, n) in &self.binds {
            gauge!("smppgw_binds", "account" => account.clone()).set(*n as f64);
        }
        for l in &self.links {
            let link = &l.name;
            gauge!("smppgw_link_binds", "link" => link.clone(), "direction" => "transmit")
                .set(l.transmitters as f64);
            gauge!("smppgw_link_binds", "link" => link.clone(), "direction" => "receive")
                .set(l.receivers as f64);
            gauge!("smppgw_link_up", "link" => link.clone()).set(
                if l.transmitters + l.receivers > 0 {
                    1.0
                } else {
                    0.0
                },
            );
            gauge!("smppgw_link_in_flight", "link" => link.clone()).set(l.in_flight.max(0) as f64);
            gauge!("smppgw_link_queued", "link" => link.clone()).set(l.queued.max(0) as f64);
        }
        gauge!("smppgw_config_version").set(self.config_version as f64);
        counter!("smppgw_reloads_total", "result" => "ok").absolute(self.reloads.0);
        counter!("smppgw_reloads_total", "result" => "refused").absolute(self.reloads.1);
        counter!("smppgw_cdr_dropped_total").absolute(self.cdr_dropped);
        let mut out = handle.render();
        hist::render(&mut out);
        out
    }
}
