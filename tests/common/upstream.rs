//! A scriptable upstream SMSC on the crate's own session, for the faults real SMSCs have:
//! never answering a bind, going silent mid-flow. One thread per connection.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use smppgw::smpp::*;

#[derive(Default)]
pub struct State {
    /// Answer binds (false: accept the TCP connection and say nothing).
    pub answer_binds: AtomicBool,
    /// Neither read nor write (a half-open peer).
    pub silent: AtomicBool,
    pub connections: AtomicUsize,
    pub open: AtomicUsize,
    pub max_open: AtomicUsize,
    pub binds: AtomicUsize,
    /// Texts of the submit_sm received, in order.
    pub received: Mutex<Vec<Vec<u8>>>,
    /// Mobile-originated messages to send (source, destination, text) once a receiver or
    /// transceiver is bound, and the statuses of their deliver_sm_resp.
    pub mo: Mutex<Vec<(String, String, Vec<u8>)>>,
    pub mo_status: Mutex<Vec<CommandStatus>>,
    /// submit_sm to destinations starting with this are refused with ESME_RSUBMITFAIL (a
    /// status the gateway's own route refusals never use).
    pub refuse_prefix: Mutex<Option<String>>,
    /// Receipts first: a submit_sm asking for a receipt has its receipt sent at once and its
    /// submit_sm_resp held this long (a fast SMSC whose answers lag).
    pub receipt_first: Mutex<Option<Duration>>,
    /// Receipts to send (upstream id, deliver_sm, not before), and the status of each
    /// deliver_sm_resp a receipt got, in order. A temporary status sends it again 300 ms
    /// later, as SMSCs do.
    pub receipts: Mutex<Vec<(String, Pdu, Instant)>>,
    pub receipt_status: Mutex<Vec<(String, CommandStatus)>>,
    /// Send receipts only on the connection accepted as this one (1 the first; none: on any).
    pub receipt_conn: Mutex<Option<usize>>,
    pub stop: AtomicBool,
}

pub struct FakeUpstream {
    pub port: u16,
    pub state: Arc<State>,
}

