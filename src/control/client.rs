//! The command line's side of the admin endpoint: `smppgw reload` and `smppgw status` ask a
//! running gateway over HTTP/1.1 (one request per connection; the answer parsed with
//! httparse).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer: status code, body, and its ETag (the configuration version), if any.
pub struct Answer {
    pub code: u16,
    pub body: String,
    pub etag: Option<String>,
}

/// Sends `METHOD PATH` to the admin endpoint at `addr` and reads the whole answer (the
/// endpoint closes after each). Bounded: 5 s to connect, 30 s for the answer (a reload reads
/// files and certificates), 16 MiB at most.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<Answer, String> {
    request_with(addr, method, path, &[], b"")
}

/// As [`request`], with header fields and a body.
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Answer, String> {
    let mut probe = addr;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let credentials = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    if credentials && !probe.ip().is_loopback() {
        return Err(format!(
            "refusing to send the admin credentials in clear text to {probe}: this client speaks plain HTTP; run it on the node, against the endpoint on 127.0.0.1 (or use curl over HTTPS)"
        ));
    }
    let mut s = TcpStream::connect_timeout(&probe, Duration::from_secs(5)).map_err(|e| {
        format!("cannot reach the admin endpoint on {probe}: {e} (is the gateway running, with [general] admin set to this address?)")
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {probe}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .map_err(|e| format!("admin endpoint {probe}: {e}"))?;
    // A body the endpoint refuses (413) may be cut off: its answer is read all the same.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.take(16 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| format!("admin endpoint {probe}: {e}"))?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => Ok(Answer {
            code: resp.code.unwrap_or(0),
            etag: resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("etag"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned()),
            body: String::from_utf8_lossy(&raw[n..]).into_owned(),
        }),
        Ok(httparse::Status::Partial) => Err(format!("admin endpoint {probe}: answer cut short")),
        Err(e) => Err(format!("admin endpoint {probe}: not an HTTP answer: {e}")),
    }
}
