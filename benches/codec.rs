//! Codec benchmarks: decode and encode of the PDUs that dominate a gateway's traffic, and
//! framing of a 64 KiB read buffer of mixed PDUs (what one large read hands the session).
//!
//! Inputs are the test fixtures (`tests/fixtures/pdus.hex`), so the bytes measured here are
//! the bytes the tests check. Run: `cargo bench --bench codec`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use smppgw::smpp::{Framer, Pdu};

fn cases() -> Vec<(&'static str, Bytes)> {
    vec![
        (
            "submit_sm_160_gsm_2tlv",
            common::fixture("submit_sm", "160 GSM"),
        ),
        (
            "deliver_sm_receipt",
            common::fixture("deliver_sm", "receipt"),
        ),
        ("enquire_link", common::fixture("enquire_link", "")),
    ]
}

/// 64 KiB of the fixtures repeated, cut at a PDU boundary.
pub fn mixed_64k() -> (Bytes, usize) {
    let all: Vec<Bytes> = common::fixtures().into_iter().map(|f| f.bytes).collect();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut n = 0;
    'fill: loop {
        for p in &all {
            if buf.len() + p.len() > 64 * 1024 {
                break 'fill;
            }
            buf.extend_from_slice(p);
            n += 1;
        }
    }
    (buf.freeze(), n)
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in cases() {
        // The decoded PDU is inspected in place (black_box of a reference), not moved out:
        // the gateway consumes PDUs where they are decoded.
        g.bench_function(name, |b| {
            b.iter(|| {
                let pdu = Pdu::decode(black_box(&frame));
                black_box(&pdu);
            })
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    for (name, frame) in cases() {
        let pdu = Pdu::decode(&frame).unwrap();
        let mut out = BytesMut::with_capacity(64 * 1024);
        g.bench_function(name, |b| {
            b.iter(|| {
                if out.len() > 60 * 1024 {
                    out.clear();
                }
                black_box(&pdu).encode(&mut out);
            })
        });
    }
    g.finish();
}

fn framing(c: &mut Criterion) {
    let (stream, n) = mixed_64k();
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(n as u64));
    let framer = Framer::default();
    g.bench_function("frame_and_decode_64k_mixed", |b| {
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
    g.finish();
}

criterion_group!(benches, decode, encode, framing);
criterion_main!(benches);
