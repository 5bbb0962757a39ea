//! smpp-load: an ESME load generator on the gateway's own core (session state machine,
//! connection driver, glommio).
//!
//! ```text
//! smpp-load --target 127.0.0.1:2775 [--tls] [--binds 4] [--bind trx|tx] [--receivers 0]
//!           [--window 64] [--rate MSG_PER_S] [--count 100000 | --duration 10s]
//!           [--mix gsm7:70,ucs2:20,long:10] [--receipts] [--system-id demo] [--password demo]
//!           [--threads 1] [--json] [--write-each] [--receivers-target ADDR]
//! ```
//!
//! `--receivers-target`: the receivers bind there instead of `--target` (another node of a
//! cluster, say). With `--receipts` the generator also times each receipt from its submit
//! (matched by the id the submit_sm_resp gave; with `--threads 1`, the default, every
//! connection is on one thread and every receipt can be matched).
//!
//! `--write-each`: one write per PDU, as most ESME libraries write (a response that frees
//! window space is followed by one write of one submit_sm); without it a window's worth of
//! submits goes out in one write.
//!
//! Every part of a long message counts as one message. Latency is submit_sm to
//! submit_sm_resp, per part. With `--receipts` every message asks for a receipt and the
//! generator waits (up to 5 s after the last response) for them; receipts are acknowledged.
//! Prints a table and, with `--json`, one JSON line.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_rustls::TlsConnector;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use hdrhistogram::Histogram;
use smppgw::net::conn::{drive, DriverLimits, Handler, IoCounts};
use smppgw::smpp::{
    Address, Bind, BindType, Body, COctet, CommandStatus, Event, Role, Session, SessionConfig,
    SubmitSm, Tlvs,
};
use smppgw::text::{segment, SegmentOptions};

