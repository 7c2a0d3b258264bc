#![allow(clippy::unwrap_used)]
//! `calico_cni::k8s::read_pod` against a real HTTP(S) server on 127.0.0.1
//! that serves pod and namespace JSON shaped like the Kubernetes API and
//! records what it was asked (path, `Authorization`, client certificate).
//! Certificates come from `openssl` at test time (`make_pki`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use calico_cni::k8s::{K8sError, PodInfo, PodPort, read_pod};
use calico_testutil::{TlsFiles, make_pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1","namespace":"shop",
"uid":"8d7f0f5e-1111-2222-3333-444455556666","labels":{"app":"web","tier":"front"},
"annotations":{"cni.projectcalico.org/ipAddrs":"[\"10.1.2.3\"]"}},
"spec":{"serviceAccountName":"web-sa","nodeName":"node-1","containers":[
{"name":"web","image":"nginx","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},
{"containerPort":9999,"protocol":"TCP"},{"name":"dns","containerPort":53,"protocol":"UDP"}]},
{"name":"side","image":"exporter","ports":[{"name":"metrics","containerPort":9090}]},
{"name":"plain","image":"busybox"}]},"status":{"phase":"Pending"}}"#;

const NAMESPACE: &str = r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"shop",
"labels":{"kubernetes.io/metadata.name":"shop","team":"a"},"annotations":{"owner":"ops"}},
"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}"#;

const POD_PATH: &str = "/api/v1/namespaces/shop/pods/web-1";
const NS_PATH: &str = "/api/v1/namespaces/shop";

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    client_cert: bool,
}

/// A canned API server on 127.0.0.1; its thread lives until the test ends.
struct ApiServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ApiServer {
    /// Serves `routes` (path → status, body); other paths get 404.
    fn start(tls: Option<Arc<ServerConfig>>, chunked: bool, routes: &[(&str, u16, &str)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let routes: Vec<(String, u16, String)> = routes
            .iter()
            .map(|(p, s, b)| (p.to_string(), *s, b.to_string()))
            .collect();
        let log = seen.clone();
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let answer = |path: &str| {
                    routes
                        .iter()
                        .find(|(p, _, _)| p == path)
                        .map(|(_, s, b)| (*s, b.clone()))
                        .unwrap_or((404, not_found(path)))
                };
                match &tls {
                    None => {
                        let mut s = tcp;
                        if let Some((path, auth)) = read_request(&mut s) {
                            let (status, body) = answer(&path);
                            record(&log, path, auth, false);
                            respond(&mut s, status, &body, chunked);
                        }
                    }
                    Some(config) => {
                        let conn = ServerConnection::new(config.clone()).unwrap();
                        let mut s = StreamOwned::new(conn, tcp);
                        if let Some((path, auth)) = read_request(&mut s) {
                            let (status, body) = answer(&path);
                            let cert = s.conn.peer_certificates().is_some();
                            record(&log, path, auth, cert);
                            respond(&mut s, status, &body, chunked);
                            s.conn.send_close_notify();
                            let _ = s.flush();
                        }
                    }
                }
            }
        });
        ApiServer { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn record(log: &Mutex<Vec<Seen>>, path: String, authorization: Option<String>, cert: bool) {
    log.lock().unwrap().push(Seen {
        path,
        authorization,
        client_cert: cert,
    });
}

fn not_found(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or_default();
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"pods \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","kind":"pods"}},"code":404}}"#
    )
}

/// Reads one request head; returns its path and `Authorization` header.
fn read_request<S: Read>(s: &mut S) -> Option<(String, Option<String>)> {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut auth = None;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            return Some((path, auth));
        }
        if let Some((name, value)) = l.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            auth = Some(value.trim().to_string());
        }
    }
}

