//! A fake Kubernetes API server speaking the list/watch protocol over
//! HTTP/1.1, plain or over TLS (rustls), optionally requiring a bearer token
//! (std TcpListener, a thread per connection), written from the
//! API reference ("API Concepts": efficient detection of changes, watch
//! bookmarks, retrieving large results sets in chunks, 410 Gone):
//! - `GET <collection>?limit=N[&continue=T]`: a List with
//!   `metadata.resourceVersion` and `metadata.continue` while items remain;
//!   the pages are of one snapshot; a token older than the compaction is 410;
//! - `GET <collection>?watch=true&resourceVersion=RV&allowWatchBookmarks=true`:
//!   a chunked stream of `{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object"}`
//!   lines after RV; RV older than the compaction is `410 Gone` with a
//!   Status object (reason `Expired`); the stream ends after a while (as
//!   `timeoutSeconds` does) or when the test cuts it;
//! - with a token set, a request without `Authorization: Bearer <token>` is
//!   `401 Unauthorized` (a Status object).
//!
//! [`FakeApi::write_kubeconfig`] writes a kubeconfig pointing at it.

// Each test binary uses part of the server.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
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
    /// `127.0.0.1:<port>`.
    pub addr: String,
    tls: bool,
    state: Arc<(Mutex<State>, Condvar)>,
}

/// A kube-rs client configured from the kubeconfig at `path`.
pub fn kube_client(path: &Path) -> calico_kube_controllers::kube::client::KubeClient {
    let cfg = calico_kube_controllers::kube::connect::from_kubeconfig(path)
        .unwrap_or_else(|e| panic!("{e}"));
    calico_kube_controllers::kube::client::KubeClient::new(cfg).unwrap_or_else(|e| panic!("{e}"))
}

/// How the server is reached.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// How a kubeconfig names the CA.
#[derive(Debug, Clone, Copy)]
pub enum Ca<'a> {
    /// No CA (plain http).
    None,
    /// `certificate-authority: <path>`.
    File(&'a Path),
    /// `certificate-authority-data: <base64 of the PEM file>`.
    Data(&'a Path),
}

fn tls_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect())
        .unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let key =
        PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
    .unwrap_or_else(|e| panic!("server TLS config: {e}"));
    Arc::new(cfg)
}

fn status_410() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "too old resource version", "reason": "Expired", "code": 410})
}

impl FakeApi {
    /// Plain http, no credentials asked.
    pub fn start() -> FakeApi {
        FakeApi::start_with(Options::default())
    }

    /// Started with `opts` (https and/or a bearer token).
    pub fn start_with(opts: Options) -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let st = state.clone();
        let tls = opts.tls.as_ref().map(|(c, k)| tls_config(c, k));
        let token: Option<Arc<str>> = opts.token.map(Into::into);
        let is_tls = tls.is_some();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (st, tls, token) = (st.clone(), tls.clone(), token.clone());
                std::thread::spawn(move || {
                    let token = token.as_deref();
                    match tls {
                        None => {
                            let mut c = c;
                            let _ = serve(&mut c, &st, token);
                        }
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let mut s = rustls::StreamOwned::new(conn, c);
                            if serve(&mut s, &st, token).is_ok() {
                                s.conn.send_close_notify();
                                let _ = s.flush();
                            }
                        }
                    }
                });
            }
        });
        FakeApi {
            addr,
            tls: is_tls,
            state,
        }
    }

    /// A kube-rs client of this plain-http server, through a kubeconfig
    /// written in `dir`.
    pub fn client(&self, dir: &Path) -> calico_kube_controllers::kube::client::KubeClient {
        kube_client(&self.write_kubeconfig(&dir.join("kubeconfig"), Ca::None, None))
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Writes a kubeconfig at `path` whose current context is this server,
    /// with `ca` and the bearer `token`; returns `path`.
    pub fn write_kubeconfig(&self, path: &Path, ca: Ca<'_>, token: Option<&str>) -> PathBuf {
        use base64::Engine;
        let ca = match ca {
            Ca::None => String::new(),
            Ca::File(p) => format!("    certificate-authority: {}\n", p.display()),
            Ca::Data(p) => {
                let pem = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
                format!("    certificate-authority-data: {b64}\n")
            }
        };
        let user = match token {
            Some(t) => format!("  user:\n    token: {t}\n"),
            None => "  user: {}\n".to_string(),
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\n{ca}users:\n- name: fake\n{user}contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n",
            self.url()
        );
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.to_path_buf()
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

fn respond(c: &mut dyn Write, code: u16, body: &Value) -> std::io::Result<()> {
    let b = body.to_string();
    write!(
        c,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )?;
    c.flush()
}

/// The object kind of a collection path (for BOOKMARK events).
fn kind_of(path: &str) -> (&'static str, &'static str) {
    match path.rsplit('/').next().unwrap_or("") {
        "pods" => ("v1", "Pod"),
        "nodes" => ("v1", "Node"),
        "serviceaccounts" => ("v1", "ServiceAccount"),
        "networkpolicies" => ("networking.k8s.io/v1", "NetworkPolicy"),
        _ => ("v1", "Namespace"),
    }
}

fn serve<S: Read + Write>(
    c: &mut S,
    st: &(Mutex<State>, Condvar),
    token: Option<&str>,
) -> std::io::Result<()> {
    let (method, target, auth, body) = {
        // One request per connection (`Connection: close`).
        let mut r = BufReader::new(&mut *c);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let method = line.split_whitespace().next().unwrap_or("GET").to_string();
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (mut len, mut auth) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("authorization:") {
                auth = h["authorization:".len()..].trim().to_string();
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        (method, target, auth, body)
    };
    let c: &mut dyn Write = c;
    if let Some(t) = token
        && auth != format!("Bearer {t}")
    {
        *st.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hits
            .entry("401")
            .or_default() += 1;
        return respond(
            c,
            401,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        );
    }
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
        return lease(c, m, &method, path, &body);
    }
    if matches!(q.get("watch"), Some(&"1") | Some(&"true")) {
        let from: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (cuts, mut sent) = {
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            if from < s.compacted {
                *s.hits.entry("gone").or_default() += 1;
                drop(s);
                return respond(c, 410, &status_410());
            }
            *s.hits.entry("watch").or_default() += 1;
            (s.cuts, from)
        };
        write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )?;
        let end = Instant::now() + Duration::from_secs(3);
        let chunk = |c: &mut dyn Write, v: &Value| -> std::io::Result<()> {
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
                    write!(c, "0\r\n\r\n")?;
                    return c.flush();
                }
                let e = evs(&s);
                if let Some((rv, _)) = e.last() {
                    sent = *rv;
                } else if s.rv > sent {
                    // Nothing for this collection: a bookmark moves it on.
                    sent = s.rv;
                    drop(s);
                    let (api_version, kind) = kind_of(path);
                    chunk(
                        c,
                        &json!({"type": "BOOKMARK", "object":
                        {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": sent.to_string()}}}),
                    )?;
                    continue;
                }
                e.into_iter().map(|(_, v)| v).collect()
            };
            for v in &out {
                chunk(c, v)?;
            }
            if Instant::now() >= end {
                write!(c, "0\r\n\r\n")?;
                return c.flush();
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
                return respond(c, 410, &status_410());
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
        c,
        200,
        &json!({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items}),
    )
}

/// Lease get / create (POST to the collection) / replace (PUT, 409 when the
/// resourceVersion is not the stored one).
fn lease(
    c: &mut dyn Write,
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
