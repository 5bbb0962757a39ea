//! Routing: YateSMSC regexroute files, compiled once into an immutable table.

pub mod cache;
pub mod eval;
pub mod explain;
pub mod posix;
pub mod prefix;
pub mod subst;
pub mod table;

pub use cache::{CacheStats, RouteCache};
pub use eval::{Decision, ParamChange, Step};
pub use explain::{explain, Target, Vars};
pub use subst::{Env, Params};
pub use table::{RouteError, RouteTable};