fn respond<S: Write>(s: &mut S, status: u16, body: &str, chunked: bool) {
    let mut out =
        format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n");
    if chunked {
        out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        for (i, chunk) in body.as_bytes().chunks(7).enumerate() {
            // An extension on some chunks, as the grammar allows.
            let ext = if i % 5 == 0 { ";x=y" } else { "" };
            out.push_str(&format!("{:x}{ext}\r\n", chunk.len()));
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push_str("\r\n");
        }
        out.push_str("0\r\n\r\n");
    } else {
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    }
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server config with `server`'s certificate that asks for (but does
/// not require) a client certificate signed by `server.ca`.
fn server_tls(server: &TlsFiles) -> Arc<ServerConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&server.ca).unwrap())
        .unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .unwrap();
    let chain = CertificateDer::pem_file_iter(&server.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

fn ok_routes() -> Vec<(&'static str, u16, &'static str)> {
    vec![(POD_PATH, 200, POD), (NS_PATH, 200, NAMESPACE)]
}

/// A kubeconfig with one context, cluster and user.
fn kubeconfig(dir: &Path, server: &str, cluster: &str, user: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\npreferences: {{}}\nclusters:\n- name: other\n  cluster:\n    server: https://192.0.2.1:6443\n- name: test\n  cluster:\n    server: {server}\n{cluster}\
         users:\n- name: calico\n  user:\n{user}\
         contexts:\n- name: calico-context\n  context:\n    cluster: test\n    user: calico\n\
         current-context: calico-context\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn b64(path: &Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expected() -> PodInfo {
    let port = |name: &str, protocol: &str, port| PodPort {
        name: name.into(),
        protocol: protocol.into(),
        port,
    };
    PodInfo {
        labels: map(&[("app", "web"), ("tier", "front")]),
        annotations: map(&[("cni.projectcalico.org/ipAddrs", "[\"10.1.2.3\"]")]),
        service_account: Some("web-sa".into()),
        ports: vec![
            port("http", "TCP", 8080),
            port("dns", "UDP", 53),
            port("metrics", "TCP", 9090),
        ],
        namespace_labels: map(&[("kubernetes.io/metadata.name", "shop"), ("team", "a")]),
        namespace_annotations: map(&[("owner", "ops")]),
    }
}

fn paths(seen: &[Seen]) -> Vec<&str> {
    seen.iter().map(|s| s.path.as_str()).collect()
}

#[test]
fn token_auth_over_https_with_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = make_pki(dir.path());
    let api = ApiServer::start(Some(server_tls(&server)), false, &ok_routes());
    let cluster = format!("    certificate-authority: {}\n", server.ca.display());
    let user = "    token: s3cr3t-token\n";
    let url = format!("https://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, &cluster, user);

    let info = read_pod(&cfg, "shop", "web-1").unwrap();
    assert_eq!(info, expected());
    let seen = api.seen();
    assert_eq!(paths(&seen), [POD_PATH, NS_PATH]);
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some("Bearer s3cr3t-token"));
        assert!(!s.client_cert, "no client certificate was configured");
    }
}

#[test]
fn client_certificate_auth_with_inline_data() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = make_pki(dir.path());
    let api = ApiServer::start(Some(server_tls(&server)), false, &ok_routes());
    let cluster = format!("    certificate-authority-data: {}\n", b64(&server.ca));
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&client.cert),
        b64(&client.key)
    );
    let url = format!("https://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, &cluster, &user);

    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
    let seen = api.seen();
    assert_eq!(paths(&seen), [POD_PATH, NS_PATH]);
    for s in &seen {
        assert!(s.client_cert, "the client certificate was not presented");
        assert_eq!(s.authorization, None);
    }
}

#[test]
fn chunked_response_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = make_pki(dir.path());
    let api = ApiServer::start(Some(server_tls(&server)), true, &ok_routes());
    let cluster = format!("    certificate-authority: {}\n", server.ca.display());
    let url = format!("https://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, &cluster, "    token: t\n");
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
}

#[test]
fn chunked_response_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(None, true, &ok_routes());
    let url = format!("http://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    {}\n");
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
}

