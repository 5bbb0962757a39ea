//! HTTP targets, as pure code: the URL a message goes to, the request that carries it (a
//! JSON POST, or for a Kannel `dlr-url` a GET with Kannel's escapes filled in), and what the
//! target's answer means for the message.
//!
//! A message's target, as the log keeps it, is its whole URL (`http://host:port/path?query`,
//! parameters already substituted); `GET ` before it marks a Kannel-style callback. The
//! connection pool is per scheme, host and port ([`Url::key`]).
//!
//! Answers: 2xx delivered; 408, 425, 429 and 5xx temporary (retried with the route's
//! retries, then failover); other 4xx (and 3xx: redirects are not followed) permanent.
//! A connection that fails, or an answer that does not come within the timeout, is temporary.

use std::fmt::Write as _;

use crate::smpp::receipt::{Receipt, ReceiptDate};
use crate::smpp::{tlv, Pdu};
use crate::text::Charset;

use super::json_str;

/// An `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query (at least `/`).
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let s = s.trim();
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("not an http:// or https:// URL".into());
        };
        let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(cut);
        let path = path.split('#').next().unwrap_or("");
        if authority.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("an IPv6 address without ]")?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'_'))
        {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{p:?} is not a port"))?,
        };
        if path.bytes().any(|c| c <= b' ' || c == 0x7F) {
            return Err("spaces or control characters in the path (encode them)".into());
        }
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Url {
            tls,
            host,
            port,
            path,
        })
    }

    /// What connections are pooled by: scheme, host and port.
    pub fn key(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The Host header's value.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A target as the log keeps it: the method and the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// A Kannel-style callback: GET, nothing in the body.
    pub get: bool,
    pub url: Url,
}

impl Call {
    pub fn parse(target: &[u8]) -> Result<Call, String> {
        let s = std::str::from_utf8(target).map_err(|_| "a URL that is not text".to_string())?;
        match s.strip_prefix("GET ") {
            Some(u) => Ok(Call {
                get: true,
                url: Url::parse(u)?,
            }),
            None => Ok(Call {
                get: false,
                url: Url::parse(s)?,
            }),
        }
    }
}

/// What a target's answer means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Temporary,
    Permanent,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 425 | 429 | 500..=599 => Verdict::Temporary,
        _ => Verdict::Permanent,
    }
}

/// The request for `call`, with `body` (ignored for a GET); `proxied`: sent to a forward
/// proxy (the request target in absolute form).
pub fn request(call: &Call, body: &str, proxied: bool, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let method = if call.get { "GET" } else { "POST" };
    let origin = if proxied {
        format!("http://{}", call.url.host_header())
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "{method} {origin}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: smppgw/{}\r\nAccept: */*\r\n",
        call.url.path,
        call.url.host_header(),
        crate::VERSION
    );
    if call.get {
        out.extend_from_slice(b"\r\n");
    } else {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
}

/// How a response is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// Incomplete: read more.
    Partial,
    /// Status known; `len` octets (head and body) make the response; `keep`: the connection
    /// can take the next request.
    Done { status: u16, len: usize, keep: bool },
    /// The body runs until the connection closes: the status is known, the connection is
    /// not kept (read to its end or drop it).
    UntilClose { status: u16 },
}

