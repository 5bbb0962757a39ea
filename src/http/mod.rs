//! HTTP/1.1 for the submit API (no IO, no clock): a request framed out of the bytes a
//! connection has read (the head parsed by `httparse`, the body by Content-Length or chunked
//! transfer coding), the answers written back, and the forms a submit takes (see [`submit`]).
//!
//! Limits, as a client meets them: a head over [`Limits::max_head`] gets 431, a body over
//! [`Limits::max_body`] 413 (told from Content-Length before the body is read), a
//! Transfer-Encoding other than chunked 501, anything that does not parse 400. Each of these
//! closes the connection; requests that frame well are answered in order (pipelining) and the
//! connection is kept unless the client or HTTP/1.0 says otherwise.

pub mod form;
pub mod submit;
pub mod target;

/// What a request may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: usize,
    /// A request must be whole this long after its first byte (the IO side enforces it).
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 8 * 1024,
            max_body: 64 * 1024,
            request_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// A request, framed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without its `?` (still URL-encoded).
    pub query: String,
    /// `Content-Type` without its parameters, lowercased.
    pub content_type: String,
    pub authorization: Option<String>,
    /// `If-Match` and `If-None-Match` as sent (an entity tag, quoted, or `*`).
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    /// The client wants the connection kept after the answer.
    pub keep_alive: bool,
    pub body: Vec<u8>,
}

/// A request that cannot be served: answered with `status` and the connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub why: String,
}

impl Refusal {
    fn new(status: u16, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            why: why.into(),
        }
    }
}

/// What the buffered bytes hold.
#[derive(Debug, PartialEq, Eq)]
// Not boxed: a request is framed once and moved out at once; boxing would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Framed {
    /// A whole request, and how many bytes it took.
    Request(Request, usize),
    /// More bytes are needed; `expect_continue`: the head is complete and asked for
    /// `100 Continue` before the client sends its body.
    Partial { expect_continue: bool },
}

/// Frames the first request in `buf`.
pub fn frame(buf: &[u8], limits: &Limits) -> Result<Framed, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => {
            return Err(Refusal::new(
                431,
                format!("the request's head is over {} octets", limits.max_head),
            ))
        }
        Ok(httparse::Status::Partial) => {
            return Ok(Framed::Partial {
                expect_continue: false,
            })
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(431, "more than 48 header fields"))
        }
        Err(e) => return Err(Refusal::new(400, format!("not an HTTP/1.x request: {e}"))),
    };
    if head_len > limits.max_head {
        return Err(Refusal::new(
            431,
            format!("the request's head is over {} octets", limits.max_head),
        ));
    }
    let version = req.version.unwrap_or(1);
    let mut r = Request {
        method: req.method.unwrap_or("").to_string(),
        keep_alive: version >= 1,
        ..Request::default()
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    r.path = path.to_string();
    r.query = query.to_string();
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| Refusal::new(400, format!("header {} is not text", h.name)))?
            .trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| {
                Refusal::new(400, format!("Content-Length {value:?} is not a number"))
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(Refusal::new(400, "two different Content-Length fields"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Err(Refusal::new(
                    501,
                    format!("Transfer-Encoding {value:?} (only chunked is served)"),
                ));
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            r.content_type = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
        } else if name.eq_ignore_ascii_case("authorization") {
            r.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-match") {
            r.if_match = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-none-match") {
            r.if_none_match = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    r.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    r.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
            } else {
                return Err(Refusal::new(417, format!("Expect {value:?}")));
            }
        }
    }
    if chunked && length.is_some() {
        // RFC 9112 6.3: a request with both is an attack on an intermediary; refuse it.
        return Err(Refusal::new(
            400,
            "both Transfer-Encoding and Content-Length",
        ));
    }
    let rest = &buf[head_len..];
    if chunked {
        return match dechunk(rest, limits.max_body)? {
            Some((body, used)) => {
                r.body = body;
                Ok(Framed::Request(r, head_len + used))
            }
            None => Ok(Framed::Partial { expect_continue }),
        };
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body {
        return Err(Refusal::new(
            413,
            format!(
                "the body is {length} octets, over the {} allowed",
                limits.max_body
            ),
        ));
    }
    if rest.len() < length {
        return Ok(Framed::Partial { expect_continue });
    }
    r.body = rest[..length].to_vec();
    Ok(Framed::Request(r, head_len + length))
}

