//! The HTTP submit API on a shard (`[http]` of ysmpp.conf): every shard accepts on the
//! listener and serves the connections it accepts, requests in order (pipelining), kept
//! alive unless the client says otherwise.
//!
//! - `POST /messages` (JSON, HTTP basic authentication with a regfile.conf account);
//! - `GET|POST /cgi-bin/sendsms` (Kannel's parameters; `username`/`password` or basic).
//!
//! A submit enters the same intake as an SMPP submit (module `http`, submit_info `HTTP` for
//! the route rules), and is answered once its records are committed to the message log:
//! 202 with the gateway's id per recipient. Errors: 400 with a reason per field, 401 (403 on
//! the Kannel endpoint, as Kannel answers), 413 for a body over `max_body`, 429 over the
//! account's rate, 503 while the log refuses writes.
//!
//! Slow clients: a request must arrive whole within `request_timeout` (10 s) of its first
//! byte (else 408 and the connection closes); a TLS handshake within 10 s; an idle kept-alive connection closes after
//! [`IDLE`]; an answer the client does not read within [`WRITE_DEADLINE`] closes it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::TlsAcceptor;
use log::{debug, info};

use super::intake::Via;
use super::messages::{Signal, Waiter};
use super::{ShardState, TlsSlot};
use crate::accounts::{constant_time_eq, AccountState};
use crate::http::submit::{self, SubmitRequest};
use crate::http::{form, frame, json_str, Answer, Framed, Limits, Request};
use crate::ids::MessageId;
use crate::smpp::CommandStatus;

/// A TLS handshake must be done this long after the connection.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// A kept-alive connection with no request for this long is closed.
pub const IDLE: Duration = Duration::from_secs(30);
/// An answer must be taken by the client within this.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// A recipient taken in (its billid and parts) or refused.
type Taken = Result<(MessageId, usize), CommandStatus>;

/// The endpoint a request is for (answers differ: JSON, or Kannel's plain text).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Json,
    Kannel,
}

/// What a connection keeps between its requests.
struct Conn {
    shard: Rc<ShardState>,
    peer: Option<SocketAddr>,
    peer_text: Bytes,
    /// The account this connection last authenticated as: counted as one of its binds on
    /// this shard (its rate's share follows), until the connection closes.
    account: Option<Arc<AccountState>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(a) = self.account.take() {
            a.rate.bound(self.shard.id, false);
        }
    }
}

impl ShardState {
    /// Serves an HTTP connection accepted on this shard.
    pub(super) fn serve_http(
        self: Rc<Self>,
        stream: glommio::net::TcpStream,
        tls: Option<TlsSlot>,
        limits: Limits,
    ) {
        let peer = stream.peer_addr().ok();
        let _ = stream.set_nodelay(true);
        glommio::spawn_local(async move {
            let conn = Conn {
                shard: self.clone(),
                peer,
                peer_text: peer.map_or_else(Bytes::new, |p| Bytes::from(p.to_string())),
                account: None,
            };
            // glommio's own reads, not `net::direct`'s: a client waits for each answer
            // before it sends its next request, so the socket is empty when the next read
            // starts, and glommio arms its readiness poll right after a read (one recv per
            // request); reading the socket first would add two recv that find nothing (3.0
            // recv per request measured, 1.0 with glommio's; perf/README.md, HTTP).
            match tls {
                None => connection(conn, stream, limits).await,
                Some(slot) => {
                    let acceptor = TlsAcceptor::from(slot.load_full());
                    let handshake = glommio::timer::timeout(REQUEST_DEADLINE, async {
                        acceptor.accept(stream).await.map_err(Into::into)
                    });
                    match handshake.await {
                        Ok(s) => {
                            if let Some(m) = &self.metrics {
                                m.tls_ok.increment(1);
                            }
                            Box::pin(connection(conn, s, limits)).await
                        }
                        Err(e) => {
                            if let Some(m) = &self.metrics {
                                m.tls_failed.increment(1);
                            }
                            info!("HTTP: TLS handshake with {peer:?} failed: {e}");
                        }
                    }
                }
            }
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        })
        .detach();
    }
}

