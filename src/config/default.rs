//! The embedded default configuration: what `smppgw` runs with no `--config`.
//!
//! A plain listener on 127.0.0.1:2775, a TLS listener on 127.0.0.1:3550 with a self-signed
//! certificate generated at start (the runtime writes it to [`DEFAULT_CERT_NAME`] in a
//! temporary directory and logs where), one account, `demo` / `demo`, and a second hop: a
//! client link `sim` to the simulated upstream SMSC the runtime starts in the same process on
//! [`UPSTREAM_SIM`], which every message goes to (`default_route`), and the HTTP submit API
//! on 127.0.0.1:13013. The spool is a temporary directory the log names.

/// The certificate file the TLS context names; the runtime creates it.
pub const DEFAULT_CERT_NAME: &str = "smppgw-default-cert.pem";

/// Where the embedded default's simulated upstream listens.
pub const UPSTREAM_SIM: &str = "127.0.0.1:2776";

pub const YSMPP: &str = "; smppgw embedded default (ysmpp.conf)
[general]
shards=auto
default_route=sim

[smpp-client]
clients=sim

; the simulated upstream SMSC smppgw starts in the same process
[sim]
enabled=yes
server=127.0.0.1
port=2776
system_id=smppgw
system_password=smppgw
bind=transceiver
binds=2
window=64

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

; the HTTP submit API: curl -u demo:demo http://127.0.0.1:13013/messages -d '{...}'
[http]
enable=yes
addr=127.0.0.1
port=13013
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
