//! Runtime glue: the operating system checks, TLS, and the connection driver. Only this
//! layer (with `shard` and `control`) knows about glommio and rustls.
//!
//! | file | job |
//! |---|---|
//! | `sys` | memlock, the io_uring probe, stop signals |
//! | `tls` | rustls server and client configurations, self-signed certificates |
//! | `conn` | one connection: socket bytes and time in and out of a session |

pub mod conn;
pub mod direct;
pub mod sys;
pub mod tls;
