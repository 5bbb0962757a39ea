//! Configuration: the YateSMSC-style files, lexed, typed and validated, without touching the
//! disk (the caller hands in file names and texts; `main` reads them).
//!
//! | file | job |
//! |---|---|
//! | `ini` | the INI dialect: sections, `key=value`, `;` comments, line numbers |
//! | `value` | typed values: booleans, durations, sizes, addresses, lists |
//! | `keys` | what the files' parsers share: reading a section's keys, collecting problems, small parsers |
//! | `ysmpp` | `ysmpp.conf`: `[general]`, `[smpp-server]`, listeners, client links |
//! | `cdr` | `[cdr]` of `ysmpp.conf`: the CDR file, its line format, rotation |
//! | `http` | `[http]` of `ysmpp.conf`: the HTTP submit API's listener |
//! | `cluster` | `[cluster]` of `ysmpp.conf`: NATS servers, this node's name, the cluster's |
//! | `admin` | `[admin]` of `ysmpp.conf`: credentials of the admin endpoint, the audit file |
//! | `edit` | edits of a file's text that keep its comments and order (the configuration API) |
//! | `api` | the configuration API's resources over the files' texts |
//! | `regfile` | `regfile.conf`: ESME accounts |
//! | `openssl` | `openssl.conf`: TLS contexts |
//! | `yatesmsc` | `yatesmsc.conf` (optional): the backup gateway, retries, validity |
//! | `model` | the whole [`Config`]: parsing all files at once, checks across files, the summary |
//! | `default` | the embedded default configuration |
//!
//! Every problem names where it is: `ysmpp.conf:12: port: "27x5" is not a port number (1-65535)`.
//! Invalid values are errors and stop the load; unknown keys and sections are warnings, so a
//! file written for YateSMSC with keys we do not use still loads.

/// The names of the fields that differ between two values of a section (what a reload says
/// changed): `changed_fields!(a, b; field, ...)`.
macro_rules! changed_fields {
    ($a:expr, $b:expr; $($f:ident),* $(,)?) => {{
        let mut keys: Vec<&'static str> = Vec::new();
        $( if $a.$f != $b.$f { keys.push(stringify!($f)); } )*
        keys
    }};
}

pub mod admin;
pub mod api;
mod cdr;
pub mod cluster;
pub mod default;
pub mod edit;
mod http;
pub mod ini;
mod keys;
pub mod model;
mod openssl;
mod regfile;
pub mod value;
mod yatesmsc;
mod ysmpp;

pub use admin::AdminConfig;
pub use cdr::CdrConfig;
pub use cluster::ClusterConfig;
pub use http::{HttpApi, HttpTargetConfig};
pub use model::{
    Account, Backup, ClientLink, Config, ConfigError, ConfigFiles, General, LinkBind, Listener,
    LogIo, MsgIdFormat, ReceiptPolicy, Server, Shards, SyncMode, TlsContext, Warning, Yatesmsc,
};
