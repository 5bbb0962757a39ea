//! Configuration: the YateSMSC-style files, lexed, typed and validated, without touching the
//! disk (the caller hands in file names and texts; `main` reads them).
//!
//! | file | job |
//! |---|---|
//! | `ini` | the INI dialect: sections, `key=value`, `;` comments, line numbers |
//! | `value` | typed values: booleans, durations, sizes, addresses, lists |
//! | `model` | the typed model of `ysmpp.conf`, `regfile.conf`, `openssl.conf`, validation |
//! | `default` | the embedded default configuration |
//!
//! Every problem names where it is: `ysmpp.conf:12: port: "27x5" is not a port number (1-65535)`.
//! Invalid values are errors and stop the load; unknown keys and sections are warnings, so a
//! file written for YateSMSC with keys we do not use still loads.

pub mod default;
pub mod ini;
pub mod model;
pub mod value;

pub use model::{
    Account, ClientLink, Config, ConfigError, ConfigFiles, General, LinkBind, Listener,
    MsgIdFormat, Server, Shards, TlsContext, Warning,
};