#[test]
fn plain_http_with_token() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(None, false, &ok_routes());
    let url = format!("http://127.0.0.1:{}/", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    token: plain\n");
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
    let seen = api.seen();
    assert_eq!(paths(&seen), [POD_PATH, NS_PATH]);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer plain"));
}

#[test]
fn server_url_path_prefix_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let routes = [
        ("/k8s/api/v1/namespaces/shop/pods/web-1", 200, POD),
        ("/k8s/api/v1/namespaces/shop", 200, NAMESPACE),
    ];
    let api = ApiServer::start(None, false, &routes);
    let url = format!("http://127.0.0.1:{}/k8s/", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    {}\n");
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
}

#[test]
fn pod_not_found_names_the_pod() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(None, false, &ok_routes());
    let url = format!("http://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    {}\n");
    let err = read_pod(&cfg, "shop", "nope").unwrap_err();
    assert!(matches!(err, K8sError::PodNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("pod shop/nope not found"), "{msg}");
    assert!(msg.contains("/api/v1/namespaces/shop/pods/nope"), "{msg}");
    // The namespace is not asked for when the pod is missing.
    assert_eq!(paths(&api.seen()), ["/api/v1/namespaces/shop/pods/nope"]);
}

#[test]
fn namespace_forbidden_gives_empty_namespace_maps() {
    let dir = tempfile::tempdir().unwrap();
    let forbidden = r#"{"kind":"Status","status":"Failure","message":"namespaces \"shop\" is forbidden","reason":"Forbidden","code":403}"#;
    let api = ApiServer::start(
        None,
        false,
        &[(POD_PATH, 200, POD), (NS_PATH, 403, forbidden)],
    );
    let url = format!("http://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    {}\n");
    let info = read_pod(&cfg, "shop", "web-1").unwrap();
    assert_eq!(
        info,
        PodInfo {
            namespace_labels: BTreeMap::new(),
            namespace_annotations: BTreeMap::new(),
            ..expected()
        }
    );
}

#[test]
fn unauthorized_pod_read_is_an_error_naming_status_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"{"kind":"Status","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
    let api = ApiServer::start(None, false, &[(POD_PATH, 401, body)]);
    let url = format!("http://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, "", "    token: wrong\n");
    let err = read_pod(&cfg, "shop", "web-1").unwrap_err();
    assert!(
        matches!(err, K8sError::Status { status: 401, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("401") && msg.contains("Unauthorized"), "{msg}");
    assert!(msg.contains(&format!("{url}{POD_PATH}")), "{msg}");
}

#[test]
fn closed_port_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let cfg = kubeconfig(dir.path(), &url, "", "    {}\n");
    let err = read_pod(&cfg, "shop", "web-1").unwrap_err();
    assert!(matches!(err, K8sError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn silent_server_times_out_as_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds connections but never answers.
    thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().flatten().collect();
        drop(held);
    });
    let cfg = kubeconfig(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        "",
        "    {}\n",
    );
    let start = Instant::now();
    let err = read_pod(&cfg, "shop", "web-1").unwrap_err();
    assert!(matches!(err, K8sError::Unreachable { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(15));
}

#[test]
fn untrusted_server_certificate_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = make_pki(dir.path());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (wrong, _) = make_pki(&other);
    let api = ApiServer::start(Some(server_tls(&server)), false, &ok_routes());
    let cluster = format!("    certificate-authority: {}\n", wrong.ca.display());
    let url = format!("https://127.0.0.1:{}", api.port);
    let cfg = kubeconfig(dir.path(), &url, &cluster, "    token: t\n");
    let err = read_pod(&cfg, "shop", "web-1").unwrap_err();
    assert!(matches!(err, K8sError::Tls { .. }), "{err:?}");
}

#[test]
fn insecure_skip_tls_verify_accepts_any_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = make_pki(dir.path());
    let api = ApiServer::start(Some(server_tls(&server)), false, &ok_routes());
    let url = format!("https://127.0.0.1:{}", api.port);
    let cluster = "    insecure-skip-tls-verify: true\n";
    let cfg = kubeconfig(dir.path(), &url, cluster, "    token: t\n");
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
}

#[test]
fn relative_paths_are_relative_to_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = make_pki(dir.path());
    let kube = dir.path().join("etc/kube");
    std::fs::create_dir_all(kube.join("certs")).unwrap();
    for (from, to) in [
        (&server.ca, "certs/ca.pem"),
        (&client.cert, "certs/client.pem"),
        (&client.key, "certs/client.key"),
    ] {
        std::fs::copy(from, kube.join(to)).unwrap();
    }
    std::fs::write(kube.join("token"), "file-token\n").unwrap();
    let api = ApiServer::start(Some(server_tls(&server)), false, &ok_routes());
    let url = format!("https://127.0.0.1:{}", api.port);
    let cluster = "    certificate-authority: certs/ca.pem\n";
    let user = "    tokenFile: token\n    client-certificate: certs/client.pem\n    client-key: ./certs/client.key\n";
    let cfg = kubeconfig(&kube, &url, cluster, user);

    // Tests run in the crate directory, where these relative paths do not exist.
    assert_eq!(read_pod(&cfg, "shop", "web-1").unwrap(), expected());
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.client_cert));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer file-token"));
}

