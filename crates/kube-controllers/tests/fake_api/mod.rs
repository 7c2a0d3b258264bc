//! A fake Kubernetes API server speaking the list/watch protocol over plain
//! HTTP/1.1 (std TcpListener, a thread per connection), written from the
//! API reference ("API Concepts": efficient detection of changes, watch
//! bookmarks, retrieving large results sets in chunks, 410 Gone):
//! - `GET <collection>?limit=N[&continue=T]`: a List with
//!   `metadata.resourceVersion` and `metadata.continue` while items remain;
//!   the pages are of one snapshot; a token older than the compaction is 410;
//! - `GET <collection>?watch=1&resourceVersion=RV&allowWatchBookmarks=true`:
//!   a chunked stream of `{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object"}`
//!   lines after RV; RV older than the compaction is `410 Gone` with a
//!   Status object (reason `Expired`); the stream ends after a while (as
//!   `timeoutSeconds` does) or when the test cuts it.

// Each test binary uses part of the server.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Default)]
struct State {
    rv: u64,
    compacted: u64,
    cuts: u64,
    /// While set, new requests wait (the API is unreachable).
    held: bool,
    /// (collection, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    /// (rv, collection, type, object).
    log: Vec<(u64, String, &'static str, Value)>,
    /// Leases by path `<collection>/<name>`: (resourceVersion, object).
    leases: BTreeMap<String, (u64, Value)>,
    /// continue token → remaining items and the list's rv.
    pages: HashMap<String, (u64, Vec<Value>)>,
    next_token: u64,
    /// Requests served, by kind ("list", "watch", "gone").
    pub hits: BTreeMap<&'static str, usize>,
}

/// The server; stops accepting when dropped (threads end with their streams).
pub struct FakeApi {
    pub addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

fn status_410() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "too old resource version", "reason": "Expired", "code": 410})
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let st = state.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(c, &st);
                });
            }
        });
        FakeApi { addr, state }
    }

    fn change(&self, coll: &str, ty: &'static str, mut obj: Value) -> u64 {
        let (m, cv) = &*self.state;
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (coll.to_string(), ns, name);
        if ty == "DELETED" {
            s.objects.remove(&key);
        } else {
            s.objects.insert(key, obj.clone());
        }
        s.log.push((rv, coll.to_string(), ty, obj));
        cv.notify_all();
        rv
    }

    /// Creates or replaces an object (ADDED or MODIFIED).
    pub fn put(&self, coll: &str, obj: Value) -> u64 {
        let exists = {
            let s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
            let k = (
                coll.to_string(),
                obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
            );
            s.objects.contains_key(&k)
        };
        self.change(coll, if exists { "MODIFIED" } else { "ADDED" }, obj)
    }

    /// Deletes an object.
    pub fn delete(&self, coll: &str, ns: &str, name: &str) -> u64 {
        let obj = {
            let s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
            s.objects
                .get(&(coll.to_string(), ns.to_string(), name.to_string()))
                .cloned()
        };
        match obj {
            Some(o) => self.change(coll, "DELETED", o),
            None => 0,
        }
    }

    /// Forgets history up to now: older resourceVersions get 410.
    pub fn compact(&self) {
        let mut s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        s.compacted = s.rv;
        s.log.clear();
        s.pages.clear();
    }

    /// Ends every open watch stream.
    pub fn cut(&self) {
        let (m, cv) = &*self.state;
        m.lock().unwrap_or_else(|e| e.into_inner()).cuts += 1;
        cv.notify_all();
    }

    /// Makes the API unreachable: new requests wait until [`FakeApi::release`].
    pub fn hold(&self) {
        self.state.0.lock().unwrap_or_else(|e| e.into_inner()).held = true;
    }

    /// Makes the API reachable again.
    pub fn release(&self) {
        let (m, cv) = &*self.state;
        m.lock().unwrap_or_else(|e| e.into_inner()).held = false;
        cv.notify_all();
    }

    /// How many requests of a kind were served.
    pub fn hits(&self, what: &str) -> usize {
        let s = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        s.hits.get(what).copied().unwrap_or(0)
    }
}

