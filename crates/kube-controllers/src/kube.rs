//! The Kubernetes API surface the controllers use (list pages and watch
//! streams), as a trait, and a small HTTP/1.1 adapter over `std::net`
//! (plain `http://` endpoints; TLS and credentials are not in this adapter).
//!
//! Watch streams are read line by line (one JSON event per line), with
//! chunked transfer encoding decoded; a `410` status on a list or watch, or
//! an `ERROR` event whose Status code is 410, is [`KubeError::Gone`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::lease::{self, Lease};
use crate::reflector::{Event, Key};

/// Errors of the API.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// 410 Gone: the resourceVersion is too old.
    #[error("resource version too old (410 Gone)")]
    Gone,
    /// Any other failure.
    #[error("kubernetes api: {0}")]
    Other(String),
}

/// List and watch of one collection path (e.g. `/api/v1/namespaces`).
pub trait KubeApi: Send + Sync {
    /// One list page (`limit`, `continue`) as an [`Event::Page`].
    fn list(&self, path: &str, limit: usize, cont: Option<&str>) -> Result<Event, KubeError>;
    /// A watch from `resource_version` with bookmarks; events until the
    /// stream ends.
    fn watch(
        &self,
        path: &str,
        resource_version: &str,
    ) -> Result<Box<dyn Iterator<Item = Event> + Send>, KubeError>;
}

/// The key of an API object: (namespace, name).
pub fn object_key(o: &serde_json::Value) -> Key {
    let s = |f: &str| {
        o.pointer(&format!("/metadata/{f}"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

/// Plain-HTTP adapter (`host:port`).
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// `host:port` of the API server.
    pub addr: String,
}

fn other(e: impl std::fmt::Display) -> KubeError {
    KubeError::Other(e.to_string())
}

impl HttpApi {
    fn get(&self, target: &str) -> Result<(u16, bool, BufReader<TcpStream>), KubeError> {
        self.request("GET", target, None)
    }

    fn request(
        &self,
        method: &str,
        target: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, bool, BufReader<TcpStream>), KubeError> {
        let mut s = TcpStream::connect(&self.addr).map_err(other)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(other)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(other)?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).map_err(other)?;
        let code = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| other(format!("bad status line {line:?}")))?;
        let mut chunked = false;
        loop {
            line.clear();
            r.read_line(&mut line).map_err(other)?;
            if line.trim().is_empty() {
                break;
            }
            let l = line.to_ascii_lowercase();
            if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                chunked = true;
            }
        }
        Ok((code, chunked, r))
    }
}

/// Reads a body, chunked or to the end, as lines.
struct Body {
    r: BufReader<TcpStream>,
    chunked: bool,
    buf: Vec<u8>,
}

impl Body {
    fn fill(&mut self) -> bool {
        if !self.chunked {
            let mut b = [0u8; 8192];
            return match self.r.read(&mut b) {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    self.buf.extend_from_slice(&b[..n]);
                    true
                }
            };
        }
        let mut size = String::new();
        if self.r.read_line(&mut size).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        let mut chunk = vec![0u8; n + 2];
        if self.r.read_exact(&mut chunk).is_err() {
            return false;
        }
        chunk.truncate(n);
        self.buf.extend_from_slice(&chunk);
        true
    }

    fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                let mut l = std::mem::replace(&mut self.buf, rest);
                l.pop();
                return Some(l);
            }
            if !self.fill() {
                return (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf));
            }
        }
    }

    fn all(mut self) -> Vec<u8> {
        while self.fill() {}
        self.buf
    }
}

fn rv_of(v: &serde_json::Value) -> String {
    v.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Decodes one watch event line.
pub fn decode_watch_event(line: &[u8]) -> Event {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
        return Event::Failed;
    };
    let obj = v.get("object").cloned().unwrap_or_default();
    match v.get("type").and_then(|t| t.as_str()) {
        Some("ADDED") | Some("MODIFIED") => {
            let rv = rv_of(&obj);
            Event::Upsert(object_key(&obj), obj, rv)
        }
        Some("DELETED") => Event::Delete(object_key(&obj), rv_of(&obj)),
        Some("BOOKMARK") => Event::Bookmark(rv_of(&obj)),
        Some("ERROR") if obj.get("code").and_then(|c| c.as_u64()) == Some(410) => Event::Gone,
        _ => Event::Failed,
    }
}

