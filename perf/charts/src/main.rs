//! `perf-charts DIR`: reads the JSON that perf/run.sh wrote into DIR (compare.json,
//! e2e.json, scenarios.json, httpbench.json, whichever are there) and draws each as an SVG
//! beside it: bars per case, smppgw beside the peer measured in the same run.

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

/// One bar group: a case, and each server's value in it.
struct Group {
    case: String,
    values: Vec<(String, f64)>,
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let dir = Path::new(&dir);
    let mut drawn = 0;
    if let Some(v) = read(dir, "compare.json") {
        let (tput, cpu) = compare(&v);
        drawn += draw(
            dir,
            "compare-throughput.svg",
            "Terminating server: msg/s (higher is better)",
            "msg/s",
            &tput,
        );
        drawn += draw(
            dir,
            "compare-cpu.svg",
            "Terminating server: CPU seconds per million messages (lower is better)",
            "CPU s / M",
            &cpu,
        );
    }
    if let Some(v) = read(dir, "e2e.json") {
        drawn += draw(
            dir,
            "e2e.svg",
            "End to end, receipts on: msg/s by sync mode",
            "msg/s",
            &e2e(&v),
        );
    }
    if let Some(v) = read(dir, "httpbench.json") {
        drawn += draw(
            dir,
            "http.svg",
            "HTTP submits: accepted per second (smppgw, Kannel)",
            "submits/s",
            &http(&v),
        );
    }
    if let Some(v) = read(dir, "scenarios.json") {
        drawn += draw(
            dir,
            "scenarios.svg",
            "Other scenarios: msg/s",
            "msg/s",
            &scenarios(&v),
        );
    }
    println!("{drawn} charts in {}", dir.display());
}

fn read(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    // Python's json writes NaN for figures a case has not (perf_esme's latencies).
    let text = text
        .replace("NaN", "null")
        .replace("-Infinity", "null")
        .replace("Infinity", "null");
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("{name}: {e}");
            None
        }
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64()
}

fn compare(v: &Value) -> (Vec<Group>, Vec<Group>) {
    let (mut tput, mut cpu) = (Vec::new(), Vec::new());
    for s in v["servers"].as_array().into_iter().flatten() {
        let case = format!(
            "{} {}b{}",
            s["shape"].as_str().unwrap_or("?"),
            s["binds"],
            if s["receipts"].as_bool() == Some(true) {
                " +dlr"
            } else {
                ""
            }
        );
        let (mut t, mut c) = (Vec::new(), Vec::new());
        if let Some(m) = s["median"].as_object() {
            for (server, r) in m {
                if let Some(x) = num(r, "msg_per_s") {
                    t.push((server.clone(), x));
                }
                if let Some(x) = num(r, "cpu_s_per_million") {
                    c.push((server.clone(), x));
                }
            }
        }
        tput.push(Group {
            case: case.clone(),
            values: t,
        });
        cpu.push(Group { case, values: c });
    }
    (tput, cpu)
}

fn e2e(v: &Value) -> Vec<Group> {
    let mut values = Vec::new();
    for mode in ["batch", "none"] {
        let runs: Vec<f64> = v["runs"][mode]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| num(r, "msg_per_s"))
            .collect();
        if !runs.is_empty() {
            values.push((format!("sync={mode}"), median(runs)));
        }
    }
    vec![Group {
        case: "smpp-load -> smppgw -> sim".into(),
        values,
    }]
}

fn http(v: &Value) -> Vec<Group> {
    let mut groups = Vec::new();
    for (api, key) in [("JSON", "json"), ("sendsms", "kannel")] {
        let mut values = Vec::new();
        if let Some(x) = v["smppgw"].get(key).and_then(|r| num(r, "ok_rps")) {
            values.push(("smppgw".to_string(), x));
        }
        if key == "kannel" {
            if let Some(x) = v["kannel"].get("kannel").and_then(|r| num(r, "ok_rps")) {
                values.push(("Kannel".to_string(), x));
            }
        }
        groups.push(Group {
            case: api.into(),
            values,
        });
    }
    groups
}

fn scenarios(v: &Value) -> Vec<Group> {
    let mut groups = Vec::new();
    if let Some(t) = v.get("tls") {
        let mut values = Vec::new();
        for k in ["plain", "tls"] {
            if let Some(x) = t.get(k).and_then(|r| num(r, "msg_per_s")) {
                values.push((k.to_string(), x));
            }
        }
        groups.push(Group {
            case: "TLS vs plain, 4 binds".into(),
            values,
        });
    }
    if let Some(l) = v.get("loadgen") {
        let mut values = Vec::new();
        for k in ["batched", "each"] {
            if let Some(x) = l.get(k).and_then(|r| num(r, "msg_per_s")) {
                values.push((k.to_string(), x));
            }
        }
        groups.push(Group {
            case: "traffic shape, 4 binds".into(),
            values,
        });
    }
    groups
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Grouped bars, one colour per server; returns 1 if drawn.
fn draw(dir: &Path, name: &str, title: &str, unit: &str, groups: &[Group]) -> usize {
    let groups: Vec<&Group> = groups.iter().filter(|g| !g.values.is_empty()).collect();
    if groups.is_empty() {
        return 0;
    }
    let mut servers: Vec<String> = Vec::new();
    for g in &groups {
        for (s, _) in &g.values {
            if !servers.contains(s) {
                servers.push(s.clone());
            }
        }
    }
    let max = groups
        .iter()
        .flat_map(|g| g.values.iter().map(|(_, x)| *x))
        .fold(0.0f64, f64::max)
        * 1.15;
    let width = 160 + 110 * groups.len() as u32 * servers.len().max(1) as u32;
    let path = dir.join(name);
    let root = SVGBackend::new(&path, (width.max(640), 420)).into_drawing_area();
    if root.fill(&WHITE).is_err() {
        return 0;
    }
    let n = groups.len() * (servers.len() + 1);
    let chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0..n, 0.0..max.max(1.0));
    let mut chart = match chart {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return 0;
        }
    };
    let labels: Vec<String> = groups.iter().map(|g| g.case.clone()).collect();
    let per = servers.len() + 1;
    let _ = chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(unit)
        .x_labels(n)
        .x_label_formatter(&|x| {
            if x % per == per / 2 {
                labels.get(x / per).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw();
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
    ];
    for (si, server) in servers.iter().enumerate() {
        let colour = palette[si % palette.len()];
        let bars = groups.iter().enumerate().filter_map(|(gi, g)| {
            let x = g.values.iter().find(|(s, _)| s == server)?.1;
            let at = gi * per + si;
            Some(Rectangle::new([(at, 0.0), (at + 1, x)], colour.filled()))
        });
        if let Ok(series) = chart.draw_series(bars) {
            series.label(server.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
            });
        }
    }
    let _ = chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw();
    if let Err(e) = root.present() {
        eprintln!("{name}: {e}");
        return 0;
    }
    1
}