#[derive(Clone, Debug)]
struct Options {
    target: SocketAddr,
    tls: bool,
    binds: usize,
    bind: BindType,
    receivers: usize,
    window: usize,
    rate: f64,
    count: u64,
    duration: Option<Duration>,
    mix: Vec<(String, u32)>,
    receipts: bool,
    system_id: String,
    password: String,
    threads: usize,
    json: bool,
    /// One write per PDU (as most ESME libraries write), not one per window's worth.
    write_each: bool,
    receivers_target: Option<SocketAddr>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        target: "127.0.0.1:2775".parse().unwrap_or_else(|_| unreachable!()),
        tls: false,
        binds: 1,
        bind: BindType::Transceiver,
        receivers: 0,
        window: 64,
        rate: 0.0,
        count: 100_000,
        duration: None,
        mix: vec![("gsm7".into(), 100)],
        receipts: false,
        system_id: "demo".into(),
        password: "demo".into(),
        threads: 1,
        json: false,
        write_each: false,
        receivers_target: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--target" => o.target = val()?.parse().map_err(|_| "--target: ADDRESS:PORT")?,
            "--tls" => o.tls = true,
            "--binds" => o.binds = val()?.parse().map_err(|_| "--binds: a number")?,
            "--bind" => {
                o.bind = match val()?.as_str() {
                    "trx" | "transceiver" => BindType::Transceiver,
                    "tx" | "transmitter" => BindType::Transmitter,
                    other => return Err(format!("--bind {other}: trx or tx")),
                }
            }
            "--receivers" => o.receivers = val()?.parse().map_err(|_| "--receivers: a number")?,
            "--window" => o.window = val()?.parse().map_err(|_| "--window: a number")?,
            "--rate" => o.rate = val()?.parse().map_err(|_| "--rate: messages per second")?,
            "--count" => o.count = val()?.parse().map_err(|_| "--count: a number")?,
            "--duration" => o.duration = Some(smppgw::config::value::duration(&val()?)?),
            "--mix" => {
                o.mix = smppgw::config::value::list(&val()?)
                    .iter()
                    .map(|m| {
                        let (k, w) = m.split_once(':').unwrap_or((m, "1"));
                        match (k, w.parse::<u32>()) {
                            ("gsm7" | "ucs2" | "long", Ok(w)) => Ok((k.to_string(), w)),
                            _ => Err(format!("--mix {m}: gsm7|ucs2|long:WEIGHT")),
                        }
                    })
                    .collect::<Result<_, _>>()?
            }
            "--receipts" => o.receipts = true,
            "--system-id" => o.system_id = val()?,
            "--password" => o.password = val()?,
            "--threads" => o.threads = val()?.parse().map_err(|_| "--threads: a number")?,
            "--json" => o.json = true,
            "--write-each" => o.write_each = true,
            "--receivers-target" => {
                o.receivers_target = Some(
                    val()?
                        .parse()
                        .map_err(|_| "--receivers-target: ADDRESS:PORT")?,
                )
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.binds == 0 || o.window == 0 || o.threads == 0 {
        return Err("--binds, --window and --threads must be at least 1".into());
    }
    Ok(o)
}

/// The submit_sm bodies of one message of each kind (a long message has several parts).
fn templates(o: &Options) -> Vec<Vec<SubmitSm>> {
    let rd = if o.receipts { 1 } else { 0 };
    let base = SubmitSm {
        source: Address::new(1, 1, "447700900123"),
        dest: Address::new(1, 1, "31612345678"),
        registered_delivery: rd,
        ..SubmitSm::default()
    };
    let gsm: String = "The quick brown fox jumps over the lazy dog 0123456789. "
        .chars()
        .cycle()
        .take(160)
        .collect();
    let ucs: String = "Съешь же ещё этих мягких французских булок. "
        .chars()
        .cycle()
        .take(70)
        .collect();
    let long: String = gsm.repeat(2);
    let parts = |text: &str| -> Vec<SubmitSm> {
        let (_, parts) = segment(
            text,
            &SegmentOptions {
                reference: 7,
                ..SegmentOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("segmenting the load text: {e}"));
        parts
            .into_iter()
            .map(|p| SubmitSm {
                esm_class: if p.udhi { 0x40 } else { 0 },
                data_coding: p.data_coding,
                short_message: Bytes::from(p.user_data),
                ..base.clone()
            })
            .collect()
    };
    let mut cycle = Vec::new();
    for (kind, weight) in &o.mix {
        let msg = match kind.as_str() {
            "ucs2" => parts(&ucs),
            "long" => parts(&long),
            _ => parts(&gsm),
        };
        for _ in 0..*weight {
            cycle.push(msg.clone());
        }
    }
    // Interleave kinds rather than running them in blocks.
    let mut out = Vec::with_capacity(cycle.len());
    let (mut i, step) = (0, 7usize);
    for _ in 0..cycle.len() {
        out.push(cycle[i % cycle.len()].clone());
        i += step;
        if i % cycle.len() == 0 {
            i += 1;
        }
    }
    if out.is_empty() {
        out.push(parts(&gsm));
    }
    out
}

#[derive(Default)]
struct Stats {
    sent: u64,
    acked: u64,
    errors: BTreeMap<u32, u64>,
    timeouts: u64,
    receipts: u64,
    bind_failures: u64,
    first_send: Option<Instant>,
    last_response: Option<Instant>,
    last_receipt: Option<Instant>,
}

/// Submit times by the id each submit_sm_resp gave, and receipts that came before theirs:
/// the submit-to-receipt latency of every receipt.
struct ReceiptClock {
    sent: hashbrown::HashMap<Vec<u8>, u64>,
    early: hashbrown::HashMap<Vec<u8>, u64>,
    hist: Histogram<u64>,
}

impl ReceiptClock {
    fn new() -> ReceiptClock {
        ReceiptClock {
            sent: Default::default(),
            early: Default::default(),
            hist: Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                .unwrap_or_else(|_| unreachable!()),
        }
    }

    fn answered(&mut self, id: &[u8], sent_ns: u64) {
        match self.early.remove(id) {
            Some(at) => {
                let _ = self.hist.record(at.saturating_sub(sent_ns).max(1));
            }
            None => {
                self.sent.insert(id.to_vec(), sent_ns);
            }
        }
    }

    fn receipt(&mut self, id: &[u8], at_ns: u64) {
        match self.sent.remove(id) {
            Some(sent) => {
                let _ = self.hist.record(at_ns.saturating_sub(sent).max(1));
            }
            None => {
                self.early.insert(id.to_vec(), at_ns);
            }
        }
    }
}

/// The id a receipt reports on: its receipted_message_id, else the `id:` of its text.
fn receipted_id(p: &smppgw::smpp::Pdu) -> Option<Vec<u8>> {
    if let Some(id) = p
        .tlvs
        .get_cstr(smppgw::smpp::tlv::tag::RECEIPTED_MESSAGE_ID)
    {
        return Some(id.to_vec());
    }
    let Body::DeliverSm(d) = &p.body else {
        return None;
    };
    let text = d.short_message.as_ref();
    let rest = text.strip_prefix(b"id:")?;
    let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    Some(rest[..end].to_vec())
}

struct Load {
    opts: Rc<Options>,
    clock: Rc<RefCell<ReceiptClock>>,
    stats: Rc<RefCell<Stats>>,
    hist: Rc<RefCell<Histogram<u64>>>,
    epoch: Instant,
    templates: Rc<Vec<Vec<SubmitSm>>>,
    next_template: usize,
    pending_parts: Vec<SubmitSm>,
    /// Messages this connection still has to send (parts count).
    quota: u64,
    deadline: Option<Instant>,
    interval: Option<Duration>,
    next_send: Instant,
    /// The window was full at the last `fill`: the send schedule waits for a response, not
    /// for a timer (a timer in the past would wake the loop at once, again and again, and
    /// starve every connection of its reads).
    window_full: bool,
    sender: bool,
    bound: bool,
    done_at: Option<Instant>,
    /// A wake has come at or after `deadline` (it is not a wake-up time any more).
    deadline_seen: bool,
    expected_receipts: u64,
    receipts: u64,
}

impl Load {
    fn finished_sending(&self, now: Instant) -> bool {
        !self.sender || self.quota == 0 || self.deadline.is_some_and(|d| now >= d)
    }

    fn fill(&mut self, s: &mut Session, now: Instant) {
        if !self.bound || !self.sender {
            return;
        }
        self.window_full = false;
        while !self.finished_sending(now) {
            if s.window_available() == 0 {
                self.window_full = true;
                break;
            }
            if self.interval.is_some() && self.next_send > now {
                break;
            }
            if self.pending_parts.is_empty() {
                let t = &self.templates[self.next_template % self.templates.len()];
                self.next_template += 1;
                self.pending_parts = t.iter().rev().cloned().collect();
            }
            let Some(part) = self.pending_parts.pop() else {
                break;
            };
            let tag = now.duration_since(self.epoch).as_nanos() as u64;
            if s.send_request(Body::SubmitSm(part), Tlvs::new(), tag, now)
                .is_err()
            {
                break;
            }
            self.quota -= 1;
            let mut st = self.stats.borrow_mut();
            st.sent += 1;
            st.first_send.get_or_insert(now);
            drop(st);
            if let Some(i) = self.interval {
                self.next_send += i;
            }
        }
        self.maybe_finish(s, now);
    }

    fn maybe_finish(&mut self, s: &mut Session, now: Instant) {
        if !self.bound || !matches!(s.state(), smppgw::smpp::State::Bound(_)) {
            return;
        }
        let sending_done = self.finished_sending(now) && s.in_flight() == 0;
        if self.sender && !sending_done {
            return;
        }
        let done_at = *self.done_at.get_or_insert(now);
        let receipts_done = !self.opts.receipts
            || self.receipts >= self.expected_receipts && self.sender
            || now >= done_at + Duration::from_secs(5);
        // Receivers stay until every sender is done: they stop on the grace timer.
        if receipts_done && (self.sender || now >= done_at + Duration::from_secs(5)) {
            let _ = s.unbind(now);
            // Nothing more to wake for: the session's own timers see the unbind through
            // (a timer left in the past would spin the loop until the unbind_resp came).
            self.bound = false;
        }
    }
}

impl Handler for Load {
    type Outbound = ();

    fn on_start(&mut self, s: &mut Session, now: Instant) {
        let bind = Bind {
            system_id: COctet::from(self.opts.system_id.as_str()),
            password: COctet::from(self.opts.password.as_str()),
            ..Bind::default()
        };
        let bt = if self.sender {
            self.opts.bind
        } else {
            BindType::Receiver
        };
        let _ = s.bind(bt, bind, now);
    }

    fn on_event(&mut self, s: &mut Session, e: Event, now: Instant) {
        match e {
            Event::Bound { .. } => {
                self.bound = true;
                self.next_send = now;
                if let Some(d) = self.opts.duration {
                    self.deadline = Some(now + d);
                }
                if !self.sender {
                    // A receiver leaves after 5 s without a receipt (from its bind on).
                    self.done_at = Some(now);
                }
                self.fill(s, now);
            }
            Event::Response { tag, pdu, .. } => {
                let sent_ns = tag;
                let lat = now.duration_since(self.epoch).as_nanos() as u64
                    - sent_ns.min(now.duration_since(self.epoch).as_nanos() as u64);
                let _ = self.hist.borrow_mut().record(lat.max(1));
                let mut st = self.stats.borrow_mut();
                st.last_response = Some(now);
                if pdu.command_status.is_ok() {
                    st.acked += 1;
                    if self.opts.receipts {
                        self.expected_receipts += 1;
                        if let Body::SubmitSmResp(Some(id)) = &pdu.body {
                            self.clock.borrow_mut().answered(id.as_bytes(), sent_ns);
                        }
                    }
                } else {
                    *st.errors.entry(pdu.command_status.0).or_default() += 1;
                }
                drop(st);
                self.fill(s, now);
            }
            Event::Request(p) => {
                if let Body::DeliverSm(_) = p.body {
                    if let Some(id) = receipted_id(&p) {
                        let at = now.duration_since(self.epoch).as_nanos() as u64;
                        self.clock.borrow_mut().receipt(&id, at);
                    }
                    s.respond(
                        p.sequence_number,
                        CommandStatus::ROK,
                        Body::DeliverSmResp(Some(COctet::EMPTY)),
                        Tlvs::new(),
                    );
                    self.receipts += 1;
                    if !self.sender {
                        self.done_at = Some(now);
                    }
                    let mut st = self.stats.borrow_mut();
                    st.receipts += 1;
                    st.last_receipt = Some(now);
                    drop(st);
                    self.maybe_finish(s, now);
                }
            }
            Event::RequestFailed { .. } => {
                self.stats.borrow_mut().timeouts += 1;
                self.fill(s, now);
            }
            Event::Closed(smppgw::smpp::CloseReason::BindRejected(st)) => {
                self.stats.borrow_mut().bind_failures += 1;
                eprintln!("smpp-load: bind refused with {st}");
            }
            _ => {}
        }
    }

    fn on_outbound(&mut self, _: &mut Session, _: (), _: Instant) {}

    fn can_read(&self, _: &Session) -> bool {
        true
    }

    fn can_take(&self, _: &Session) -> bool {
        false
    }

    fn on_close(&mut self, _: &mut Session, _: &str, _: IoCounts) {}

    fn next_wakeup(&self) -> Option<Instant> {
        if !self.bound {
            return None;
        }
        let mut t: Option<Instant> = None;
        // A deadline or grace time already past has been seen to (any wake after it does): a
        // timer left there would wake the loop at once, again and again.
        let now = Instant::now();
        if self.interval.is_some() && !self.window_full && !self.finished_sending(now) {
            t = Some(self.next_send);
        }
        // The deadline, also once past until a wake has seen it (else a sender whose last
        // answer came before it would never be woken to unbind); never after, or the loop
        // would spin on it and starve its own reads of the answers still due.
        if let Some(d) = self.deadline.filter(|_| !self.deadline_seen) {
            t = Some(t.map_or(d, |x| x.min(d)));
        }
        // The grace time stays even once past: the driver wakes the handler only for a
        // wake-up time that has come, and the wake that sees it past unbinds (no spin).
        if let Some(g) = self.done_at.map(|d| d + Duration::from_secs(5)) {
            t = Some(t.map_or(g, |x| x.min(g)));
        }
        t
    }

    fn on_wakeup(&mut self, s: &mut Session, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline_seen = true;
        }
        self.fill(s, now);
        self.maybe_finish(s, now);
    }
}

fn session_config(window: usize) -> SessionConfig {
    SessionConfig {
        window,
        response_timeout: Duration::from_secs(30),
        enquire_link_interval: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    }
}

/// Messages connection `i` sends of `--count`.
fn quota_of(o: &Options, i: usize) -> u64 {
    let n = o.binds as u64;
    o.count / n + if (i as u64) < o.count % n { 1 } else { 0 }
}

struct ThreadResult {
    stats: Stats,
    hist: Histogram<u64>,
    receipt_hist: Histogram<u64>,
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("smpp-load: {e}");
            }
            eprintln!("{}", include_str!("usage.txt"));
            std::process::exit(2);
        }
    };
    if let Err(e) = smppgw::net::sys::raise_memlock()
        .map_err(|e| e.to_string())
        .and_then(|_| smppgw::net::sys::probe_io_uring())
    {
        eprintln!("smpp-load: {e}");
        std::process::exit(2);
    }
    let _ = smppgw::net::sys::raise_nofile();
    let opts = Rc::new(opts);
    let templates = templates(&opts);
    let total_conns = opts.binds + opts.receivers;
    let threads = opts.threads.min(total_conns);
    let started = Instant::now();
    let o = (*opts).clone();
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(threads))
        .name("load")
        .io_memory(256 * 1024)
        .ring_depth(256)
        .on_all_shards(move || {
            let o = o.clone();
            let templates = templates.clone();
            async move {
                let me = glommio::executor().id() - 1;
                let opts = Rc::new(o);
                let templates = Rc::new(templates);
                let stats = Rc::new(RefCell::new(Stats::default()));
                let hist = Rc::new(RefCell::new(
                    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                        .unwrap_or_else(|_| unreachable!()),
                ));
                let epoch = Instant::now();
                let clock = Rc::new(RefCell::new(ReceiptClock::new()));
                let mut tasks = Vec::new();
                let total = opts.binds + opts.receivers;
                for i in (0..total).filter(|i| i % threads == me % threads) {
                    let sender = i < opts.binds;
                    let quota = if sender { quota_of(&opts, i) } else { 0 };
                    let rate_per_conn = if opts.rate > 0.0 {
                        opts.rate / opts.binds as f64
                    } else {
                        0.0
                    };
                    let handler = Load {
                        opts: opts.clone(),
                        clock: clock.clone(),
                        stats: stats.clone(),
                        hist: hist.clone(),
                        epoch,
                        templates: templates.clone(),
                        next_template: i * 3,
                        pending_parts: Vec::new(),
                        quota: if opts.duration.is_some() {
                            u64::MAX
                        } else {
                            quota
                        },
                        deadline: None,
                        interval: (rate_per_conn > 0.0)
                            .then(|| Duration::from_secs_f64(1.0 / rate_per_conn)),
                        next_send: epoch,
                        window_full: false,
                        sender,
                        bound: false,
                        done_at: None,
                        deadline_seen: false,
                        expected_receipts: 0,
                        receipts: 0,
                    };
                    let target = match (sender, opts.receivers_target) {
                        (false, Some(t)) => t,
                        _ => opts.target,
                    };
                    let tls = opts.tls;
                    let window = opts.window;
                    let write_each = opts.write_each;
                    tasks.push(glommio::spawn_local(async move {
                        let stream = match glommio::net::TcpStream::connect(target).await {
                            Ok(s) => s,
                            Err(e) => {
                                eprintln!("smpp-load: connect {target}: {e}");
                                return;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let (_tx, rx) = glommio::channels::local_channel::new_bounded(1);
                        let session =
                            Session::new(Role::Esme, session_config(window), Instant::now());
                        let limits = DriverLimits {
                            write_timeout: Duration::from_secs(30),
                            write_each,
                            gather: false,
                        };
                        if tls {
                            let connector = TlsConnector::from(smppgw::net::tls::client_insecure());
                            let name = rustls::pki_types::ServerName::try_from("localhost")
                                .unwrap_or_else(|_| unreachable!());
                            match connector.connect(name, stream).await {
                                Ok(s) => drive(s, session, handler, &rx, limits).await,
                                Err(e) => eprintln!("smpp-load: TLS handshake: {e}"),
                            }
                        } else {
                            drive(stream, session, handler, &rx, limits).await;
                        }
                    }));
                }
                for t in tasks {
                    t.await;
                }
                let stats = std::mem::take(&mut *stats.borrow_mut());
                let hist = hist.borrow().clone();
                let receipt_hist = clock.borrow().hist.clone();
                ThreadResultSend(ThreadResult {
                    stats,
                    hist,
                    receipt_hist,
                })
            }
        });
    let pool = match pool {
        Ok(p) => p,
        Err(e) => {
            eprintln!("smpp-load: cannot start: {e}");
            std::process::exit(2);
        }
    };
    let mut total = Stats::default();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| unreachable!());
    let mut receipt_hist = hist.clone();
    for r in pool.join_all() {
        let Ok(ThreadResultSend(r)) = r else { continue };
        total.sent += r.stats.sent;
        total.acked += r.stats.acked;
        total.timeouts += r.stats.timeouts;
        total.receipts += r.stats.receipts;
        total.bind_failures += r.stats.bind_failures;
        for (k, v) in r.stats.errors {
            *total.errors.entry(k).or_default() += v;
        }
        total.first_send = match (total.first_send, r.stats.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.last_response = match (total.last_response, r.stats.last_response) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        total.last_receipt = match (total.last_receipt, r.stats.last_receipt) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let _ = hist.add(&r.hist);
        let _ = receipt_hist.add(&r.receipt_hist);
    }
    report(&opts, &total, &hist, &receipt_hist, started);
}

/// Stats cross the executor boundary once, at the end (Instant and Histogram are Send).
struct ThreadResultSend(ThreadResult);

fn report(o: &Options, t: &Stats, h: &Histogram<u64>, rh: &Histogram<u64>, started: Instant) {
    let elapsed = match (t.first_send, t.last_response) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => started.elapsed(),
    };
    let rate = t.acked as f64 / elapsed.as_secs_f64();
    // Receipts per second from the first send to the last receipt: messages that made the
    // whole round trip (in = out).
    let receipt_rate = match (t.first_send, t.last_receipt) {
        (Some(a), Some(b)) if b > a => t.receipts as f64 / (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
    let errors: Vec<String> = t
        .errors
        .iter()
        .map(|(k, v)| format!("{}: {v}", CommandStatus(*k).name().unwrap_or("?")))
        .collect();
    let mix: Vec<String> = o.mix.iter().map(|(k, w)| format!("{k}:{w}")).collect();
    println!(
        "smpp-load: {} {} binds x window {} -> {} ({}), mix {}{}{}",
        o.binds,
        o.bind.name(),
        o.window,
        o.target,
        if o.tls { "TLS" } else { "plain" },
        mix.join(","),
        if o.receipts { ", receipts" } else { "" },
        if o.rate > 0.0 {
            format!(", target {} msg/s", o.rate)
        } else {
            ", flat out".into()
        }
    );
    println!("  sent      {:>12}", t.sent);
    println!("  acked     {:>12}", t.acked);
    println!(
        "  errors    {:>12}  {}",
        t.errors.values().sum::<u64>(),
        errors.join(", ")
    );
    println!("  timeouts  {:>12}", t.timeouts);
    println!("  receipts  {:>12}", t.receipts);
    println!("  elapsed   {:>12.3} s", elapsed.as_secs_f64());
    println!("  rate      {:>12.0} msg/s", rate);
    if t.receipts > 0 {
        println!(
            "  receipts  {:>12.0} msg/s (first send to last receipt)",
            receipt_rate
        );
    }
    println!(
        "  latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1e6
    );
    let rms = |q: f64| rh.value_at_quantile(q) as f64 / 1e6;
    if !rh.is_empty() {
        println!(
            "  receipt   p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  ({} timed, submit to receipt)",
            rms(0.5),
            rms(0.99),
            rms(0.999),
            rh.len()
        );
    }
    if o.json {
        println!(
            "{{\"binds\":{},\"window\":{},\"tls\":{},\"receipts_requested\":{},\"sent\":{},\"acked\":{},\"errors\":{},\"timeouts\":{},\"receipts\":{},\"elapsed_s\":{:.6},\"msg_per_s\":{:.1},\"receipts_per_s\":{:.1},\"p50_ms\":{:.4},\"p90_ms\":{:.4},\"p99_ms\":{:.4},\"p999_ms\":{:.4},\"max_ms\":{:.4},\"receipts_timed\":{},\"receipt_p50_ms\":{:.4},\"receipt_p99_ms\":{:.4},\"receipt_p999_ms\":{:.4}}}",
            o.binds,
            o.window,
            o.tls,
            o.receipts,
            t.sent,
            t.acked,
            t.errors.values().sum::<u64>(),
            t.timeouts,
            t.receipts,
            elapsed.as_secs_f64(),
            rate,
            receipt_rate,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1e6,
            rh.len(),
            rms(0.5),
            rms(0.99),
            rms(0.999)
        );
    }
    if t.bind_failures > 0 {
        std::process::exit(1);
    }
}
