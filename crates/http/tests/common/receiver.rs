//! A webhook receiver on loopback for tests: records every request (headers and body) and answers
//! with the status it is told to (e.g. 500 while "down"). Shared by the server and CLI tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub struct Receiver {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// How long each answer takes (ms): a slow receiver.
    delay: Arc<AtomicU64>,
    /// Statuses for the next requests, before `status` again.
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Every request, whatever its answer.
    pub attempts: Arc<AtomicUsize>,
}

impl Receiver {
    /// Listens on `port` (0: any free port).
    pub fn start(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let delay = Arc::new(AtomicU64::new(0));
        let script: Arc<Mutex<VecDeque<u16>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let answers = Answers {
            received: Arc::clone(&received),
            status: Arc::clone(&status),
            delay: Arc::clone(&delay),
            script: Arc::clone(&script),
            attempts: Arc::clone(&attempts),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let answers = answers.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &answers);
                });
            }
        });
        Receiver { port, received, status, delay, script, attempts }
    }

    /// The next requests get these statuses (429 and 503 with `Retry-After: 1`), then the usual one.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every answer takes this long from now on.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.delay.store(u64::try_from(delay.as_millis()).unwrap(), Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The status the next requests get.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Answers {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay: Arc<AtomicU64>,
    script: Arc<Mutex<VecDeque<u16>>>,
    attempts: Arc<AtomicUsize>,
}

fn handle(stream: std::net::TcpStream, answers: &Answers) -> std::io::Result<()> {
    let Answers { received, status, delay, script, attempts } = answers;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        std::thread::sleep(std::time::Duration::from_millis(delay.load(Ordering::SeqCst)));
        attempts.fetch_add(1, Ordering::SeqCst);
        let code = script.lock().unwrap().pop_front().unwrap_or_else(|| status.load(Ordering::SeqCst));
        if code == 200 {
            received.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned() });
        }
        let retry = if matches!(code, 429 | 503) { "Retry-After: 1\r\n" } else { "" };
        let mut out = stream.try_clone()?;
        write!(out, "HTTP/1.1 {code} X\r\n{retry}Content-Length: 2\r\nConnection: keep-alive\r\n\r\nok")?;
        out.flush()?;
    }
}

/// Checks a `Leadscore-Signature` header: `t=<secs>,v1=<hex hmac-sha256(secret, "t.body")>`.
pub fn signature_valid(secret: &str, header: &str, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(expected) = hex::decode(v1) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&expected).is_ok()
}
