//! The shard's CDR legs: built from what the shard knows at each step (an ESME's submit, an
//! MO from a link, each attempt's outcome, each end) and handed to the control shard in
//! batches (at each tick, or when a batch is full). Nothing here waits: see `cdr::Sink`.
//!
//! Every end (`final` or `receipt` leg) is numbered and remembered with the place of its final
//! record ([`Mark`]) until the CDR writer says the file holds it durably; then the shard
//! passes that place on for the writer's checkpoint. A restart writes the final legs of the
//! messages that ended after the checkpoint again (at least once, never none), and a segment
//! is not deleted while a final in it waits for its CDR.

use bytes::Bytes;

use super::ShardState;
use crate::cdr::{Cdr, Inline, Leg, BATCH};
use crate::flow::{Action, End, Target};
use crate::ids::MessageId;
use crate::smpp::tlv::tag;
use crate::smpp::{CommandStatus, MessageView, Pdu};
use crate::store::record::Kind;

/// A `final` or `receipt` leg on its way to the CDR file.
pub struct Mark {
    /// Its number on this shard (`Cdr::mark`).
    n: u64,
    /// The LSN of its final record (0: a message replay found ended): segments are not
    /// deleted past it until the leg is durable.
    lsn: u64,
    /// Its final record's chain and segment, and its offset: as the log counted it while
    /// `placed` is false (resolved to the file's offset once written).
    chain: usize,
    seq: u64,
    off: u64,
    placed: bool,
}

/// The module and id of a record's name (`smppserver/ID`, `smppclient/ID`).
fn split(name: &Bytes) -> (&'static str, Bytes) {
    match name.iter().position(|&b| b == b'/') {
        Some(i) => {
            let module = match &name[..i] {
                b"smppclient" => "smppclient",
                b"smppserver" => "smppserver",
                _ => "",
            };
            (module, name.slice(i + 1..))
        }
        None => ("", name.clone()),
    }
}

/// Parts of a long message: the UDH concatenation element, else the SAR TLVs; 1 otherwise.
fn segments(pdu: &Pdu, view: &MessageView<'_>) -> u16 {
    if view.esm_class.udhi() {
        if let Some(c) = crate::text::udh::Udh::parse(&view.user_data)
            .ok()
            .and_then(|(u, _)| u.concat())
        {
            return c.total as u16;
        }
    }
    pdu.tlvs
        .get_u8(tag::SAR_TOTAL_SEGMENTS)
        .map_or(1, |n| n.max(1) as u16)
}

/// What the leg of a message's end says.
struct EndLeg<'a> {
    id: MessageId,
    billid: MessageId,
    kind: Kind,
    origin: &'a Bytes,
    target: Bytes,
    end: End,
    status: CommandStatus,
    failures: u16,
    on_backup: bool,
    accepted_ms: u64,
    upstream_id: Option<&'a [u8]>,
}

impl ShardState {
    fn cdr(&self, c: Cdr) {
        if self.shared.cdr.is_none() {
            return;
        }
        let full = {
            let mut b = self.cdrs.borrow_mut();
            b.push(c);
            b.len() >= BATCH
        };
        if full {
            self.flush_cdrs();
        }
    }

