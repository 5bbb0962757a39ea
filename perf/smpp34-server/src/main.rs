//! Terminating SMSC built on the crates.io `smpp34` crate (1.5.1): the comparison server for
//! the gateway benchmark, in the spirit of the crate's own `examples/perf_smsc.rs`.
//!
//! - accepts every bind (transmitter, receiver, transceiver), any system_id / password;
//! - answers every submit_sm with ESME_ROK and a unique message id (20 lowercase hex digits);
//! - when registered_delivery & 0x03 is 1 or 3 and the session can receive (a transceiver),
//!   sends a delivery receipt deliver_sm back on the same session;
//! - enquire_link, unbind and everything else use the crate's defaults.
//!
//! How receipts are sent: `smpp34` hands the listener an `ESME` handle for every bound
//! session (`SmppServerListener::on_esme_bound`, withdrawn again by `on_esme_unbound`).
//! We keep the receive-capable ones in a map keyed by session id and, from `on_submit_sm`,
//! spawn a task that calls `ESME::send_deliver_sm_pdu` with a pre-built `deliver_sm` carrying
//! the receipt TLVs; the crate queues it on the session's writer channel and awaits the
//! deliver_sm_resp itself.
//!
//! Ordering caveat: the crate writes the submit_sm_resp only after `on_submit_sm` returns,
//! and offers no hook for "response written". The receipt task therefore waits until the
//! `on_submit_sm` future has completed (a oneshot whose sender is dropped with it) and
//! yields once more before queueing the deliver_sm. That keeps the order while the session's
//! writer queue (100 frames) has room; when it is full, the response and the receipt wait
//! for slots and whichever task is polled first goes first, so under a deep window a few
//! receipts (about 0.1-0.6% in a 20 000-message pipelined test) overtake their response.
//!
//! unbind: the crate answers it by default, but aborts the session's writer right after
//! queueing the unbind_resp, so without help the response is lost; see `on_esme_unbound`.
//!
//! Usage: `smpp34-server 127.0.0.1:4775`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use smpp34::server::ESME;
use smpp34::{
    bind_receiver, bind_receiver_resp, bind_transceiver, bind_transceiver_resp, bind_transmitter,
    bind_transmitter_resp, deliver_sm, submit_sm, submit_sm_resp, SmppConnectionInformation,
    SmppServer, SmppServerListener, Tlv, TlvTag,
};

const SYSTEM_ID: &str = "SMPP34-SMSC";
/// SMPP 3.4 message_state DELIVERED.
const DELIVERED: u8 = 2;
/// How long a closing session waits for its writer to flush the unbind_resp.
const UNBIND_LINGER: Duration = Duration::from_millis(20);

struct Smsc {
    next_id: AtomicU64,
    /// Sessions that can take a deliver_sm (receiver / transceiver binds), by session id.
    receivers: RwLock<HashMap<String, Arc<ESME>>>,
    listen_failed: AtomicBool,
}

#[async_trait]
impl SmppServerListener for Smsc {
    async fn on_bind_transmitter(
        &self,
        req: bind_transmitter,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_transmitter_resp {
        req.accept(SYSTEM_ID.to_string(), Some(0x34))
    }

    async fn on_bind_receiver(
        &self,
        req: bind_receiver,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_receiver_resp {
        req.accept(SYSTEM_ID.to_string(), Some(0x34))
    }

    async fn on_bind_transceiver(
        &self,
        req: bind_transceiver,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_transceiver_resp {
        req.accept(SYSTEM_ID.to_string(), Some(0x34))
    }

    async fn on_submit_sm(
        &self,
        req: submit_sm,
        _c: &SmppConnectionInformation,
        session_id: &String,
    ) -> submit_sm_resp {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message_id = format!("{n:020x}");

        // Bits 1-0: 1 = receipt on success or failure, 3 = on success only (5.0).
        let esme = if matches!(req.registered_delivery & 0x03, 1 | 3) {
            self.receivers.read().unwrap().get(session_id).cloned()
        } else {
            None
        };
        // Dropped when this future completes, i.e. just before the crate queues the
        // submit_sm_resp; the receipt task waits for that.
        let (_answered, answered_rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(esme) = esme {
            let receipt = receipt(&req, &message_id);
            tokio::spawn(async move {
                let _ = answered_rx.await;
                tokio::task::yield_now().await;
                // Errors (timeout, generic_nack, closed session) are the ESME's business.
                let _ = esme.send_deliver_sm_pdu(receipt).await;
            });
        }
        req.accept(message_id)
    }

    async fn on_esme_bound(&self, esme: ESME, session_id: &String) {
        if esme.can_receive {
            self.receivers
                .write()
                .unwrap()
                .insert(session_id.clone(), Arc::new(esme));
        }
    }

    async fn on_esme_unbound(&self, session_id: &String) {
        self.receivers.write().unwrap().remove(session_id);
        // Workaround for smpp34 1.5.1: after an unbind the session queues the unbind_resp,
        // calls this hook and then aborts its writer task, which usually has not written
        // the unbind_resp yet, so the ESME never gets it. Lingering here lets the writer
        // flush it before the abort (only connection teardown waits, not the data path).
        tokio::time::sleep(UNBIND_LINGER).await;
    }

    async fn on_listen_failed(&self, error: &str) {
        eprintln!("smpp34-server: {error}");
        self.listen_failed.store(true, Ordering::SeqCst);
    }
}

/// The receipt of `req` as delivered: destination back to source, esm_class 0x04, the
/// canonical text, receipted_message_id and message_state TLVs.
fn receipt(req: &submit_sm, message_id: &str) -> deliver_sm {
    let now = chrono::Utc::now().format("%y%m%d%H%M").to_string();
    let text = format!(
        "id:{message_id} sub:001 dlvrd:001 submit date:{now} done date:{now} stat:DELIVRD err:000 text:"
    );
    deliver_sm::new(
        0, // assigned by the session
        String::new(),
        req.dest_addr_ton,
        req.dest_addr_npi,
        req.destination_addr.clone(),
        req.source_addr_ton,
        req.source_addr_npi,
        req.source_addr.clone(),
        0x04, // SMSC delivery receipt
        0,
        0,
        String::new(),
        String::new(),
        0,
        0,
        0,
        0,
        text.into_bytes(),
    )
    .with_tlvs([
        Tlv::from_c_string(TlvTag::ReceiptedMessageId, message_id),
        Tlv::from_u8(TlvTag::MessageStateTlv, DELIVERED),
    ])
}

#[tokio::main]
async fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: smpp34-server HOST:PORT");
        std::process::exit(2);
    });
    let addr: SocketAddr = arg.parse().unwrap_or_else(|e| {
        eprintln!("smpp34-server: bad address {arg:?}: {e}");
        std::process::exit(2);
    });

    let smsc = Arc::new(Smsc {
        next_id: AtomicU64::new(1),
        receivers: RwLock::new(HashMap::new()),
        listen_failed: AtomicBool::new(false),
    });
    let mut server = SmppServer::new(addr.ip(), addr.port(), smsc.clone());
    server.start().await;
    if !server.is_alive() || smsc.listen_failed.load(Ordering::SeqCst) {
        std::process::exit(1);
    }
    eprintln!("smpp34-server listening on {addr}");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.stop().await;
    std::process::exit(0);
}