async fn write_all<S: AsyncWrite + Unpin>(s: &mut S, out: &[u8]) -> bool {
    glommio::timer::timeout(WRITE_DEADLINE, async {
        s.write_all(out).await?;
        s.flush().await?;
        Ok(())
    })
    .await
    .is_ok()
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut conn: Conn, mut s: S, limits: Limits) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 16 * 1024];
    // When the request in `buf` began, and whether it was told 100 Continue.
    let mut started: Option<Instant> = None;
    let mut continued = false;
    loop {
        // Every whole request in the buffer, in order.
        loop {
            match frame(&buf, &limits) {
                Ok(Framed::Request(req, used)) => {
                    buf.drain(..used);
                    started = (!buf.is_empty()).then(Instant::now);
                    continued = false;
                    let close = !req.keep_alive || conn.shard.shared.is_stopping();
                    let head_only = req.method == "HEAD";
                    let api = match req.path.as_str() {
                        "/messages" => 0,
                        "/cgi-bin/sendsms" => 1,
                        _ => 2,
                    };
                    let t0 = Instant::now();
                    let answer = handle(&mut conn, req).await;
                    if let Some(m) = &conn.shard.metrics {
                        m.http_request(api, answer.status);
                        if answer.status == 202 {
                            m.http_submit.record(t0.elapsed().as_secs_f64());
                        }
                    }
                    answer.write(&mut out, close, head_only);
                    if close {
                        write_all(&mut s, &out).await;
                        let _ = s.close().await;
                        return;
                    }
                }
                Ok(Framed::Partial { expect_continue }) => {
                    if expect_continue && !continued {
                        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        continued = true;
                    }
                    break;
                }
                Err(refusal) => {
                    if let Some(m) = &conn.shard.metrics {
                        m.http_request(2, refusal.status);
                    }
                    debug!(
                        "HTTP: {}: {} ({})",
                        conn.peer.map_or("?".into(), |p| p.to_string()),
                        refusal.why,
                        refusal.status
                    );
                    Answer::error(refusal.status, &refusal.why).write(&mut out, true, false);
                    write_all(&mut s, &out).await;
                    let _ = s.close().await;
                    return;
                }
            }
        }
        if !out.is_empty() {
            if !write_all(&mut s, &out).await {
                return;
            }
            out.clear();
        }
        let wait = match started {
            None => IDLE,
            Some(t) => limits.request_timeout.saturating_sub(t.elapsed()),
        };
        let read =
            glommio::timer::timeout(wait, async { s.read(&mut chunk).await.map_err(Into::into) })
                .await;
        match read {
            Ok(0) => return,
            Ok(n) => {
                if started.is_none() {
                    started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(glommio::GlommioError::TimedOut(_)) if started.is_some() => {
                Answer::error(
                    408,
                    &format!(
                        "the request did not arrive whole within {} ms",
                        limits.request_timeout.as_millis()
                    ),
                )
                .write(&mut out, true, false);
                write_all(&mut s, &out).await;
                let _ = s.close().await;
                return;
            }
            Err(_) => return,
        }
    }
}

async fn handle(conn: &mut Conn, req: Request) -> Answer {
    match req.path.as_str() {
        "/messages" => {
            if req.method != "POST" {
                return Answer::error(405, "POST a JSON message").header("Allow", "POST".into());
            }
            // The body is read as JSON whatever its Content-Type says (`curl -d` labels it
            // a form): what does not parse is refused as such.
            let Some((user, password)) = req.authorization.as_deref().and_then(form::basic_auth)
            else {
                return Answer::error(401, "HTTP basic authentication with a regfile.conf account")
                    .header("WWW-Authenticate", "Basic realm=\"smppgw\"".into());
            };
            let account = match conn.authenticate(&user, &password) {
                Ok(a) => a,
                Err(why) => {
                    return Answer::error(401, why)
                        .header("WWW-Authenticate", "Basic realm=\"smppgw\"".into())
                }
            };
            match submit::from_json(&req.body) {
                Ok(sub) => conn.submit(&account, sub, Api::Json).await,
                Err(errs) => {
                    conn.bad_request(&account, &errs.line());
                    Answer::json(400, errs.json())
                }
            }
        }
        "/cgi-bin/sendsms" => {
            if req.method != "GET" && req.method != "POST" {
                return Answer::text(405, "GET or POST\n".into())
                    .header("Allow", "GET, POST".into());
            }
            let mut params = form::pairs(req.query.as_bytes());
            if req.method == "POST" {
                if req.content_type == "application/x-www-form-urlencoded" {
                    params.extend(form::pairs(&req.body));
                } else if !params.iter().any(|(n, _)| n == "text") {
                    // Kannel takes a POST body of another type as the text itself.
                    params.push(("text".into(), req.body.clone()));
                }
            }
            let (sub, credentials) = match submit::from_kannel(&params) {
                Ok(x) => x,
                Err(errs) => return Answer::text(400, format!("{}\n", errs.line())),
            };
            let credentials =
                credentials.or_else(|| req.authorization.as_deref().and_then(form::basic_auth));
            let Some((user, password)) = credentials else {
                return Answer::text(403, "Authorization failed for sendsms\n".into());
            };
            let account = match conn.authenticate(&user, &password) {
                Ok(a) => a,
                Err(_) => return Answer::text(403, "Authorization failed for sendsms\n".into()),
            };
            conn.submit(&account, sub, Api::Kannel).await
        }
        _ => Answer::error(
            404,
            "no such path (POST /messages, GET|POST /cgi-bin/sendsms)",
        ),
    }
}

impl Conn {
    /// The account `user` names, when `password` is its own and the client's address is
    /// allowed. Failures are logged (at most once a second) and say why only in the log.
    fn authenticate(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<Arc<AccountState>, &'static str> {
        let shared = &self.shard.shared;
        let found = shared.accounts.for_bind(user).filter(|a| !a.is_removed());
        let why = match found.as_ref().and_then(|a| a.config().map(|c| (a, c))) {
            None => "no such account in regfile.conf",
            Some((_, cfg)) if self.peer.is_some_and(|p| !cfg.ip_allowed(p.ip())) => {
                "address not in allowed_ips"
            }
            Some((_, cfg)) if !constant_time_eq(cfg.password.as_bytes(), password.as_bytes()) => {
                "wrong password"
            }
            Some((a, _)) => {
                let a = a.clone();
                if self.account.as_ref().is_none_or(|held| held.id != a.id) {
                    if let Some(old) = self.account.replace(a.clone()) {
                        old.rate.bound(self.shard.id, false);
                    }
                    a.rate.bound(self.shard.id, true);
                }
                return Ok(a);
            }
        };
        shared
            .counters(self.shard.id)
            .bind_failures
            .fetch_add(1, Ordering::Relaxed);
        let peer = self.peer;
        self.shard.log_refusal(|| {
            let from = peer.map_or("an unknown address".into(), |p| p.to_string());
            format!("HTTP request as {user:?} from {from} refused: {why}")
        });
        Err("wrong credentials, or not allowed from this address")
    }

    fn bad_request(&self, account: &AccountState, why: &str) {
        let system_id = account.system_id.clone();
        let why = why.to_string();
        self.shard
            .log_refusal(|| format!("{system_id}: HTTP submit refused: {why}"));
    }

    /// Takes a submit in: every part of every recipient routed and logged; answered once
    /// they are committed.
    async fn submit(
        &self,
        account: &Arc<AccountState>,
        mut sub: SubmitRequest,
        api: Api,
    ) -> Answer {
        let shard = &self.shard;
        let shared = &shard.shared;
        let refuse = |status: u16, why: String| match api {
            Api::Json => Answer::error(status, &why),
            Api::Kannel => Answer::text(status, format!("{why}\n")),
        };
        if shared.is_stopping() {
            return refuse(503, "the gateway is stopping".into());
        }
        if let Some(status) = shard.msgs.log.refusal() {
            shard.log_refusal(|| {
                format!(
                    "{}: HTTP submit: the message log cannot write; answered 503",
                    account.system_id
                )
            });
            return refuse(
                503,
                format!(
                    "the message log cannot write now ({})",
                    status.name().unwrap_or("?")
                ),
            );
        }
        let zero = account.coding().unwrap_or(crate::text::Charset::Gsm7);
        let sub_report = Bytes::from(std::mem::take(&mut sub.report_to));
        // Every recipient's messages, made before anything is taken in.
        let mut all = Vec::with_capacity(sub.to.len());
        for to in &sub.to {
            let dest = match submit::address(to, false) {
                Ok(d) => d,
                Err(e) => return refuse(400, format!("to: {e}")),
            };
            let reference = shard.concat_reference();
            match submit::messages(&sub, &dest, zero, reference) {
                Ok(pdus) => all.push((to, dest, pdus)),
                Err(e) => {
                    self.bad_request(account, &e);
                    return refuse(400, format!("text: {e}"));
                }
            }
        }
        let cost: usize = all.iter().map(|(_, _, p)| p.len()).sum();
        if !account
            .rate
            .try_take(shard.id, cost.min(u32::MAX as usize) as u32, Instant::now())
        {
            shared
                .counters(shard.id)
                .rejected
                .fetch_add(1, Ordering::Relaxed);
            for (_, _, pdus) in &all {
                for p in pdus {
                    shard.cdr_submit(
                        p,
                        None,
                        None,
                        account,
                        None,
                        CommandStatus::RTHROTTLED,
                        &self.peer_text,
                        Via::Http {
                            report_to: &sub_report,
                        }
                        .module(),
                    );
                }
            }
            return refuse(429, format!("over the account's rate ({cost} messages)"))
                .header("Retry-After", "1".into());
        }
        // Taken in: per recipient its billid (the id its receipts name) or its refusal.
        let mut results: Vec<(&String, Taken)> = Vec::new();
        let mut lsn = 0u64;
        for (to, dest, pdus) in &all {
            let billid = shard.next_id();
            let mut result = Ok((billid, pdus.len()));
            for (i, pdu) in pdus.iter().enumerate() {
                let Some(view) = pdu.message() else { continue };
                let id = if i == 0 { billid } else { shard.next_id() };
                let via = Via::Http {
                    report_to: &sub_report,
                };
                let decision = shard.decide(pdu, view.source, dest, account, billid, via);
                match shard.intake(pdu, id, billid, account, decision, &self.peer_text, via) {
                    Ok(l) => lsn = lsn.max(l),
                    Err(status) => {
                        if i > 0 {
                            // The parts already taken in go back: a message goes whole.
                            shard.msgs.flow.borrow_mut().cancel(
                                &shard.msgs.log,
                                billid,
                                status,
                                super::messages::now_ms(),
                            );
                        }
                        result = Err(status);
                        break;
                    }
                }
            }
            results.push((to, result));
        }
        shard.run_flow();
        let billids: Vec<MessageId> = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|(b, _)| *b))
            .collect();
        if !billids.is_empty() {
            let signal = Rc::new(Signal::default());
            let w = Waiter::Signal {
                signal: signal.clone(),
                billids: billids.clone(),
            };
            if shard.backlog_high() {
                shard.hold_answer(lsn, w);
            } else {
                shard.after(lsn, w);
            }
            let status = signal.wait().await;
            if !status.is_ok() {
                return refuse(
                    503,
                    format!(
                        "the message log cannot write now ({})",
                        status.name().unwrap_or("?")
                    ),
                );
            }
        }
        shared
            .counters(shard.id)
            .rejected
            .fetch_add((results.len() - billids.len()) as u64, Ordering::Relaxed);
        answer(shard, api, &results)
    }
}