    /// Hands what this shard gathered to the control shard.
    pub fn flush_cdrs(&self) {
        let Some(sink) = &self.shared.cdr else {
            return;
        };
        if self.cdrs.borrow().is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut *self.cdrs.borrow_mut(), sink.batch());
        if let Err(dropped) = sink.hand(batch) {
            // Counted and said by the writer. An end among them: the checkpoint stops before
            // it for the rest of this run (a restart writes it again).
            if let Some(first) = dropped.iter().find_map(|c| c.mark.map(|m| m.1)) {
                self.shared.cdr_hole[self.id].fetch_min(first, std::sync::atomic::Ordering::AcqRel);
            }
            sink.give_back(dropped);
        }
    }

    /// Numbers an end's leg and remembers where its final record lies.
    fn mark(&self, lsn: u64, chain: usize, seq: u64, off: u64, placed: bool) -> (usize, u64) {
        let n = self.cdr_next.get() + 1;
        self.cdr_next.set(n);
        self.cdr_marks.borrow_mut().push_back(Mark {
            n,
            lsn,
            chain,
            seq,
            off,
            placed,
        });
        (self.id, n)
    }

    /// Takes the ends the CDR file now holds durably off the list, and passes the place of
    /// the last one per chain to the writer's checkpoint. An end whose final record is not
    /// written yet holds those after it back (the checkpoint only moves over a prefix).
    pub fn advance_cdr_marks(&self) {
        let durable = self.shared.cdr_durable[self.id].load(std::sync::atomic::Ordering::Acquire);
        let hole = self.shared.cdr_hole[self.id].load(std::sync::atomic::Ordering::Acquire);
        let mut marks = self.cdr_marks.borrow_mut();
        let mut passed: Vec<(usize, u64, u64)> = Vec::new();
        while let Some(m) = marks.front_mut() {
            if m.n >= hole {
                // A lost end: nothing passes it in this run; the segments from its final on
                // are kept (see `cdrs_past`) so that a restart finds it.
                if self.cdr_frozen.get().is_none() {
                    self.cdr_frozen.set(Some(m.lsn));
                    log::warn!(
                        "shard {}: CDR records were lost (see above); the CDR checkpoint stops here until a restart, which writes the finals after it again; message log segments from here on are kept until then",
                        self.id
                    );
                }
                if m.n > durable {
                    break;
                }
                marks.pop_front();
                continue;
            }
            if m.n > durable {
                break;
            }
            if !m.placed {
                let file_off = match &self.msgs.log {
                    super::messages::StoreLog::Disk { log, .. } => log.file_offset(m.seq, m.off),
                    super::messages::StoreLog::Memory { .. } => None,
                };
                match file_off {
                    Some(f) => {
                        m.off = f;
                        m.placed = true;
                    }
                    None if matches!(self.msgs.log, super::messages::StoreLog::Memory { .. }) => {}
                    None => break,
                }
            }
            if let Some(m) = marks.pop_front() {
                match passed.iter_mut().find(|p| p.0 == m.chain) {
                    Some(p) => *p = (m.chain, m.seq, m.off),
                    None => passed.push((m.chain, m.seq, m.off)),
                }
            }
        }
        drop(marks);
        if passed.is_empty() {
            return;
        }
        let mut cp = self
            .shared
            .cdr_passed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (chain, seq, off) in passed {
            let e = cp.entry(chain).or_insert((seq, off));
            *e = (*e).max((seq, off));
        }
    }

    /// Whether a segment whose deletion waits for LSN `lsn` may go as far as CDRs are
    /// concerned: no end at or before it waits for the CDR file.
    pub fn cdrs_past(&self, lsn: u64) -> bool {
        self.cdr_frozen.get().is_none_or(|f| lsn < f)
            && self.cdr_marks.borrow().front().is_none_or(|m| m.lsn > lsn)
    }

    /// The `final` (or `receipt`) legs of the messages replay found ended after the CDR
    /// checkpoint: their CDRs may not have reached the file before the crash.
    pub fn cdr_replayed(&self, ended: Vec<crate::store::replay::Ended>) {
        if !self.cdrs_on() {
            return;
        }
        for e in ended {
            let (chain, seq) = crate::store::segment_of(e.at.seg);
            let m = &e.message;
            let end = End {
                state: crate::smpp::MessageState(e.state),
                tp_status: e.tp_status,
            };
            let mark = self.mark(0, chain, seq, e.at.off, true);
            let leg = self.end_leg(
                EndLeg {
                    id: m.id,
                    billid: m.billid,
                    kind: m.kind,
                    origin: &m.origin,
                    target: m.target.clone(),
                    end,
                    status: CommandStatus(e.status),
                    failures: m.failures,
                    on_backup: m.on_backup,
                    accepted_ms: m.accepted_ms,
                    upstream_id: m.forwarded.as_ref().map(|f| &f.upstream_id[..]),
                },
                super::messages::now_ms(),
            );
            self.cdr(Cdr {
                mark: Some(mark),
                ..leg
            });
        }
        self.flush_cdrs();
    }

    /// The leg of a message's end.
    fn end_leg(&self, e: EndLeg<'_>, now: u64) -> Cdr {
        let (leg, incoming, (module, system_id)) = match e.kind {
            // A receipt goes out to the originator: its leg names that account.
            Kind::Receipt => (Leg::Receipt, false, split(&e.target)),
            Kind::Submit | Kind::Mo => (Leg::Final, true, split(e.origin)),
        };
        Cdr {
            time_ms: now,
            billid: Some(e.billid),
            msgid: Some(e.id),
            leg: Some(leg),
            module,
            incoming,
            system_id,
            target: e.target,
            upstream_id: e.upstream_id.map_or_else(Inline::new, Inline::from_slice),
            status: Some(e.status),
            tp_status: Some(e.end.tp_status),
            message_state: Some(e.end.state),
            latency_ms: Some(now.saturating_sub(e.accepted_ms)),
            failures: e.failures,
            backup: e.on_backup,
            outcome: if e.end.delivered() || e.end == End::FORWARDED {
                "delivered"
            } else {
                "undelivered"
            },
            ..Cdr::default()
        }
    }

    pub fn cdrs_on(&self) -> bool {
        self.shared.cdr.is_some()
    }

    /// The message fields of a leg that brings a message in.
    fn incoming(&self, request: &Pdu, leg: Leg, module: &'static str, system_id: Bytes) -> Cdr {
        let view = request.message();
        let (caller, called) = view.as_ref().map_or_else(Default::default, |v| {
            (
                Inline::from_slice(v.source.addr.as_bytes()),
                Inline::from_slice(v.dest.addr.as_bytes()),
            )
        });
        Cdr {
            time_ms: super::messages::now_ms(),
            leg: Some(leg),
            module,
            incoming: true,
            system_id,
            caller,
            called,
            segments: view.as_ref().map_or(0, |v| segments(request, v)),
            data_coding: view.as_ref().map(|v| v.data_coding),
            ..Cdr::default()
        }
    }

    /// An ESME's submit (one destination), accepted as `id` (known to it as `billid`) or
    /// refused with `status`.
    #[allow(clippy::too_many_arguments)]
    pub fn cdr_submit(
        &self,
        request: &Pdu,
        id: Option<MessageId>,
        billid: Option<MessageId>,
        account: &crate::accounts::AccountState,
        target: Option<Target>,
        status: CommandStatus,
        peer: &Bytes,
        module: &'static str,
    ) {
        if !self.cdrs_on() {
            return;
        }
        let c = self.incoming(request, Leg::Submit, module, split(&account.target).1);
        self.cdr(Cdr {
            billid,
            msgid: id,
            target: target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t)),
            status: Some(status),
            address: Inline::from_slice(peer),
            outcome: if status.is_ok() {
                "accepted"
            } else {
                "refused"
            },
            ..c
        });
    }

    /// An MO from link `link_name`, logged as `id`.
    pub fn cdr_mo(&self, request: &Pdu, id: MessageId, link_name: &Bytes, target: Option<Target>) {
        if !self.cdrs_on() {
            return;
        }
        let (module, system_id) = split(link_name);
        let c = self.incoming(request, Leg::Mo, module, system_id);
        self.cdr(Cdr {
            billid: Some(id),
            msgid: Some(id),
            target: target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t)),
            status: Some(CommandStatus::ROK),
            outcome: "accepted",
            ..c
        });
    }

    /// The CDR leg of a flow action: an attempt's outcome (`Attempted`), or a message's end
    /// (`Ended`: the `final` leg, or for a receipt the `receipt` leg, whose billid is the
    /// message it reports on).
    pub fn cdr_of(&self, action: &Action) {
        if !self.cdrs_on() {
            return;
        }
        let now = super::messages::now_ms();
        let c = match action {
            // A receipt its ESME took: its `receipt` leg says so (one line per relayed
            // receipt, as for billing; attempts that failed keep their legs). The flow
            // still reports the attempt: the metrics count it.
            Action::Attempted {
                kind: Kind::Receipt,
                outcome: "delivered",
                ..
            } => return,
            Action::Attempted {
                id,
                billid,
                target,
                outcome,
                status,
                upstream_id,
                latency_ms,
                failures,
                on_backup,
                ..
            } => {
                let name = self.shared.target_bytes(*target);
                let (module, system_id) = split(&name);
                Cdr {
                    time_ms: now,
                    billid: Some(*billid),
                    msgid: Some(*id),
                    leg: Some(Leg::Attempt),
                    module,
                    incoming: false,
                    system_id,
                    target: name,
                    upstream_id: upstream_id
                        .as_deref()
                        .map_or_else(Inline::new, Inline::from_slice),
                    status: *status,
                    latency_ms: Some(*latency_ms),
                    failures: *failures,
                    backup: *on_backup,
                    outcome,
                    address: match target {
                        Target::Link(l) => self
                            .link(*l)
                            .map_or_else(Inline::new, |l| Inline::from_slice(&l.address.borrow())),
                        Target::Esme(_) => Inline::new(),
                        Target::Http(h) => self
                            .shared
                            .endpoints
                            .get(*h)
                            .map_or_else(Inline::new, |e| Inline::from_slice(&e.key)),
                    },
                    ..Cdr::default()
                }
            }
            Action::Ended {
                id,
                billid,
                kind,
                origin,
                target,
                end,
                status,
                failures,
                on_backup,
                accepted_ms,
                upstream_id,
                lsn,
                at,
            } => {
                let leg = self.end_leg(
                    EndLeg {
                        id: *id,
                        billid: *billid,
                        kind: *kind,
                        origin,
                        target: target.map_or_else(Bytes::new, |t| self.shared.target_bytes(t)),
                        end: *end,
                        status: *status,
                        failures: *failures,
                        on_backup: *on_backup,
                        accepted_ms: *accepted_ms,
                        upstream_id: upstream_id.as_deref(),
                    },
                    now,
                );
                let mark = at.on_disk().then(|| {
                    let (chain, seq) = crate::store::segment_of(at.seg);
                    self.mark(*lsn, chain, seq, at.off, false)
                });
                let mut leg = leg;
                leg.mark = mark;
                leg
            }
            Action::Send { .. } | Action::Load { .. } => return,
        };
        self.cdr(c);
    }
}