#[test]
fn malformed_kubeconfigs_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let check = |text: &str, needle: &str| {
        std::fs::write(&path, text).unwrap();
        let err = read_pod(&path, "shop", "web-1").unwrap_err();
        assert!(matches!(err, K8sError::Config { .. }), "{text}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(needle), "{text}: {msg}");
    };
    check("clusters: [\n  - name: x\n  cluster: {", "yaml");
    check("clusters: 7\n", "yaml");
    let ctx = "contexts:\n- name: c\n  context: {cluster: k, user: u}\n";
    check(&format!("current-context: nope\n{ctx}"), "\"nope\"");
    check(ctx, "cluster \"k\"");
    let cluster = "clusters:\n- name: k\n  cluster: {server: \"https://127.0.0.1:1\", certificate-authority-data: \"!!notbase64\"}\n";
    check(&format!("{ctx}{cluster}users: []\n"), "user \"u\"");
    let users = "users:\n- name: u\n  user: {token: t}\n";
    check(
        &format!("{ctx}{cluster}{users}"),
        "certificate-authority-data",
    );
    let no_server = "clusters:\n- name: k\n  cluster: {}\n";
    check(&format!("{ctx}{no_server}{users}"), "has no server");
    let ftp = "clusters:\n- name: k\n  cluster: {server: \"ftp://127.0.0.1\"}\n";
    check(&format!("{ctx}{ftp}{users}"), "http(s) url");
    let bad_port = "clusters:\n- name: k\n  cluster: {server: \"http://127.0.0.1:http\"}\n";
    check(&format!("{ctx}{bad_port}{users}"), "bad port");
    let half = "users:\n- name: u\n  user: {client-certificate-data: QUJD}\n";
    let https = "clusters:\n- name: k\n  cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\n";
    check(&format!("{ctx}{https}{half}"), "client-key");

    // A missing file is named.
    let missing = "clusters:\n- name: k\n  cluster: {server: \"https://127.0.0.1:1\", certificate-authority: nowhere/ca.pem}\n";
    std::fs::write(&path, format!("{ctx}{missing}{users}")).unwrap();
    let err = read_pod(&path, "shop", "web-1").unwrap_err();
    assert!(matches!(err, K8sError::ReadFile { .. }), "{err:?}");
    assert!(err.to_string().contains("nowhere/ca.pem"), "{err}");
    // So is a missing kubeconfig.
    let err = read_pod(&dir.path().join("absent"), "shop", "web-1").unwrap_err();
    assert!(err.to_string().contains("absent"), "{err}");
}
