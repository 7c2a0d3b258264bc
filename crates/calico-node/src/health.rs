//! Health, as Felix serves it: `GET /liveness` and `GET /readiness` on
//! 127.0.0.1:`FELIX_HEALTHPORT` (9099), 200 when good, 503 otherwise with
//! the reason in the body (served by [`crate::http`], as are the metrics). The probes ask the same answers of the control
//! socket ([`crate::control`]), which is always on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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

/// Serves `health` on `host:port` (see [`crate::http`] for the limits).
pub fn serve(health: Arc<Health>, host: &str, port: u16) -> std::io::Result<u16> {
    crate::http::serve(host, port, crate::http::Limits::default(), move |path| {
        let (code, body) = health.answer(path);
        (code, "text/plain; charset=utf-8", body)
    })
}

/// Serves Prometheus metrics on `host:port` (`/metrics`).
pub fn serve_metrics(
    metrics: Arc<crate::metrics::Metrics>,
    host: &str,
    port: u16,
) -> std::io::Result<u16> {
    crate::http::serve(
        host,
        port,
        crate::http::Limits::default(),
        move |path| match path {
            "/metrics" => (200, crate::metrics::CONTENT_TYPE, metrics.render()),
            _ => (404, "text/plain; charset=utf-8", "not found\n".into()),
        },
    )
}
