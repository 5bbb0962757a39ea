//! What an operator sees at start: `smppgw check`, and clear errors when the machine cannot
//! run glommio (io_uring blocked, locked-memory limit too low) instead of its panics.

mod common;

use std::process::Command;

use common::gateway::{free_port, temp_dir};

fn config_dir(ysmpp_extra: &str) -> std::path::PathBuf {
    let d = temp_dir("startup");
    std::fs::write(
        d.join("ysmpp.conf"),
        format!(
            "[general]\nshards=1\n{ysmpp_extra}\n[listenerserver a]\naddr=127.0.0.1\nport={}\n",
            free_port()
        ),
    )
    .unwrap();
    std::fs::write(d.join("regfile.conf"), "[demo]\npassword=demo\n").unwrap();
    d
}

fn smppgw() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smppgw"))
}

#[test]
fn check_prints_a_summary_or_every_error_with_its_line() {
    let d = config_dir("");
    let out = smppgw()
        .args(["check", "--config"])
        .arg(&d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("configuration is valid"), "{text}");
    assert!(text.contains("listener \"a\": 127.0.0.1:"), "{text}");
    assert!(text.contains("demo: max binds unlimited"), "{text}");

    let bad = config_dir("window=0\nresponse_timeout=soon");
    let out = smppgw()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("2 configuration error(s)"), "{err}");
    assert!(
        err.contains("ysmpp.conf:3: window: \"0\" must be greater than 0"),
        "{err}"
    );
    assert!(err.contains("ysmpp.conf:4: response_timeout:"), "{err}");

    let out = smppgw()
        .args(["run", "--config", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir: not a directory"));
}

#[test]
fn a_missing_certificate_is_named() {
    let d = config_dir("");
    let ysmpp = std::fs::read_to_string(d.join("ysmpp.conf")).unwrap() + "sslcontext=ctx\n";
    std::fs::write(d.join("ysmpp.conf"), ysmpp).unwrap();
    std::fs::write(d.join("openssl.conf"), "[ctx]\ncertificate=missing.pem\n").unwrap();
    let out = smppgw()
        .args(["check", "--config"])
        .arg(&d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("openssl.conf:1: certificate: cannot read"),
        "{err}"
    );
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn blocked_io_uring_is_explained_not_a_panic() {
    let bin = temp_dir("no-uring").join("no_uring");
    let cc = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/no_uring.c"
        ))
        .output()
        .expect("a C compiler (cc) is needed for this test, as for building glommio");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let d = config_dir("");
    let out = Command::new(&bin)
        .arg(env!("CARGO_BIN_EXE_smppgw"))
        .args(["run", "--config"])
        .arg(&d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("io_uring unavailable: io_uring is not permitted"),
        "{err}"
    );
    assert!(err.contains("seccomp"), "says what to fix: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_locked_memory_limit_too_low_is_explained() {
    let d = config_dir("");
    // Lower the hard limit in a shell, then start the gateway under it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -l 64 && exec {} run --config {}",
            env!("CARGO_BIN_EXE_smppgw"),
            d.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the locked-memory limit is 64 KiB"), "{err}");
    assert!(err.contains("ulimit -l"), "says how to fix it: {err}");
}

#[test]
fn a_second_gateway_on_the_same_port_refuses_to_start() {
    let first = common::gateway::Gateway::start("", "[demo]\npassword=demo\n");
    let d = temp_dir("second");
    std::fs::write(
        d.join("ysmpp.conf"),
        format!(
            "[listenerserver a]\naddr=127.0.0.1\nport={}\n",
            first.plain.port()
        ),
    )
    .unwrap();
    let out = smppgw().args(["run", "--config"]).arg(&d).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("something already listens on"), "{err}");
}

#[test]
fn shards_auto_counts_and_pins_within_the_cpus_the_process_is_given() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("one CPU: nothing to restrict");
        return;
    }
    let d = temp_dir("pinned");
    std::fs::write(
        d.join("ysmpp.conf"),
        format!(
            "[general]\nshards=auto\nadmin=off\n[listenerserver a]\naddr=127.0.0.1\nport={}\n",
            free_port()
        ),
    )
    .unwrap();
    std::fs::write(d.join("regfile.conf"), "[demo]\npassword=demo\n").unwrap();
    // The last CPU only, as `taskset -c N` gives it.
    let last = (cpus - 1).to_string();
    let log = d.join("log");
    let mut child = Command::new("taskset")
        .args(["-c", &last])
        .arg(env!("CARGO_BIN_EXE_smppgw"))
        .args(["run", "--config"])
        .arg(&d)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("taskset (util-linux)");
    let t0 = std::time::Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listener \"a\"") || t0.elapsed() > std::time::Duration::from_secs(20) {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Every thread of the gateway runs within the given CPU, the shard included.
    let mut shard_threads = 0;
    for t in std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap() {
        let t = t.unwrap().path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        assert_eq!(allowed, last, "{}: {allowed}\n{text}", comm.trim());
        shard_threads += usize::from(comm.starts_with("smppgw-"));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(shard_threads >= 1, "{text}");
    assert!(text.contains("1 shards on 1 cores"), "{text}");
    assert!(
        text.contains(&format!("shards pinned within CPUs {last}")),
        "{text}"
    );
}