impl KubeApi for HttpApi {
    fn list(&self, path: &str, limit: usize, cont: Option<&str>) -> Result<Event, KubeError> {
        let mut target = format!("{path}?limit={limit}");
        if let Some(c) = cont {
            target += &format!("&continue={c}");
        }
        let (code, chunked, r) = self.get(&target)?;
        let body = Body {
            r,
            chunked,
            buf: Vec::new(),
        }
        .all();
        if code == 410 {
            return Err(KubeError::Gone);
        }
        if code != 200 {
            return Err(other(format!("list {path}: status {code}")));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(other)?;
        let items = v
            .get("items")
            .and_then(|i| i.as_array())
            .map(|a| a.iter().map(|o| (object_key(o), o.clone())).collect())
            .unwrap_or_default();
        let next = v
            .pointer("/metadata/continue")
            .and_then(|c| c.as_str())
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok(Event::Page {
            items,
            resource_version: rv_of(&v),
            next,
        })
    }

    fn watch(
        &self,
        path: &str,
        resource_version: &str,
    ) -> Result<Box<dyn Iterator<Item = Event> + Send>, KubeError> {
        let target =
            format!("{path}?watch=1&resourceVersion={resource_version}&allowWatchBookmarks=true");
        let (code, chunked, r) = self.get(&target)?;
        if code == 410 {
            return Err(KubeError::Gone);
        }
        if code != 200 {
            return Err(other(format!("watch {path}: status {code}")));
        }
        let mut body = Body {
            r,
            chunked,
            buf: Vec::new(),
        };
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                let l = body.line()?;
                if !l.iter().all(u8::is_ascii_whitespace) {
                    return Some(decode_watch_event(&l));
                }
            }
        })))
    }
}

/// Lease objects for leader election.
pub trait LeaseApi {
    /// The Lease `ns/name`, if it exists.
    fn get_lease(&self, ns: &str, name: &str) -> Result<Option<Lease>, KubeError>;
    /// Creates (no resourceVersion) or replaces (at its resourceVersion) the
    /// Lease; `false` on 409 Conflict (someone else wrote first).
    fn write_lease(&self, ns: &str, name: &str, l: &Lease) -> Result<bool, KubeError>;
}

fn lease_path(ns: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")
}

impl LeaseApi for HttpApi {
    fn get_lease(&self, ns: &str, name: &str) -> Result<Option<Lease>, KubeError> {
        let (code, chunked, r) = self.get(&format!("{}/{name}", lease_path(ns)))?;
        let body = Body {
            r,
            chunked,
            buf: Vec::new(),
        }
        .all();
        match code {
            404 => Ok(None),
            200 => {
                let v: serde_json::Value = serde_json::from_slice(&body).map_err(other)?;
                Ok(Some(lease::from_json(&v)))
            }
            c => Err(other(format!("get lease {ns}/{name}: status {c}"))),
        }
    }

    fn write_lease(&self, ns: &str, name: &str, l: &Lease) -> Result<bool, KubeError> {
        let v = lease::to_json(ns, name, l);
        let (method, target) = if l.resource_version.is_empty() {
            ("POST", lease_path(ns))
        } else {
            ("PUT", format!("{}/{name}", lease_path(ns)))
        };
        let (code, chunked, r) = self.request(method, &target, Some(&v))?;
        let _ = Body {
            r,
            chunked,
            buf: Vec::new(),
        }
        .all();
        match code {
            200 | 201 => Ok(true),
            409 => Ok(false),
            c => Err(other(format!("write lease {ns}/{name}: status {c}"))),
        }
    }
}

/// One election round for replica `me` at `now` (seconds since the epoch):
/// read the Lease, decide, write with compare-and-swap. True when `me`
/// holds the lease after this round.
pub fn elect(
    api: &dyn LeaseApi,
    ns: &str,
    name: &str,
    me: &str,
    duration: Duration,
    now: u64,
) -> Result<bool, KubeError> {
    let read = api.get_lease(ns, name)?;
    match lease::decide(me, read.as_ref(), now, duration) {
        lease::Decision::Write(l) => api.write_lease(ns, name, &l),
        lease::Decision::Follow { .. } => Ok(false),
    }
}

/// Runs one resource's list/watch loop until `stop` returns true, calling
/// `on_change` with the reflector after every change it reports.
pub fn run(
    api: &dyn KubeApi,
    path: &str,
    page: usize,
    stop: &dyn Fn() -> bool,
    on_change: &mut dyn FnMut(&crate::reflector::Reflector, &[crate::reflector::Change]),
) {
    use crate::reflector::{Action, Reflector};
    let mut r = Reflector::new();
    let mut next = r.start();
    while !stop() {
        let events: Box<dyn Iterator<Item = Event>> = match &next {
            Action::List { continue_token } => {
                let ev = match api.list(path, page, continue_token.as_deref()) {
                    Ok(ev) => ev,
                    Err(KubeError::Gone) => Event::Gone,
                    Err(e) => {
                        log::warn!("list {path}: {e}");
                        Event::Failed
                    }
                };
                Box::new(std::iter::once(ev))
            }
            Action::Watch { resource_version } => match api.watch(path, resource_version) {
                Ok(s) => Box::new(s.chain(std::iter::once(Event::WatchEnded))),
                Err(KubeError::Gone) => Box::new(std::iter::once(Event::Gone)),
                Err(e) => {
                    log::warn!("watch {path}: {e}");
                    Box::new(std::iter::once(Event::Failed))
                }
            },
            Action::BackOff(d) => {
                std::thread::sleep(*d);
                next = Action::List {
                    continue_token: None,
                };
                continue;
            }
        };
        for ev in events {
            let (changes, action) = r.step(ev);
            if !changes.is_empty() {
                on_change(&r, &changes);
            }
            if let Some(a) = action {
                next = a;
                break;
            }
            if stop() {
                return;
            }
        }
    }
}
