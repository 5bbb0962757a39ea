//! Routing: YateSMSC regexroute files, compiled once into an immutable table.

pub mod eval;
pub mod posix;
pub mod prefix;
pub mod subst;
pub mod table;

pub use eval::{Decision, ParamChange, Step};
pub use subst::{Env, Params};
pub use table::{RouteError, RouteTable};
