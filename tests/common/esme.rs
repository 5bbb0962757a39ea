//! A blocking test ESME built on the crate's own session state machine, over plain TCP or
//! rustls. It acknowledges every deliver_sm it receives and keeps them.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use smppgw::smpp::*;

pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

pub struct Esme {
    io: Box<dyn Io>,
    pub session: Session,
    rbuf: BytesMut,
    pub events: VecDeque<Event>,
    /// deliver_sm received (and acknowledged).
    pub delivered: Vec<Pdu>,
    /// Status to answer deliver_sm with.
    pub deliver_status: CommandStatus,
    pub eof: bool,
}

pub fn config() -> SessionConfig {
    SessionConfig {
        window: 1000,
        response_timeout: Duration::from_secs(10),
        enquire_link_interval: None,
        ..SessionConfig::default()
    }
}

impl Esme {
    pub fn plain(addr: SocketAddr) -> Esme {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Esme::over(Box::new(s), config())
    }

    pub fn tls(addr: SocketAddr, ca_pem: &str) -> Esme {
        let cfg = smppgw::net::tls::client_with_roots(ca_pem.as_bytes()).unwrap();
        Esme::tls_with(addr, cfg)
    }

    /// Over TLS with a client configuration of the test's choosing.
    pub fn tls_with(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Esme {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(&cfg), name).unwrap();
        Esme::over(Box::new(rustls::StreamOwned::new(conn, s)), config())
    }

    pub fn over(io: Box<dyn Io>, cfg: SessionConfig) -> Esme {
        Esme {
            io,
            session: Session::new(Role::Esme, cfg, Instant::now()),
            rbuf: BytesMut::with_capacity(64 * 1024),
            events: VecDeque::new(),
            delivered: Vec::new(),
            deliver_status: CommandStatus::ROK,
            eof: false,
        }
    }

    pub fn flush(&mut self) {
        let mut out = BytesMut::new();
        self.session.poll_transmit(&mut out);
        if !out.is_empty() {
            let _ = self.io.write_all(&out);
            let _ = self.io.flush();
        }
    }

    /// One read (up to the socket's short timeout) and its events.
    pub fn poll(&mut self) {
        self.flush();
        if self.eof {
            return;
        }
        let mut chunk = [0u8; 65536];
        match self.io.read(&mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.rbuf.extend_from_slice(&chunk[..n]);
                self.session.handle_input(&mut self.rbuf, Instant::now());
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => self.eof = true,
        }
        self.session.handle_timeout(Instant::now());
        while let Some(e) = self.session.poll_event() {
            if let Event::Request(p) = &e {
                if p.command_id() == CommandId::DELIVER_SM {
                    let status = self.deliver_status;
                    let body = if status.is_ok() {
                        Some(COctet::EMPTY)
                    } else {
                        None
                    };
                    self.session.respond(
                        p.sequence_number,
                        status,
                        Body::DeliverSmResp(body),
                        Tlvs::new(),
                    );
                    self.delivered.push(p.clone());
                    continue;
                }
            }
            self.events.push_back(e);
        }
        self.flush();
    }

    /// Polls until `f` picks an event (removed from the queue) or the time is up.
    pub fn until<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Option<T> {
        let t0 = Instant::now();
        loop {
            if let Some(i) = self.events.iter().position(|e| f(e).is_some()) {
                let e = self.events.remove(i).unwrap();
                return f(&e);
            }
            if t0.elapsed() > timeout || (self.eof && self.events.is_empty()) {
                return None;
            }
            self.poll();
        }
    }

    /// Polls until `n` deliveries have arrived.
    pub fn wait_delivered(&mut self, n: usize, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while self.delivered.len() < n && t0.elapsed() < timeout && !self.eof {
            self.poll();
        }
        self.delivered.len() >= n
    }

    /// Binds; Ok with the SMSC's system_id, or Err with the refusal.
    pub fn bind(
        &mut self,
        bind_type: BindType,
        system_id: &str,
        password: &str,
    ) -> Result<(), CloseReason> {
        let bind = Bind {
            system_id: system_id.into(),
            password: password.into(),
            interface_version: 0x34,
            ..Bind::default()
        };
        self.session
            .bind(bind_type, bind, Instant::now())
            .expect("bind allowed");
        self.until(Duration::from_secs(10), |e| match e {
            Event::Bound { .. } => Some(Ok(())),
            Event::Closed(r) => Some(Err(*r)),
            _ => None,
        })
        .unwrap_or(Err(CloseReason::SessionInitTimeout))
    }

    pub fn submit_sm(&mut self, sm: SubmitSm) -> u32 {
        let tag = self.session.in_flight() as u64;
        let seq = self
            .session
            .send_request(Body::SubmitSm(sm), Tlvs::new(), tag, Instant::now())
            .expect("submit allowed");
        self.flush();
        seq
    }

    /// Waits for the response to request `seq`: its status and message_id.
    pub fn response(&mut self, seq: u32) -> Option<(CommandStatus, Option<String>)> {
        self.until(Duration::from_secs(10), |e| match e {
            Event::Response { pdu, .. } if pdu.sequence_number == seq => {
                let id = match &pdu.body {
                    Body::SubmitSmResp(Some(id)) | Body::DataSmResp(Some(id)) => {
                        Some(id.to_string())
                    }
                    Body::SubmitMultiResp(Some(r)) => Some(r.message_id.to_string()),
                    _ => None,
                };
                Some((pdu.command_status, id))
            }
            _ => None,
        })
    }

    pub fn unbind(&mut self) -> bool {
        if self.session.unbind(Instant::now()).is_err() {
            return false;
        }
        self.until(Duration::from_secs(10), |e| match e {
            Event::Closed(CloseReason::Unbound) => Some(()),
            _ => None,
        })
        .is_some()
    }

    /// Writes raw bytes past the session (malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.io.write_all(bytes);
        let _ = self.io.flush();
    }
}

impl Esme {
    /// Submits flat out with a window of 64 (texts `TAG N`, `N` from `*next`, receipts asked)
    /// until `acked` (text -> the gateway's id) holds `until` answered messages; what is
    /// still in flight then stays unrecorded (a crash test kills the gateway with it).
    pub fn submit_until(
        &mut self,
        tag: &str,
        next: &mut usize,
        acked: &mut HashMap<String, String>,
        until: usize,
    ) {
        let mut pending: HashMap<u32, String> = HashMap::new();
        let t0 = Instant::now();
        while acked.len() < until {
            while pending.len() < 64 {
                let text = format!("{tag} {next}");
                *next += 1;
                let seq = self.submit_sm(sm("4477", "3161", text.as_bytes(), 1));
                pending.insert(seq, text);
            }
            self.poll();
            while let Some(ev) = self.events.pop_front() {
                if let Event::Response { pdu, .. } = ev {
                    if let Some(text) = pending.remove(&pdu.sequence_number) {
                        if let (true, Body::SubmitSmResp(Some(id))) =
                            (pdu.command_status.is_ok(), &pdu.body)
                        {
                            acked.insert(text, id.to_string());
                        }
                    }
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{} answered",
                acked.len()
            );
        }
    }
}

pub fn sm(from: &str, to: &str, text: &[u8], registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source: Address::new(1, 1, from),
        dest: Address::new(1, 1, to),
        registered_delivery,
        short_message: Bytes::copy_from_slice(text),
        ..SubmitSm::default()
    }
}
