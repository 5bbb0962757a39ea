//! A small HTTP/1.1 server for tests: records every request (kept-alive connections too)
//! and answers each with the status a test's function picks, or never.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target as written (a path, or an absolute URL through a proxy).
    pub target: String,
    pub body: String,
    /// Which connection (in accept order) carried it.
    pub conn: usize,
}

/// What to answer: a status, or `None` to never answer.
pub type Answer = fn(&Seen, usize) -> Option<u16>;

pub struct HttpSink {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl HttpSink {
    /// `answer(request, how many requests with this target came before it)`.
    pub fn start(answer: Answer) -> HttpSink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut conn = 0;
            while !st2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        conn += 1;
                        let (s3, st3) = (s2.clone(), st2.clone());
                        let id = conn;
                        std::thread::spawn(move || serve(c, id, answer, &s3, &st3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpSink { addr, seen, stop }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests came (or `timeout`); returns what came.
    pub fn wait(&self, n: usize, timeout: Duration) -> Vec<Seen> {
        let t0 = Instant::now();
        loop {
            let s = self.seen();
            if s.len() >= n || t0.elapsed() > timeout {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut c: TcpStream,
    conn: usize,
    answer: Answer,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) {
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A whole request in the buffer?
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = req.parse(&buf) {
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0usize);
            if buf.len() >= head + len {
                let s = Seen {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    body: String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
                    conn,
                };
                let before = {
                    let mut all = seen.lock().unwrap();
                    let n = all.iter().filter(|x| x.target == s.target).count();
                    all.push(s.clone());
                    n
                };
                buf.drain(..head + len);
                match answer(&s, before) {
                    Some(status) => {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
                        );
                        if c.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    None => {
                        // Never answers: holds the connection until the test ends.
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        return;
                    }
                }
                continue;
            }
        }
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
