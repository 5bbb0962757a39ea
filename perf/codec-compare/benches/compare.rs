//! The same bytes through smppgw's codec and through `smpp34` 1.5.1, side by side.
//!
//! Each group holds one case with two functions, `smppgw` and `smpp34`; `run.sh` reads
//! criterion's estimates and prints the ratios. The inputs are smppgw's test fixtures.
//! Encoding is measured two ways for smppgw: into a reused output buffer (how the gateway
//! encodes: all responses of a read go into one buffer and one write) and into a fresh buffer
//! per PDU (the same shape as smpp34's `encode(self) -> Vec<u8>`).

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use smppgw::smpp::{Framer, Pdu};

fn submit() -> Bytes {
    common::fixture("submit_sm", "160 GSM")
}
fn receipt() -> Bytes {
    common::fixture("deliver_sm", "receipt")
}
fn enquire() -> Bytes {
    common::fixture("enquire_link", "")
}

/// A 64 KiB stream of the PDU types both codecs decode.
fn mixed_64k() -> (Bytes, usize) {
    let kinds = [
        submit(),
        common::fixture("submit_sm_resp", ""),
        receipt(),
        common::fixture("deliver_sm_resp", ""),
        enquire(),
        common::fixture("submit_sm", "UDH"),
    ];
    let mut buf = BytesMut::new();
    let mut n = 0;
    'fill: loop {
        for k in &kinds {
            if buf.len() + k.len() > 64 * 1024 {
                break 'fill;
            }
            buf.extend_from_slice(k);
            n += 1;
        }
    }
    (buf.freeze(), n)
}

mod theirs {
    use smpp34::{deliver_sm, deliver_sm_resp, enquire_link, submit_sm, submit_sm_resp, CommandHeader};

    pub enum Any {
        Submit(submit_sm),
        SubmitResp(submit_sm_resp),
        Deliver(deliver_sm),
        DeliverResp(deliver_sm_resp),
        Enquire(enquire_link),
    }

    pub fn decode(pdu: &[u8]) -> Any {
        let h = CommandHeader::decode(pdu).expect("header");
        match h.command_id {
            0x0000_0004 => Any::Submit(submit_sm::decode(h, pdu).expect("submit_sm")),
            0x8000_0004 => Any::SubmitResp(submit_sm_resp::decode(h, pdu).expect("submit_sm_resp")),
            0x0000_0005 => Any::Deliver(deliver_sm::decode(h, pdu).expect("deliver_sm")),
            0x8000_0005 => Any::DeliverResp(deliver_sm_resp::decode(h, pdu).expect("deliver_sm_resp")),
            0x0000_0015 => Any::Enquire(enquire_link::decode(h, pdu).expect("enquire_link")),
            other => panic!("unexpected {other:#x}"),
        }
    }

    pub fn encode(p: Any) -> Vec<u8> {
        match p {
            Any::Submit(x) => x.encode(),
            Any::SubmitResp(x) => x.encode(),
            Any::Deliver(x) => x.encode(),
            Any::DeliverResp(x) => x.encode(),
            Any::Enquire(x) => x.encode(),
        }
    }

    /// smpp34 has no public framer; this is the minimal splitter its own read loop uses.
    pub fn frame_and_decode(mut buf: &[u8]) -> usize {
        let mut n = 0;
        while buf.len() >= 16 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < len {
                break;
            }
            let (pdu, rest) = buf.split_at(len);
            let decoded = decode(pdu);
            std::hint::black_box(&decoded);
            buf = rest;
            n += 1;
        }
        n
    }
}

fn decode(c: &mut Criterion) {
    for (name, frame) in [("submit_sm", submit()), ("deliver_sm_receipt", receipt()), ("enquire_link", enquire())] {
        let mut g = c.benchmark_group(format!("decode_{name}"));
        // Both decoders' results are inspected in place (black_box of a reference) and
        // dropped, so neither pays for moving its result out of the loop.
        g.bench_function("smppgw", |b| {
            b.iter(|| {
                let pdu = Pdu::decode(black_box(&frame));
                black_box(&pdu);
            })
        });
        g.bench_function("smpp34", |b| {
            b.iter(|| {
                let pdu = theirs::decode(black_box(&frame[..]));
                black_box(&pdu);
            })
        });
        g.finish();
    }
}

fn encode(c: &mut Criterion) {
    for (name, frame) in [("submit_sm", submit()), ("deliver_sm_receipt", receipt()), ("enquire_link", enquire())] {
        let ours = Pdu::decode(&frame).unwrap();
        // Both must produce the fixture's bytes, or the comparison means nothing.
        assert_eq!(ours.to_bytes(), frame, "{name}: smppgw re-encode");
        assert_eq!(theirs::encode(theirs::decode(&frame)), frame.to_vec(), "{name}: smpp34 re-encode");
        let mut g = c.benchmark_group(format!("encode_{name}"));
        let mut out = BytesMut::with_capacity(64 * 1024);
        g.bench_function("smppgw", |b| {
            b.iter(|| {
                if out.len() > 60 * 1024 {
                    out.clear();
                }
                black_box(&ours).encode(&mut out);
            })
        });
        g.bench_function("smppgw_fresh_buffer", |b| b.iter(|| black_box(&ours).to_bytes()));
        g.bench_function("smpp34", |b| {
            b.iter_batched(|| theirs::decode(&frame), |p| theirs::encode(black_box(p)), BatchSize::SmallInput)
        });
        g.finish();
    }
}

fn framing(c: &mut Criterion) {
    let (stream, n) = mixed_64k();
    let mut g = c.benchmark_group("framing_64k_mixed");
    let framer = Framer::default();
    g.bench_function("smppgw", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut count = 0;
                while let Some(f) = framer.next_frame(buf).unwrap() {
                    let pdu = Pdu::decode(&f);
                    black_box(&pdu);
                    count += 1;
                }
                assert_eq!(count, n);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("smpp34", |b| {
        b.iter_batched_ref(
            || stream.to_vec(),
            |buf| assert_eq!(theirs::frame_and_decode(buf), n),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decode, encode, framing);
criterion_main!(benches);