fn respond(c: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let b = body.to_string();
    write!(
        c,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
}

fn serve(mut c: TcpStream, st: &(Mutex<State>, Condvar)) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let method = line.split_whitespace().next().unwrap_or("GET").to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    std::io::Read::read_exact(&mut r, &mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let q: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (m, cv) = st;
    {
        let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
        while s.held {
            s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
    if path.contains("/leases") {
        return lease(&mut c, m, &method, path, &body);
    }
    if q.get("watch") == Some(&"1") {
        let from: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (cuts, mut sent) = {
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            if from < s.compacted {
                *s.hits.entry("gone").or_default() += 1;
                drop(s);
                return respond(&mut c, 410, &status_410());
            }
            *s.hits.entry("watch").or_default() += 1;
            (s.cuts, from)
        };
        write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )?;
        let end = Instant::now() + Duration::from_secs(3);
        let chunk = |c: &mut TcpStream, v: &Value| -> std::io::Result<()> {
            let l = format!("{v}\n");
            write!(c, "{:x}\r\n{l}\r\n", l.len())?;
            c.flush()
        };
        loop {
            let out: Vec<Value> = {
                let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
                let evs = |s: &State| {
                    s.log
                        .iter()
                        .filter(|(rv, coll, _, _)| *rv > sent && coll == path)
                        .map(|(rv, _, ty, o)| (*rv, json!({"type": ty, "object": o})))
                        .collect::<Vec<_>>()
                };
                if evs(&s).is_empty() && s.cuts == cuts && Instant::now() < end {
                    s = cv
                        .wait_timeout(s, Duration::from_millis(300))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
                if s.cuts != cuts {
                    return write!(c, "0\r\n\r\n");
                }
                let e = evs(&s);
                if let Some((rv, _)) = e.last() {
                    sent = *rv;
                } else if s.rv > sent {
                    // Nothing for this collection: a bookmark moves it on.
                    sent = s.rv;
                    drop(s);
                    chunk(
                        &mut c,
                        &json!({"type": "BOOKMARK", "object":
                        {"kind": "Namespace", "apiVersion": "v1", "metadata": {"resourceVersion": sent.to_string()}}}),
                    )?;
                    continue;
                }
                e.into_iter().map(|(_, v)| v).collect()
            };
            for v in &out {
                chunk(&mut c, v)?;
            }
            if Instant::now() >= end {
                return write!(c, "0\r\n\r\n");
            }
        }
    }
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
    *s.hits.entry("list").or_default() += 1;
    let (rv, mut items) = match q.get("continue") {
        Some(tok) => match s.pages.remove(*tok) {
            Some(p) => p,
            None => {
                drop(s);
                return respond(&mut c, 410, &status_410());
            }
        },
        None => (
            s.rv,
            s.objects
                .iter()
                .filter(|((coll, _, _), _)| coll == path)
                .map(|(_, v)| v.clone())
                .collect(),
        ),
    };
    let rest = if items.len() > limit {
        items.split_off(limit)
    } else {
        Vec::new()
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if !rest.is_empty() {
        s.next_token += 1;
        let tok = format!("t{}", s.next_token);
        s.pages.insert(tok.clone(), (rv, rest));
        meta["continue"] = json!(tok);
    }
    drop(s);
    respond(
        &mut c,
        200,
        &json!({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items}),
    )
}

/// Lease get / create (POST to the collection) / replace (PUT, 409 when the
/// resourceVersion is not the stored one).
fn lease(
    c: &mut TcpStream,
    m: &Mutex<State>,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "Conflict", "code": 409});
    let obj: Value = serde_json::from_slice(body).unwrap_or_default();
    let key = match method {
        "POST" => format!("{path}/{}", obj["metadata"]["name"].as_str().unwrap_or("")),
        _ => path.to_string(),
    };
    match method {
        "GET" => {
            let out = s.leases.get(&key).map(|(_, v)| v.clone());
            drop(s);
            match out {
                Some(v) => respond(c, 200, &v),
                None => respond(
                    c,
                    404,
                    &json!({"kind": "Status", "reason": "NotFound", "code": 404}),
                ),
            }
        }
        "POST" | "PUT" => {
            let current = s.leases.get(&key).map(|(rv, _)| rv.to_string());
            let given = obj["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            let ok = match method {
                "POST" => current.is_none(),
                _ => current.is_some() && given == current,
            };
            if !ok {
                *s.hits.entry("409").or_default() += 1;
                drop(s);
                return respond(c, 409, &conflict);
            }
            s.rv += 1;
            let rv = s.rv;
            let mut v = obj;
            v["metadata"]["resourceVersion"] = json!(rv.to_string());
            s.leases.insert(key, (rv, v.clone()));
            drop(s);
            respond(c, if method == "POST" { 201 } else { 200 }, &v)
        }
        _ => respond(c, 405, &json!({"kind": "Status", "code": 405})),
    }
}
