//! smppgw: a high-throughput SMPP gateway for bare-metal SMSC nodes on Linux.
//!
//! ESMEs bind to smppgw as to an SMSC; it routes each message by YateSMSC-style rules to an
//! upstream SMSC or to another bound ESME, relays delivery receipts, fails over to a backup
//! gateway, and writes CDRs. The architecture is described in `README.md` and `docs/`.
//!
//! # Layout
//!
//! Dependencies point inward, toward the protocol core, which is sans-IO.
//!
//! | module | its one job |
//! |---|---|
//! | [`ids`] | the gateway's message id; link, account and shard indexes |
//! | [`limit`] | the token bucket of account, link and simulator rates |
//! | [`smpp`] | the SMPP 3.4/5.0 protocol core: codec, framing, receipts, session state machine (no IO, no clock) |
//! | [`config`] | the YateSMSC-style configuration files: INI lexer, typed model, validation with `file:line` errors (no IO) |
//! | [`text`] | message text: GSM 7-bit and national tables, UCS2, Latin-1, UTF-8, UDH, segmentation, reassembly (no IO) |
//! | [`route`] | YateSMSC regexroute files compiled to versioned tables, prefix indexes, decision caches, the explain report (no IO) |
//! | [`flow`] | a message's life: retries, failover, validity, receipts, the records that make it durable (no IO, no clock) |
//! | [`store`] | the message log: record format and replay (pure), segments written with group commit (glue) |
//! | [`cdr`] | call detail records: the record and its line format (pure), the file (glue) |
//! | [`http`] | HTTP/1.1 framing (httparse), the submit API's JSON and Kannel forms, HTTP targets: URLs, bodies, answers (no IO) |
//! | [`metrics`] | metric handles per shard, the scrape the admin endpoint renders |
//! | [`cluster`] | several nodes as one gateway: hand-offs to the node an ESME is bound on (wire format pure; a NATS bridge thread) |
//! | [`accounts`] | the ESME accounts as the running gateway sees them, by id |
//! | [`net`] | runtime glue: memlock and io_uring checks, TLS, the connection driver |
//! | [`upstream`] | client links to upstream SMSCs: bind slots, reconnect, throttling; they report to a `LinkSink` |
//! | [`shard`] | one pinned executor per core: listeners, ESME and HTTP sessions, intake, links, HTTP targets, the flow and the log of its messages |
//! | [`control`] | composition: reads the spool, starts the shards and the control executor, reloads routes (SIGHUP), stops on SIGINT/SIGTERM |
//! | [`logger`] | log lines on stderr |
//!
//! Dependencies point inward: `flow` and `store::record` use the protocol core and `text`;
//! `upstream` knows nothing of `shard`, which composes sessions, links, flow and store.

#![deny(unsafe_code)]

pub mod accounts;
pub mod cdr;
pub mod cluster;
pub mod config;
pub mod control;
pub mod flow;
pub mod http;
pub mod ids;
pub mod limit;
pub mod logger;
pub mod metrics;
pub mod net;
pub mod route;
pub mod shard;
pub mod smpp;
pub mod store;
pub mod text;
pub mod upstream;

/// The crate version, as printed by `smppgw --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
