//! Routing: YateSMSC regexroute files, compiled once into an immutable table.
//!
//! | file | job |
//! |---|---|
//! | `posix` | GNU basic / extended regex syntax as Yate writes it, translated for the `regex` crate |
//! | `table` | loading: sections, keys, values, blocks, loader errors with `file:line` |
//! | `prefix` | runs of literal prefix rules indexed as a trie |
//! | `subst` | `\0`..`\9`, `${param}` and `$(function,...)` substitution; message parameters |
//! | `eval` | evaluation with regexroute's semantics, and the trail for the explain report |
//! | `cache` | a shard's bounded decision cache, keyed by what the table's conditions read |
//! | `explain` | what a target means to the gateway, the production environment, `smppgw route` output |
//!
//! Sans-IO: no files, sockets or clocks; the caller reads the file and supplies randomness.

pub mod cache;
pub mod eval;
pub mod explain;
pub mod posix;
pub mod prefix;
pub mod subst;
pub mod table;

pub use cache::{CacheStats, RouteCache};
pub use eval::{Decision, ParamChange, Step};
pub use explain::{explain, explain_json, reject_status, Target, Vars};
pub use subst::{Env, Params};
pub use table::{RouteError, RouteTable};
