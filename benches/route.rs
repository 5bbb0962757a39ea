//! Route lookup on a table of 10,000 distinct-prefix rules behind the seed's parameter rules:
//! a cold decision (the compiled table, prefix index), a cached one (a shard's decision
//! cache), and the same table without the prefix index for scale. Targets: cold < 2 µs,
//! cached < 100 ns. Run: `cargo bench --bench route`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use smppgw::route::{Params, RouteCache, RouteTable, Vars};

const RULES: usize = 10_000;

/// The seed's parameter rules, then one `^+\?PREFIX=smppclient/...` rule per prefix (five or
/// six digits, none a prefix of another), then a catch-all.
fn table_text() -> String {
    let mut s = String::from(
        "[default]\n\
         ${sms_type}^status_report$=if ${submit_info}^HTTP=http://10.10.1.120/status?billid=${billid}&status=${sms_stat}\n\
         ${module}smppserver=;retries=10\n\
         ${module}smppclient=;retries=8\n",
    );
    for i in 0..RULES {
        s.push_str(&format!("^+\\?{}=smppclient/link{}\n", prefix(i), i % 16));
    }
    s.push_str(".*=smsc_map\n");
    s
}

fn prefix(i: usize) -> String {
    // 4400000..: spread over two lengths so the index has depth.
    if i % 2 == 0 {
        format!("44{:04}", i / 2)
    } else {
        format!("33{:05}", i * 7 % 100_000)
    }
}

fn messages() -> Vec<Params> {
    (0..1024)
        .map(|k| {
            let i = (k * 7919) % RULES;
            let mut p = Params::default();
            p.set("called", &format!("{}{:04}", prefix(i), k));
            p.set("caller", "15551234");
            p.set("module", "smppserver");
            p.set("submit_info", "SMPP");
            p.set("sms_type", "sms");
            p
        })
        .collect()
}

fn route(c: &mut Criterion) {
    let table = RouteTable::load("bench.conf", &table_text(), 1).expect("bench table compiles");
    let msgs = messages();
    let mut vars = Vars::new(&table, 1);
    // Sanity: the index and the full scan agree, and every message is routed to its rule.
    for (i, p) in msgs.iter().enumerate() {
        let d = table.route(p, &mut vars, false);
        assert!(d.target.starts_with("smppclient/link"), "{:?}", d.target);
        if i % 16 == 0 {
            assert_eq!(d.target, table.route(p, &mut vars, true).target);
        }
    }

    let mut g = c.benchmark_group("route_10000_prefix_rules");
    let mut k = 0usize;
    g.bench_function("cold_decision", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            black_box(table.route(black_box(&msgs[k]), &mut vars, false))
        })
    });
    let mut cache = RouteCache::new(4096);
    for p in &msgs {
        cache.route(&table, p, &mut vars);
    }
    g.bench_function("cached_decision", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            black_box(cache.route(&table, black_box(&msgs[k]), &mut vars).handled)
        })
    });
    g.bench_function("full_scan_explain_mode", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            black_box(table.route(black_box(&msgs[k]), &mut vars, true))
        })
    });
    g.finish();
    assert!(
        cache.stats.misses == 1024,
        "the cached benchmark missed: {:?}",
        cache.stats
    );

    c.bench_function("route_table_compile_10000_rules", |b| {
        let text = table_text();
        b.iter(|| RouteTable::load("bench.conf", black_box(&text), 2).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = route
}
criterion_main!(benches);