/// Frames the response at the start of `buf` (to a request of method HEAD: never).
pub fn response(buf: &[u8]) -> Result<Response, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > 64 * 1024 => {
            return Err("a response head over 64 KiB".into())
        }
        Ok(httparse::Status::Partial) => return Ok(Response::Partial),
        Err(e) => return Err(format!("not an HTTP response: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let mut keep = r.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        let v = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("Content-Length {v:?}"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().ends_with("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(',').map(str::trim) {
                if t.eq_ignore_ascii_case("close") {
                    keep = false;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    keep = true;
                }
            }
        }
    }
    if (100..200).contains(&status) {
        // An interim answer (100 Continue): skip it, the real one follows.
        return match response(&buf[head..])? {
            Response::Done { status, len, keep } => Ok(Response::Done {
                status,
                len: head + len,
                keep,
            }),
            other => Ok(other),
        };
    }
    if status == 204 || status == 304 {
        return Ok(Response::Done {
            status,
            len: head,
            keep,
        });
    }
    if chunked {
        let mut pos = head;
        loop {
            let (skip, size) = match httparse::parse_chunk_size(&buf[pos..]) {
                Ok(httparse::Status::Complete(x)) => x,
                Ok(httparse::Status::Partial) => return Ok(Response::Partial),
                Err(_) => return Err("a chunk size that does not parse".into()),
            };
            pos += skip;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let Some(eol) = memchr::memmem::find(&buf[pos..], b"\r\n") else {
                        return Ok(Response::Partial);
                    };
                    pos += eol + 2;
                    if eol == 0 {
                        return Ok(Response::Done {
                            status,
                            len: pos,
                            keep,
                        });
                    }
                }
            }
            let size = usize::try_from(size).map_err(|_| "a chunk too large")?;
            if buf.len() < pos.saturating_add(size).saturating_add(2) {
                return Ok(Response::Partial);
            }
            pos += size + 2;
        }
    }
    match length {
        Some(n) if buf.len() >= head + n => Ok(Response::Done {
            status,
            len: head + n,
            keep,
        }),
        Some(_) => Ok(Response::Partial),
        None => Ok(Response::UntilClose { status }),
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn date(d: &ReceiptDate) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second.unwrap_or(0)
    )
}

/// What a POST carries about a message. `id`: the gateway's id for this message; `billid`:
/// the id its originator knows (a status report's: the message it reports on).
pub struct About<'a> {
    pub id: &'a str,
    pub billid: &'a str,
    /// `smppserver/ID`, `http/ID` or `smppclient/ID`.
    pub origin: &'a str,
    pub report: bool,
    pub zero: Charset,
}

/// The JSON body of a message or status report.
pub fn json_body(pdu: &Pdu, about: &About<'_>) -> String {
    let mut o = String::with_capacity(256);
    o.push('{');
    let _ = write!(
        o,
        "\"type\":{},\"id\":{},\"billid\":{},\"origin\":{}",
        json_str(if about.report { "status_report" } else { "sms" }),
        json_str(about.id),
        json_str(about.billid),
        json_str(about.origin)
    );
    if let Some(m) = pdu.message() {
        let _ = write!(
            o,
            ",\"from\":{},\"to\":{},\"data_coding\":{},\"esm_class\":{}",
            json_str(&String::from_utf8_lossy(m.source.addr.as_bytes())),
            json_str(&String::from_utf8_lossy(m.dest.addr.as_bytes())),
            m.data_coding,
            m.esm_class.0
        );
        if about.report {
            let r = Receipt::parse(&m.user_data);
            let stat = r
                .as_ref()
                .map(|r| String::from_utf8_lossy(r.stat).into_owned())
                .unwrap_or_default();
            let err = r
                .as_ref()
                .map(|r| String::from_utf8_lossy(r.err).into_owned())
                .unwrap_or_default();
            let _ = write!(
                o,
                ",\"stat\":{},\"err\":{}",
                json_str(&stat),
                json_str(&err)
            );
            if let Some(d) = r.as_ref().and_then(|r| r.done_date.as_ref()) {
                let _ = write!(o, ",\"done_date\":{}", json_str(&date(d)));
            }
            if let Some(d) = r.as_ref().and_then(|r| r.submit_date.as_ref()) {
                let _ = write!(o, ",\"submit_date\":{}", json_str(&date(d)));
            }
            if let Some(st) = pdu
                .tlvs
                .get(tlv::tag::MESSAGE_STATE)
                .and_then(|v| v.first())
            {
                let _ = write!(o, ",\"message_state\":{st}");
            }
            if let Some(n) = pdu.tlvs.get(tlv::tag::NETWORK_ERROR_CODE) {
                if n.len() == 3 {
                    let _ = write!(
                        o,
                        ",\"network_type\":{},\"tp_status\":{}",
                        n[0],
                        u16::from_be_bytes([n[1], n[2]])
                    );
                }
            }
            let text = String::from_utf8_lossy(&m.user_data).into_owned();
            let _ = write!(o, ",\"receipt\":{}", json_str(&text));
        } else {
            let ud = &m.user_data[..];
            let (udh_len, text) = crate::flow::coding::message_text(
                ud,
                m.esm_class.udhi(),
                m.data_coding,
                about.zero,
            );
            if let Some(t) = text {
                let _ = write!(o, ",\"text\":{}", json_str(&t));
            }
            let _ = write!(o, ",\"hex\":{}", json_str(&hex(&ud[udh_len..])));
            if udh_len > 0 {
                let _ = write!(o, ",\"udh\":{}", json_str(&hex(&ud[..udh_len])));
            }
        }
    }
    o.push_str("}\n");
    o
}

