//! Health, as Felix serves it: `GET /liveness` and `GET /readiness` on
//! 127.0.0.1:`FELIX_HEALTHPORT` (9099), 200 when good, 503 otherwise with
//! the reason in the body. The probes ask the same answers of the control
//! socket ([`crate::control`]), which is always on.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Felix's default health port.
pub const DEFAULT_PORT: u16 = 9099;

/// The agent's health, shared with the server thread.
#[derive(Debug, Default)]
pub struct Health {
    live: AtomicBool,
    ready: AtomicBool,
    detail: Mutex<String>,
    /// The BGP speaker, when it runs (`/bgp-liveness`, `/bgp-readiness`,
    /// `/bgp-status`).
    bgp: Mutex<Option<Arc<crate::bgp::speaker::Shared>>>,
}

impl Health {
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            live: AtomicBool::new(true),
            ready: AtomicBool::new(false),
            detail: Mutex::new("starting".into()),
            bgp: Mutex::new(None),
        })
    }

    /// Sets readiness and why.
    pub fn set_ready(&self, ready: bool, detail: impl Into<String>) {
        self.ready.store(ready, Ordering::SeqCst);
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail.into();
    }

    /// Reports the BGP speaker from now on.
    pub fn set_bgp(&self, shared: Arc<crate::bgp::speaker::Shared>) {
        *self.bgp.lock().unwrap_or_else(|p| p.into_inner()) = Some(shared);
    }

    fn answer_bgp(&self, path: &str) -> (u16, String) {
        let bgp = self.bgp.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(bgp) = bgp else {
            return (503, "the BGP speaker is not running\n".into());
        };
        match path {
            "/bgp-liveness" => (200, "live: BGP speaker running\n".into()),
            "/bgp-readiness" => match crate::bgp::ready(&bgp) {
                Ok(m) => (200, format!("ready: {m}\n")),
                Err(m) => (503, format!("not ready: {m}\n")),
            },
            _ => (200, crate::bgp::status_lines(&bgp)),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
    }

    /// The status code and body for a health path (`/liveness`, `/readiness`,
    /// `/bgp-liveness`, `/bgp-readiness`, `/bgp-status`).
    pub fn answer(&self, path: &str) -> (u16, String) {
        let detail = self
            .detail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (ok, what) = match path {
            "/liveness" => (self.live.load(Ordering::SeqCst), "live"),
            "/readiness" => (self.ready.load(Ordering::SeqCst), "ready"),
            "/bgp-liveness" | "/bgp-readiness" | "/bgp-status" => return self.answer_bgp(path),
            _ => return (404, "not found\n".into()),
        };
        if ok {
            (200, format!("{what}: {detail}\n"))
        } else {
            (503, format!("not {what}: {detail}\n"))
        }
    }
}

/// Serves `health` on `host:port` from a background thread.
pub fn serve(health: Arc<Health>, host: &str, port: u16) -> std::io::Result<u16> {
    serve_with(host, port, move |path| health.answer(path))
}

/// Serves Prometheus metrics on `host:port` (`/metrics`).
pub fn serve_metrics(
    metrics: Arc<crate::metrics::Metrics>,
    host: &str,
    port: u16,
) -> std::io::Result<u16> {
    serve_with(host, port, move |path| match path {
        "/metrics" => (200, metrics.render()),
        _ => (404, "not found\n".into()),
    })
}

/// A minimal HTTP/1.x server: `answer(path)` gives status and body.
fn serve_with(
    host: &str,
    port: u16,
    answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static,
) -> std::io::Result<u16> {
    let listener = TcpListener::bind((host, port))?;
    let port = listener.local_addr()?.port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let a = answer.clone();
            std::thread::spawn(move || handle(&*a, conn));
        }
    });
    Ok(port)
}

fn handle(answer: &dyn Fn(&str) -> (u16, String), mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(clone) = conn.try_clone() else { return };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Read the rest of the request: closing a socket with unread input
    // resets the connection, and the client could lose the answer.
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (code, body) = answer(&path);
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
