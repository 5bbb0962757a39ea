//! The embedded default configuration: what `smppgw` runs with no `--config`.
//!
//! A plain listener on 127.0.0.1:2775, a TLS listener on 127.0.0.1:3550 with a self-signed
//! certificate generated at start (the runtime writes it to [`DEFAULT_CERT_NAME`] in a
//! temporary directory and logs where), and one account, `demo` / `demo`.

/// The certificate file the TLS context names; the runtime creates it.
pub const DEFAULT_CERT_NAME: &str = "smppgw-default-cert.pem";

pub const YSMPP: &str = "; smppgw embedded default (ysmpp.conf)
[general]
shards=auto

[smpp-server]
enable=yes

[listenerserver plain]
enable=yes
addr=127.0.0.1
port=2775

[listenerserver tls]
enable=yes
addr=127.0.0.1
port=3550
sslcontext=self_signed
";

pub const REGFILE: &str = "; smppgw embedded default (regfile.conf)
[demo]
password=demo
";

pub const OPENSSL: &str = "; smppgw embedded default (openssl.conf)
[self_signed]
certificate=smppgw-default-cert.pem
domains=localhost
";