/// A chunked body: the body and the bytes it took, or `None` while incomplete.
fn dechunk(mut buf: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, Refusal> {
    let total = buf.len();
    let mut body = Vec::new();
    loop {
        let (skip, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(x)) => x,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Refusal::new(400, "a chunk size that does not parse")),
        };
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > max_body.saturating_sub(body.len()) {
            return Err(Refusal::new(
                413,
                format!("the body is over the {max_body} octets allowed"),
            ));
        }
        buf = &buf[skip..];
        if size == 0 {
            // Trailer fields (ignored), then the empty line.
            loop {
                let Some(eol) = memchr::memmem::find(buf, b"\r\n") else {
                    return Ok(None);
                };
                let line_empty = eol == 0;
                buf = &buf[eol + 2..];
                if line_empty {
                    return Ok(Some((body, total - buf.len())));
                }
            }
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(Refusal::new(400, "a chunk not ended by CRLF"));
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

/// The reason phrase of the statuses the gateway answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// An answer, ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra header fields.
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    pub fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body,
        }
    }

    /// `{"error": why}`.
    pub fn error(status: u16, why: &str) -> Answer {
        Answer::json(status, format!("{{\"error\":{}}}\n", json_str(why)))
    }

    pub fn header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// Appends the answer to `out`; `close`: the connection closes after it. A `HEAD`
    /// request gets the head only.
    pub fn write(&self, out: &mut Vec<u8>, close: bool, head_only: bool) {
        use std::io::Write as _;
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(if close {
            b"Connection: close\r\n\r\n"
        } else {
            b"\r\n"
        });
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Request {
        match frame(buf, &Limits::default()) {
            Ok(Framed::Request(r, n)) => {
                assert_eq!(n, buf.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_with_a_body_and_its_fields() {
        let r = one(b"POST /messages?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json; charset=utf-8\r\nAuthorization: Basic YTpi\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/messages");
        assert_eq!(r.query, "x=1");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.authorization.as_deref(), Some("Basic YTpi"));
        assert!(r.keep_alive);
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(!one(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!one(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn pipelined_requests_are_framed_one_at_a_time() {
        let two = b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        let Ok(Framed::Request(a, n)) = frame(two, &Limits::default()) else {
            panic!()
        };
        assert_eq!(a.path, "/a");
        let Ok(Framed::Request(b, m)) = frame(&two[n..], &Limits::default()) else {
            panic!()
        };
        assert_eq!((b.path.as_str(), &b.body[..]), ("/b", &b"abc"[..]));
        assert_eq!(
            frame(&two[n + m..], &Limits::default()),
            Ok(Framed::Partial {
                expect_continue: false
            })
        );
    }

    #[test]
    fn every_prefix_is_partial_until_the_whole_request() {
        let req = b"POST /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2;x=y\r\nef\r\n0\r\nT: v\r\n\r\n";
        for i in 0..req.len() {
            assert!(
                matches!(
                    frame(&req[..i], &Limits::default()),
                    Ok(Framed::Partial { .. })
                ),
                "prefix {i}"
            );
        }
        assert_eq!(one(req).body, b"abcdef");
        let fixed = b"POST /m HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for i in 0..fixed.len() {
            assert!(matches!(
                frame(&fixed[..i], &Limits::default()),
                Ok(Framed::Partial { .. })
            ));
        }
    }

    #[test]
    fn limits_and_malformed_requests_are_refused_with_their_status() {
        let l = Limits {
            max_head: 128,
            max_body: 10,
            ..Limits::default()
        };
        let status = |b: &[u8]| frame(b, &l).err().map(|r| r.status);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n"),
            Some(413)
        );
        assert_eq!(status(&[b'a'; 129]), Some(431));
        assert_eq!(status(b"\x01\x02 / HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), Some(400));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend([b'y'; 150]);
        assert_eq!(status(&long), Some(431));
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(501)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"),
            Some(400)
        );
    }

    #[test]
    fn expect_continue_is_reported_once_the_head_is_in() {
        assert_eq!(
            frame(
                b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                &Limits::default()
            ),
            Ok(Framed::Partial {
                expect_continue: true
            })
        );
    }

    #[test]
    fn answers_carry_length_and_connection() {
        let mut out = Vec::new();
        Answer::error(400, "bad \"x\"").write(&mut out, true, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{s}");
        assert!(
            s.contains(
                "Content-Length: 22\r\nConnection: close\r\n\r\n{\"error\":\"bad \\\"x\\\"\"}\n"
            ),
            "{s}"
        );
    }
}
