//! A webhook receiver on loopback for tests: records every request (headers and body) and answers
//! with the status it is told to (e.g. 500 while "down"). Shared by the server and CLI tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
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
}

impl Receiver {
    /// Listens on `port` (0: any free port).
    pub fn start(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (Arc::clone(&received), Arc::clone(&status));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (r, s) = (Arc::clone(&r), Arc::clone(&s));
                std::thread::spawn(move || {
                    let _ = handle(stream, &r, &s);
                });
            }
        });
        Receiver { port, received, status }
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

fn handle(stream: std::net::TcpStream, received: &Mutex<Vec<Received>>, status: &AtomicU16) -> std::io::Result<()> {
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
        let code = status.load(Ordering::SeqCst);
        if code == 200 {
            received.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned() });
        }
        let mut out = stream.try_clone()?;
        write!(out, "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")?;
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