impl FakeUpstream {
    pub fn start(answer_binds: bool) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        state.answer_binds.store(answer_binds, Ordering::SeqCst);
        let st = state.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let st = st.clone();
                        let index = st.connections.fetch_add(1, Ordering::SeqCst) + 1;
                        let open = st.open.fetch_add(1, Ordering::SeqCst) + 1;
                        st.max_open.fetch_max(open, Ordering::SeqCst);
                        std::thread::spawn(move || {
                            serve(s, &st, index);
                            st.open.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeUpstream { port, state }
    }

    pub fn set_silent(&self, silent: bool) {
        self.state.silent.store(silent, Ordering::SeqCst);
    }

    /// Queues a mobile-originated deliver_sm.
    pub fn send_mo(&self, from: &str, to: &str, text: &[u8]) {
        self.state
            .mo
            .lock()
            .unwrap()
            .push((from.into(), to.into(), text.to_vec()));
    }

    /// Queues a receipt for an upstream message id the gateway never got.
    pub fn send_receipt_for(&self, id: &str) {
        let request = Pdu {
            command_status: CommandStatus::ROK,
            sequence_number: 1,
            body: Body::SubmitSm(SubmitSm {
                source: Address::new(1, 1, "4477"),
                dest: Address::new(1, 1, "3161"),
                registered_delivery: 1,
                short_message: b"lost".as_slice().into(),
                ..SubmitSm::default()
            }),
            tlvs: Tlvs::new(),
        };
        let r = smppgw::shard::sim::receipt(&request, id.as_bytes(), 0);
        self.state
            .receipts
            .lock()
            .unwrap()
            .push((id.into(), r, Instant::now()));
    }

    /// The statuses receipts got (upstream id, deliver_sm_resp status).
    pub fn receipt_status(&self) -> Vec<(String, CommandStatus)> {
        self.state.receipt_status.lock().unwrap().clone()
    }

    pub fn mo_status(&self) -> Vec<CommandStatus> {
        self.state.mo_status.lock().unwrap().clone()
    }

    pub fn received(&self) -> Vec<Vec<u8>> {
        self.state.received.lock().unwrap().clone()
    }

    /// The texts received once there are `n` of them (or when `timeout` ends): the gateway
    /// answers its ESMEs before it forwards.
    pub fn wait_received(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let t0 = Instant::now();
        while self.received().len() < n && t0.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.received()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut s: TcpStream, st: &State, index: usize) {
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let cfg = SessionConfig {
        enquire_link_interval: None,
        session_init_timeout: Some(Duration::from_secs(600)),
        ..SessionConfig::default()
    };
    let mut session = Session::new(Role::Smsc, cfg, Instant::now());
    let mut rbuf = BytesMut::new();
    let mut n = 0u64;
    let mut receives = false;
    // submit_sm_resp held back (due, sequence number, id); receipts in flight by tag.
    let mut held: Vec<(Instant, u32, String)> = Vec::new();
    let mut sent: std::collections::HashMap<u64, (String, Pdu)> = Default::default();
    let mut next_tag = 1u64 << 32;
    loop {
        if st.stop.load(Ordering::SeqCst) {
            return;
        }
        if st.silent.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let mut chunk = [0u8; 16384];
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(k) => {
                rbuf.extend_from_slice(&chunk[..k]);
                // Silence may have begun while this read waited: then the bytes wait too.
                if st.silent.load(Ordering::SeqCst) {
                    continue;
                }
                session.handle_input(&mut rbuf, Instant::now());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        while let Some(e) = session.poll_event() {
            match e {
                Event::BindRequest {
                    sequence_number,
                    bind_type,
                    ..
                } if st.answer_binds.load(Ordering::SeqCst) => {
                    st.binds.fetch_add(1, Ordering::SeqCst);
                    receives = bind_type != BindType::Transmitter;
                    let _ = session.accept_bind(sequence_number, "fake".into());
                }
                Event::Request(p) => {
                    if let Body::SubmitSm(m) = &p.body {
                        let refuse = st
                            .refuse_prefix
                            .lock()
                            .unwrap()
                            .as_ref()
                            .is_some_and(|pre| m.dest.addr.as_bytes().starts_with(pre.as_bytes()));
                        if refuse {
                            session.respond(
                                p.sequence_number,
                                CommandStatus::RSUBMITFAIL,
                                Body::SubmitSmResp(None),
                                Tlvs::new(),
                            );
                            continue;
                        }
                        st.received.lock().unwrap().push(m.short_message.to_vec());
                        n += 1;
                        let id = format!("F{n:08}");
                        let first = *st.receipt_first.lock().unwrap();
                        if let (Some(hold), true) = (first, m.registered_delivery & 0x03 != 0) {
                            let r = smppgw::shard::sim::receipt(&p, id.as_bytes(), 0);
                            st.receipts
                                .lock()
                                .unwrap()
                                .push((id.clone(), r, Instant::now()));
                            held.push((Instant::now() + hold, p.sequence_number, id));
                            continue;
                        }
                        session.respond(
                            p.sequence_number,
                            CommandStatus::ROK,
                            Body::SubmitSmResp(Some(id.as_str().into())),
                            Tlvs::new(),
                        );
                    }
                }
                Event::Response { tag, pdu, .. } if sent.contains_key(&tag) => {
                    if let Some((id, r)) = sent.remove(&tag) {
                        st.receipt_status
                            .lock()
                            .unwrap()
                            .push((id.clone(), pdu.command_status));
                        if pdu.command_status.is_temporary() {
                            let again = Instant::now() + Duration::from_millis(300);
                            st.receipts.lock().unwrap().push((id, r, again));
                        }
                    }
                }
                Event::Response { request, pdu, .. } if request == CommandId::DELIVER_SM => {
                    st.mo_status.lock().unwrap().push(pdu.command_status);
                }
                Event::Closed(_) => {}
                _ => {}
            }
        }
        let now = Instant::now();
        held.retain(|(due, seq, id)| {
            if *due > now {
                return true;
            }
            session.respond(
                *seq,
                CommandStatus::ROK,
                Body::SubmitSmResp(Some(id.as_str().into())),
                Tlvs::new(),
            );
            false
        });
        let mine = st.receipt_conn.lock().unwrap().is_none_or(|c| c == index);
        if receives && mine {
            let due: Vec<_> = {
                let mut q = st.receipts.lock().unwrap();
                let (due, later) = q.drain(..).partition(|(_, _, at)| *at <= now);
                *q = later;
                due
            };
            for (id, r, _) in due {
                next_tag += 1;
                if session
                    .send_request(r.body.clone(), r.tlvs.clone(), next_tag, now)
                    .is_ok()
                {
                    sent.insert(next_tag, (id, r));
                }
            }
            let queued: Vec<_> = std::mem::take(&mut *st.mo.lock().unwrap());
            for (from, to, text) in queued {
                let body = Body::DeliverSm(DeliverSm {
                    source: Address::new(1, 1, from.as_str()),
                    dest: Address::new(1, 1, to.as_str()),
                    short_message: text.into(),
                    ..DeliverSm::default()
                });
                let _ = session.send_request(body, Tlvs::new(), 0, Instant::now());
            }
        }
        let mut out = BytesMut::new();
        session.poll_transmit(&mut out);
        if !out.is_empty() && s.write_all(&out).is_err() {
            return;
        }
        if session.is_closed() {
            return;
        }
    }
}