/// The answer to a submit whose recipients were taken in (or refused).
fn answer(shard: &ShardState, api: Api, results: &[(&String, Taken)]) -> Answer {
    let accepted = results.iter().filter(|(_, r)| r.is_ok()).count();
    let status = if accepted > 0 {
        202
    } else {
        match results.first().map(|(_, r)| r) {
            Some(Err(CommandStatus::RTHROTTLED)) => 429,
            Some(Err(CommandStatus::RMSGQFUL | CommandStatus::RSYSERR)) => 503,
            _ => 422,
        }
    };
    let ids: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|(b, _)| String::from_utf8_lossy(shard.id_text(*b).as_bytes()).into_owned())
        .collect();
    match api {
        Api::Kannel => {
            let body = if accepted > 0 {
                "0: Accepted for delivery\n".to_string()
            } else {
                let st = results
                    .first()
                    .and_then(|(_, r)| r.as_ref().err())
                    .and_then(|s| s.name())
                    .unwrap_or("?");
                format!("Sending failed: {st}\n")
            };
            let a = Answer::text(status, body);
            if ids.is_empty() {
                a
            } else {
                a.header("X-Message-Id", ids.join(","))
            }
        }
        Api::Json => {
            let mut body = String::from("{\"messages\":[");
            let mut ids = ids.iter();
            for (i, (to, r)) in results.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                match r {
                    Ok((_, parts)) => body.push_str(&format!(
                        "{{\"to\":{},\"id\":{},\"parts\":{parts}}}",
                        json_str(to),
                        json_str(ids.next().map_or("", |s| s.as_str()))
                    )),
                    Err(st) => body.push_str(&format!(
                        "{{\"to\":{},\"error\":{},\"command_status\":{}}}",
                        json_str(to),
                        json_str(st.name().unwrap_or("?")),
                        st.0
                    )),
                }
            }
            body.push_str(&format!("],\"accepted\":{accepted}}}\n"));
            Answer::json(status, body)
        }
    }
}
