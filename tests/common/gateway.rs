//! The `smppgw` binary as the tests run it: a configuration directory with free ports, a
//! self-signed certificate for the TLS listener, the log collected, SIGTERM to stop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port nothing listens on now, never handed out before in this test process: the kernel
/// may give the same ephemeral port to two binds in a row once the first socket is closed,
/// and a gateway configured with one port for two listeners refuses to start.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "smppgw-test-{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `cmd` with debug logging, its stderr collected into `log` line by line.
fn start_logged(mut cmd: Command, log: Arc<Mutex<String>>) -> Child {
    let mut child = cmd
        .env("SMPPGW_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smppgw");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = log.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    child
}

pub struct Gateway {
    child: Option<Child>,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub dir: PathBuf,
    pub cert_pem: String,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts the gateway with `general` lines in [general] and `regfile` as regfile.conf.
    pub fn start(general: &str, regfile: &str) -> Gateway {
        Gateway::start_with(general, "", regfile, &[])
    }

    /// As `start`, with `extra` appended to ysmpp.conf (client sections) and `files` (name,
    /// content) written to the configuration directory (CA certificates).
    pub fn start_with(
        general: &str,
        extra: &str,
        regfile: &str,
        files: &[(&str, &str)],
    ) -> Gateway {
        Gateway::start_env(general, extra, regfile, files, &[])
    }

    /// As `start_with`, with environment variables for the gateway's process only (test
    /// hooks; setting them in the test process would reach every test running beside it).
    pub fn start_env(
        general: &str,
        extra: &str,
        regfile: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = temp_dir("gw");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let cert_pem =
            smppgw::net::tls::self_signed_pem(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        std::fs::write(dir.join("certificate.pem"), &cert_pem).unwrap();
        std::fs::write(
            dir.join("ysmpp.conf"),
            format!(
                "[general]\nshards=2\nadmin=127.0.0.1:{}\n{general}\n[smpp-server]\nenable=yes\n\n[listenerserver plain]\naddr=127.0.0.1\nport={}\n\n[listenerserver tls]\naddr=127.0.0.1\nport={}\nsslcontext=test_ctx\n{extra}\n",
                free_port(),
                plain.port(),
                tls.port()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("regfile.conf"), regfile).unwrap();
        std::fs::write(
            dir.join("openssl.conf"),
            "[test_ctx]\ncertificate=certificate.pem\ndomains=localhost\n",
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smppgw"));
        cmd.arg("run").arg("--config").arg(&dir);
        cmd.envs(env.iter().copied());
        Gateway::spawn(cmd, plain, tls, dir, cert_pem)
    }

    /// Starts the gateway again on the same configuration directory (and so the same spool)
    /// and ports, killing it first if it runs. Used right after `kill`: a dead process's
    /// listening sockets may accept for a moment, and the gateway must start anyway.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smppgw"));
        cmd.arg("run").arg("--config").arg(&self.dir);
        self.log.lock().unwrap().push_str("---- restarted ----\n");
        self.child = Some(start_logged(cmd, self.log.clone()));
        assert!(
            self.wait_log_after(
                "---- restarted ----",
                "listener \"plain\" on",
                Duration::from_secs(20)
            ),
            "smppgw did not start again:\n{}",
            self.log()
        );
        // And it answers on the port (a start that dies after logging its listener says so
        // here, with its log, instead of as a refused connection later).
        let t0 = Instant::now();
        while TcpStream::connect(self.plain).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "smppgw logged its listener but does not accept:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until client links have bound `n` times in all (the `): bound` log lines).
    /// The admin endpoint's address (a free port picked at the start and kept across restarts:
    /// with `admin=127.0.0.1:0` a restarted gateway could take the port its listener had).
    pub fn admin(&self) -> SocketAddr {
        assert!(
            self.wait_log("admin endpoint on http://", Duration::from_secs(10)),
            "{}",
            self.log()
        );
        let log = self.log();
        let at =
            log.rfind("admin endpoint on http://").unwrap() + "admin endpoint on http://".len();
        log[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn wait_bound(&self, n: usize) {
        let t0 = Instant::now();
        while self.count_log("): bound") < n {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "link not bound {n} times:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log, after the last line containing `mark`, contains `needle`.
    pub fn wait_log_after(&self, mark: &str, needle: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            let log = self.log();
            let from = log.rfind(mark).unwrap_or(0);
            if log[from..].contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Starts `smppgw sim --listen` with extra arguments.
    pub fn sim(args: &[&str]) -> Gateway {
        Gateway::sim_on(free_port(), args)
    }

    /// Starts `smppgw sim` on a given port (to restart one where it was).
    pub fn sim_on(port: u16, args: &[&str]) -> Gateway {
        let dir = temp_dir("sim");
        let plain: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smppgw"));
        cmd.arg("sim")
            .arg("--listen")
            .arg(plain.to_string())
            .args(args);
        Gateway::spawn(cmd, plain, plain, dir, String::new())
    }

    /// Starts `smppgw` with no arguments: the embedded default on 127.0.0.1:2775 and :3550.
    pub fn embedded_default() -> Gateway {
        let dir = temp_dir("default");
        let cmd = Command::new(env!("CARGO_BIN_EXE_smppgw"));
        let plain = "127.0.0.1:2775".parse().unwrap();
        Gateway::spawn(
            cmd,
            plain,
            "127.0.0.1:3550".parse().unwrap(),
            dir,
            String::new(),
        )
    }

    fn spawn(
        cmd: Command,
        plain: SocketAddr,
        tls: SocketAddr,
        dir: PathBuf,
        cert_pem: String,
    ) -> Gateway {
        let log = Arc::new(Mutex::new(String::new()));
        let child = start_logged(cmd, log.clone());
        let gw = Gateway {
            child: Some(child),
            plain,
            tls,
            dir,
            cert_pem,
            log,
        };
        let t0 = Instant::now();
        while TcpStream::connect(plain).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "smppgw did not start listening:\n{}",
                gw.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        gw
    }

    /// Sets the gateway's file size limit (RLIMIT_FSIZE): a write past it fails with EFBIG, as a
    /// full disk fails with ENOSPC, and the gateway must survive both alike.
    pub fn set_fsize(&self, bytes: Option<u64>) {
        let pid = self.pid();
        let lim = libc::rlimit {
            rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: prlimit on our own child with a valid struct; the old limit is not read.
        let r =
            unsafe { libc::prlimit(pid as i32, libc::RLIMIT_FSIZE, &lim, std::ptr::null_mut()) };
        assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Resident memory of the gateway process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// How many lines of the log contain `needle`.
    pub fn count_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and the whole log.
    pub fn stop(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (status.code(), self.log())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