/// Kannel's dlr-url escapes, filled in from a status report (`%d` the DLR type: 1 delivered,
/// 2 undeliverable, 4 buffered, 16 rejected; `%A` the receipt text; `%I` the gateway's id;
/// `%p` the sender; `%P` the receiver; `%t` the done date `YYYY-MM-DD HH:MM:SS`; `%%` a
/// percent sign). Values are URL-encoded. Other escapes are left as they are.
pub fn kannel_dlr_url(template: &str, report: &Pdu, billid: &str) -> String {
    let m = report.message();
    let ud = m.as_ref().map(|m| m.user_data.clone()).unwrap_or_default();
    let r = Receipt::parse(&ud);
    let stat = r.as_ref().map_or(&b""[..], |r| r.stat);
    let dlr = match stat {
        b"DELIVRD" => "1",
        b"ENROUTE" | b"ACCEPTD" | b"SCHEDULED" => "4",
        b"REJECTD" => "16",
        _ => "2",
    };
    // A receipt flows back: its source is the message's receiver and its dest the sender.
    let (sender, receiver) = m.as_ref().map_or((Vec::new(), Vec::new()), |m| {
        (
            m.dest.addr.as_bytes().to_vec(),
            m.source.addr.as_bytes().to_vec(),
        )
    });
    let done = r
        .as_ref()
        .and_then(|r| r.done_date.as_ref())
        .map(|d| date(d).replace('T', " "))
        .unwrap_or_default();
    let mut out = String::with_capacity(template.len() + 64);
    let mut it = template.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let enc = |b: &[u8]| super::form::percent_encode(b);
        match it.next() {
            Some('d') => out.push_str(dlr),
            Some('A') => out.push_str(&enc(&ud)),
            Some('I') => out.push_str(&enc(billid.as_bytes())),
            Some('p') => out.push_str(&enc(&sender)),
            Some('P') => out.push_str(&enc(&receiver)),
            Some('t') => out.push_str(&enc(done.as_bytes())),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::{Address, Body, COctet, SubmitSm};

    #[test]
    fn urls() {
        let u = Url::parse("https://example.org/status?billid=1&x=%20").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "example.org", 443));
        assert_eq!(u.path, "/status?billid=1&x=%20");
        assert_eq!(u.key(), "https://example.org:443");
        assert_eq!(u.host_header(), "example.org");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.path.as_str(), u.host_header()),
            ("/", "127.0.0.1:8080".into())
        );
        let u = Url::parse("http://[::1]:81/x#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 81, "/x")
        );
        assert_eq!(u.key(), "http://[::1]:81");
        assert_eq!(Url::parse("http://h?a=1").unwrap().path, "/?a=1");
        for bad in [
            "ftp://x/",
            "http://",
            "http://u:p@h/",
            "http://h:0/",
            "http://h:x/",
            "http://h/a b",
            "http://h h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let c = Call::parse(b"GET http://h/dlr?x=1").unwrap();
        assert!(c.get);
        assert!(!Call::parse(b"http://h/").unwrap().get);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        assert_eq!(verdict(400), Verdict::Permanent);
        assert_eq!(verdict(404), Verdict::Permanent);
        assert_eq!(verdict(301), Verdict::Permanent);
        assert_eq!(verdict(429), Verdict::Temporary);
        assert_eq!(verdict(503), Verdict::Temporary);
    }

    #[test]
    fn responses_are_framed_by_length_chunks_or_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";
        assert_eq!(
            response(r),
            Ok(Response::Done {
                status: 200,
                len: r.len() - 8,
                keep: true
            })
        );
        for i in 0..(r.len() - 8) {
            assert_eq!(response(&r[..i]), Ok(Response::Partial), "{i}");
        }
        let c = b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(
            response(c),
            Ok(Response::Done {
                status: 503,
                len: c.len(),
                keep: false
            })
        );
        assert_eq!(
            response(b"HTTP/1.0 200 OK\r\n\r\nbody"),
            Ok(Response::UntilClose { status: 200 })
        );
        let cont = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            response(cont),
            Ok(Response::Done {
                status: 204,
                len: cont.len(),
                keep: true
            })
        );
        assert!(response(b"SMPP nonsense\r\n\r\n").is_err());
    }

    fn report() -> Pdu {
        let mut p = Pdu::new(
            1,
            Body::DeliverSm(SubmitSm {
                source: Address::new(1, 1, COctet::from("447700900001")),
                dest: Address::new(5, 0, COctet::from("Shop")),
                esm_class: 0x04,
                short_message: bytes::Bytes::from_static(
                    b"id:0123 sub:001 dlvrd:001 submit date:2612021200 done date:2612021201 stat:DELIVRD err:000 text:hello",
                ),
                ..SubmitSm::default()
            }),
        );
        p.tlvs.set(tlv::tag::MESSAGE_STATE, &[2]);
        p.tlvs.set(tlv::tag::NETWORK_ERROR_CODE, &[3, 0, 0]);
        p
    }

    #[test]
    fn a_status_report_as_json_and_as_a_kannel_callback() {
        let about = About {
            id: "r1",
            billid: "b1",
            origin: "http/demo",
            report: true,
            zero: Charset::Gsm7,
        };
        let j = json_body(&report(), &about);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["type"], "status_report");
        assert_eq!(v["billid"], "b1");
        assert_eq!(v["stat"], "DELIVRD");
        assert_eq!(v["err"], "000");
        assert_eq!(v["tp_status"], 0);
        assert_eq!(v["message_state"], 2);
        assert_eq!(v["done_date"], "2026-12-02T12:01:00");
        let url = kannel_dlr_url(
            "http://h/dlr?type=%d&id=%I&to=%P&from=%p&at=%t&a=%A&pct=%%&x=%q",
            &report(),
            "b1",
        );
        assert!(url.starts_with("http://h/dlr?type=1&id=b1&to=447700900001&from=Shop&at=2026-12-02%2012%3A01%3A00&a=id%3A0123%20sub"), "{url}");
        assert!(url.ends_with("&pct=%&x=%q"), "{url}");
    }

    #[test]
    fn a_message_as_json_with_its_text_decoded() {
        let p = Pdu::new(
            1,
            Body::SubmitSm(SubmitSm {
                source: Address::new(1, 1, COctet::from("4477")),
                dest: Address::new(1, 1, COctet::from("3161")),
                esm_class: 0x40,
                short_message: bytes::Bytes::from_static(b"\x05\x00\x03\x07\x02\x01Hi @"),
                ..SubmitSm::default()
            }),
        );
        let about = About {
            id: "i",
            billid: "i",
            origin: "smppserver/demo",
            report: false,
            zero: Charset::Gsm7,
        };
        let v: serde_json::Value = serde_json::from_str(&json_body(&p, &about)).unwrap();
        assert_eq!(v["text"], "Hi ¡");
        assert_eq!(v["udh"], "050003070201");
        assert_eq!(v["to"], "3161");
        let mut out = Vec::new();
        request(
            &Call::parse(b"http://h:81/in").unwrap(),
            "{}",
            false,
            &mut out,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("POST /in HTTP/1.1\r\nHost: h:81\r\n"), "{s}");
        assert!(s.ends_with("Content-Length: 2\r\n\r\n{}"), "{s}");
        let mut out = Vec::new();
        request(
            &Call::parse(b"GET http://h/dlr?x=1").unwrap(),
            "",
            true,
            &mut out,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("GET http://h/dlr?x=1 HTTP/1.1\r\nHost: h\r\n"),
            "{s}"
        );
        assert!(s.ends_with("Accept: */*\r\n\r\n"), "{s}");
    }
}
