//! Text benchmarks on a 1000-character message: GSM 7-bit pack and unpack, UCS2 encode, and
//! segmentation (coding choice, counting, splitting, UDH). Run: `cargo bench --bench text`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smppgw::text::gsm7::{pack, unpack};
use smppgw::text::*;

fn gsm_1000() -> String {
    "The quick brown fox jumps over the lazy dog; {price}: 10€. "
        .chars()
        .cycle()
        .take(1000)
        .collect()
}

fn ucs2_1000() -> String {
    "Съешь же ещё этих мягких французских булок, да выпей чаю 😀 "
        .chars()
        .cycle()
        .take(1000)
        .collect()
}

fn text(c: &mut Criterion) {
    let gsm = gsm_1000();
    let ucs = ucs2_1000();
    let septets = encode(&gsm, Charset::Gsm7, Shift::DEFAULT, Replacement::Reject)
        .unwrap()
        .bytes;
    let mut packed = Vec::new();
    pack(&septets, 0, &mut packed);

    let mut g = c.benchmark_group("text_1000_chars");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("gsm7_encode_septets", |b| {
        b.iter(|| {
            encode(
                black_box(&gsm),
                Charset::Gsm7,
                Shift::DEFAULT,
                Replacement::Reject,
            )
        })
    });
    let mut out = Vec::with_capacity(2048);
    g.bench_function("gsm7_pack", |b| {
        b.iter(|| {
            out.clear();
            pack(black_box(&septets), 0, &mut out);
        })
    });
    g.bench_function("gsm7_unpack", |b| {
        b.iter(|| {
            out.clear();
            unpack(black_box(&packed), 0, None, &mut out);
        })
    });
    g.bench_function("gsm7_decode_septets", |b| {
        b.iter(|| decode(black_box(&septets), Charset::Gsm7, Shift::DEFAULT))
    });
    g.bench_function("ucs2_encode", |b| {
        b.iter(|| {
            encode(
                black_box(&ucs),
                Charset::Ucs2,
                Shift::DEFAULT,
                Replacement::Reject,
            )
        })
    });
    let opts = SegmentOptions::default();
    g.bench_function("segment_gsm7", |b| {
        b.iter(|| segment(black_box(&gsm), &opts))
    });
    g.bench_function("segment_ucs2", |b| {
        b.iter(|| segment(black_box(&ucs), &opts))
    });
    g.bench_function("plan_gsm7", |b| b.iter(|| plan(black_box(&gsm), &opts)));
    g.finish();
}

criterion_group!(benches, text);
criterion_main!(benches);
