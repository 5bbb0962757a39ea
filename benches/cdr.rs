//! CDR lines as the control shard renders them: a typical `attempt` leg and `final` leg with
//! the default template (every column), into a reused buffer. What one message's CDRs cost
//! the writer is about four of these. Run: `cargo bench --bench cdr`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use smppgw::cdr::{Cdr, Inline, Leg, Template};
use smppgw::ids::MessageId;
use smppgw::smpp::{CommandStatus, MessageState};

fn attempt(n: u64) -> Cdr {
    Cdr {
        time_ms: 1_764_657_060_123 + n,
        billid: Some(MessageId::new(1_764_657_060, 1, n)),
        leg: Some(Leg::Attempt),
        module: "smppclient",
        incoming: false,
        system_id: Bytes::from_static(b"up"),
        caller: Inline::from_slice(b"447700900123"),
        called: Inline::from_slice(b"31612345678"),
        target: Bytes::from_static(b"smppclient/up"),
        msgid: Some(MessageId::new(1_764_657_060, 1, n)),
        upstream_id: Inline::from_slice(b"0000A1B2C3D4"),
        segments: 1,
        data_coding: Some(0),
        status: Some(CommandStatus(0)),
        tp_status: None,
        message_state: None,
        address: Inline::from_slice(b"127.0.0.1:2775"),
        latency_ms: Some(3),
        failures: 0,
        backup: false,
        outcome: "accepted",
        mark: None,
    }
}

fn final_leg(n: u64) -> Cdr {
    Cdr {
        leg: Some(Leg::Final),
        tp_status: Some(0),
        message_state: Some(MessageState::DELIVERED),
        latency_ms: Some(41),
        outcome: "",
        mark: Some((1, n)),
        ..attempt(n)
    }
}

fn render(c: &mut Criterion) {
    let template = Template::default();
    let recs: Vec<Cdr> = (0..1024)
        .map(|n| if n % 2 == 0 { attempt(n) } else { final_leg(n) })
        .collect();
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("cdr");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function(
        "render 1024 lines (attempt, final), default template",
        |b| {
            b.iter(|| {
                out.clear();
                for r in &recs {
                    template.render(black_box(r), "10.0.0.1", &mut out);
                }
                black_box(out.len())
            })
        },
    );
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
