//! A small, synchronous reader of the Kubernetes API for the `calico` CNI
//! plugin. When the network config has `"kubernetes": {"kubeconfig": ...}`,
//! the plugin reads the pod (labels, annotations, service account, named
//! container ports) and its namespace (labels, annotations) from the API
//! server, as Calico's plugin does before it writes the workload endpoint.
//!
//! - Kubeconfig: the current context's cluster (`server`,
//!   `certificate-authority[-data]`, `insecure-skip-tls-verify`) and user
//!   (`token`/`tokenFile`, `client-certificate[-data]`, `client-key[-data]`).
//!   Relative paths are relative to the kubeconfig's directory.
//! - Transport: one blocking HTTP/1.1 `GET` per object with
//!   `Connection: close`, plain `http://` or rustls (ring provider), 5 s
//!   connect/read/write timeouts; `Content-Length`, chunked and
//!   read-to-close bodies.
//!
//! Invariants: a pod that cannot be read is an error; a namespace that
//! answers 403 or 404 gives empty namespace maps. Failing to connect and
//! timeouts are always [`K8sError::Unreachable`], so callers can tell "API
//! server down" from "asked wrongly". Nothing here panics on input.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use serde::Deserialize;

/// Connect, read and write timeout of each request.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response body accepted.
const MAX_BODY: usize = 16 << 20;
/// CA bundle used when the cluster names no CA (Debian's path).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What the plugin needs of a pod and its namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// `metadata.labels` of the pod.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations` of the pod.
    pub annotations: BTreeMap<String, String>,
    /// `spec.serviceAccountName`.
    pub service_account: Option<String>,
    /// Named container ports (`spec.containers[].ports[]` with a name).
    pub ports: Vec<PodPort>,
    /// `metadata.labels` of the namespace (empty if it may not be read).
    pub namespace_labels: BTreeMap<String, String>,
    /// `metadata.annotations` of the namespace (empty if it may not be read).
    pub namespace_annotations: BTreeMap<String, String>,
}

/// A named container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPort {
    /// The port's name.
    pub name: String,
    /// `TCP`, `UDP` or `SCTP` (`TCP` when not given).
    pub protocol: String,
    /// The container port.
    pub port: u16,
}

/// Why the pod could not be read.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The kubeconfig, or a file it names, could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The kubeconfig is malformed or incomplete.
    #[error("invalid kubeconfig {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    /// The namespace or pod name is empty.
    #[error("the namespace and pod names must not be empty")]
    EmptyName,
    /// Connecting failed or the server did not answer in time.
    #[error("kubernetes api at {url} is unreachable: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed (untrusted server, rejected client certificate).
    #[error("tls with {url} failed: {reason}")]
    Tls { url: String, reason: String },
    /// The connection broke, or the answer is not HTTP.
    #[error("bad http response from {url}: {reason}")]
    Protocol { url: String, reason: String },
    /// The pod does not exist.
    #[error("pod {namespace}/{pod} not found ({url} answered 404)")]
    PodNotFound {
        namespace: String,
        pod: String,
        url: String,
    },
    /// Any other non-2xx answer.
    #[error("{url} answered http {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// The body is not the object expected.
    #[error("cannot decode the {what} from {url}: {source}")]
    Decode {
        what: &'static str,
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads pod `namespace/pod` and its namespace, using `kubeconfig`.
pub fn read_pod(kubeconfig: &Path, namespace: &str, pod: &str) -> Result<PodInfo, K8sError> {
    if namespace.is_empty() || pod.is_empty() {
        return Err(K8sError::EmptyName);
    }
    let api = Api::from_kubeconfig(kubeconfig)?;
    let ns_path = format!("/api/v1/namespaces/{}", escape(namespace));
    let (url, status, body) = api.get(&format!("{ns_path}/pods/{}", escape(pod)))?;
    let pod_obj: Object = match status {
        200..=299 => decode("pod", &url, &body)?,
        404 => {
            return Err(K8sError::PodNotFound {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                url,
            });
        }
        _ => return Err(status_error(url, status, &body)),
    };
    let spec = pod_obj.spec.unwrap_or_default();
    let ports = spec.containers.unwrap_or_default().into_iter();
    let ports = ports.flat_map(|c| c.ports.unwrap_or_default());
    let mut info = PodInfo {
        labels: pod_obj.metadata.labels.unwrap_or_default(),
        annotations: pod_obj.metadata.annotations.unwrap_or_default(),
        service_account: spec.service_account_name.filter(|s| !s.is_empty()),
        ports: ports
            .filter(|p| p.container_port != 0)
            .filter_map(|p| {
                Some(PodPort {
                    name: p.name.filter(|n| !n.is_empty())?,
                    protocol: p.protocol.filter(|p| !p.is_empty()).unwrap_or("TCP".into()),
                    port: p.container_port,
                })
            })
            .collect(),
        ..PodInfo::default()
    };
    let (url, status, body) = api.get(&ns_path)?;
    match status {
        200..=299 => {
            let ns: Object = decode("namespace", &url, &body)?;
            info.namespace_labels = ns.metadata.labels.unwrap_or_default();
            info.namespace_annotations = ns.metadata.annotations.unwrap_or_default();
        }
        403 | 404 => {}
        _ => return Err(status_error(url, status, &body)),
    }
    Ok(info)
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
    spec: Option<PodSpec>,
}

#[derive(Deserialize, Default)]
struct Meta {
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    service_account_name: Option<String>,
    containers: Option<Vec<Container>>,
}

#[derive(Deserialize)]
struct Container {
    ports: Option<Vec<ContainerPort>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    name: Option<String>,
    container_port: u16,
    protocol: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    url: &str,
    body: &[u8],
) -> Result<T, K8sError> {
    serde_json::from_slice(body).map_err(|source| K8sError::Decode {
        what,
        url: url.to_string(),
        source,
    })
}

/// A non-2xx error carrying the API's `Status.message` (or the body's start).
fn status_error(url: String, status: u16, body: &[u8]) -> K8sError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    K8sError::Status {
        url,
        status,
        message,
    }
}

/// Percent-encodes one path segment.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct KubeConfig {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    contexts: Option<Vec<Named<Context>>>,
    clusters: Option<Vec<Named<Cluster>>>,
    users: Option<Vec<Named<User>>>,
}

/// A `{name, context|cluster|user}` entry.
#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    item: Option<T>,
}

#[derive(Deserialize)]
struct Context {
    cluster: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
}

/// Takes entry `name` out of a kubeconfig list.
fn take<T>(list: Option<Vec<Named<T>>>, name: &str) -> Option<T> {
    let entry = list?.into_iter().find(|e| e.name == name)?;
    entry.item
}

/// Where and how to send requests.
struct Api {
    /// `scheme://authority`, for messages.
    base: String,
    host: String,
    port: u16,
    authority: String,
    prefix: String,
    token: Option<String>,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// Reads a kubeconfig and the files it names.
struct Loader<'a> {
    path: &'a Path,
    dir: &'a Path,
}

impl Loader<'_> {
    fn err(&self, reason: String) -> K8sError {
        K8sError::Config {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// Reads `file`, relative to the kubeconfig's directory.
    fn read(&self, file: &str) -> Result<Vec<u8>, K8sError> {
        let path = self.dir.join(file);
        std::fs::read(&path).map_err(|source| K8sError::ReadFile { path, source })
    }

    /// The bytes of `<field>-data` (base64) or else of file `<field>`.
    fn material(
        &self,
        data: &Option<String>,
        file: &Option<String>,
        field: &str,
    ) -> Result<Option<Vec<u8>>, K8sError> {
        if let Some(d) = data.as_deref().filter(|d| !d.is_empty()) {
            let d: String = d.split_whitespace().collect();
            return base64::engine::general_purpose::STANDARD
                .decode(d)
                .map(Some)
                .map_err(|e| self.err(format!("{field}-data is not base64: {e}")));
        }
        let file = file.as_deref().filter(|f| !f.is_empty());
        file.map(|f| self.read(f)).transpose()
    }

    fn tls_config(&self, cluster: &Cluster, user: &User) -> Result<ClientConfig, K8sError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| self.err(format!("tls: {e}")))?;
        let builder = if cluster.insecure_skip_tls_verify {
            let verifier = Arc::new(NoVerify(provider));
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
        } else {
            let (data, file) = (
                &cluster.certificate_authority_data,
                &cluster.certificate_authority,
            );
            let pem = match self.material(data, file, "certificate-authority")? {
                Some(pem) => pem,
                None => std::fs::read(SYSTEM_CAS).map_err(|_| {
                    self.err(format!(
                        "the cluster has no certificate-authority(-data) and {SYSTEM_CAS} is missing"
                    ))
                })?,
            };
            let ca_err =
                |e: &dyn std::fmt::Display| self.err(format!("certificate-authority: {e}"));
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| ca_err(&e))?;
                roots.add(cert).map_err(|e| ca_err(&e))?;
            }
            if roots.is_empty() {
                return Err(ca_err(&"no certificate found"));
            }
            builder.with_root_certificates(roots)
        };
        let cert = self.material(
            &user.client_certificate_data,
            &user.client_certificate,
            "client-certificate",
        )?;
        let key = self.material(&user.client_key_data, &user.client_key, "client-key")?;
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.err(format!("client-certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(&key)
                    .map_err(|e| self.err(format!("client-key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| self.err(format!("client-certificate/client-key: {e}")))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err(self.err("client-certificate and client-key must be given together".into())),
        }
    }
}

impl Api {
    fn from_kubeconfig(path: &Path) -> Result<Api, K8sError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let ld = Loader { path, dir };
        let text = std::fs::read_to_string(path).map_err(|source| K8sError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: KubeConfig =
            serde_saphyr::from_str(&text).map_err(|e| ld.err(format!("yaml: {e}")))?;
        let only = match cfg.contexts.as_deref() {
            Some([only]) => Some(only.name.clone()),
            _ => None,
        };
        let name = cfg.current_context.filter(|c| !c.is_empty()).or(only);
        let name = name.ok_or_else(|| ld.err("no current-context".into()))?;
        let ctx = take(cfg.contexts, &name)
            .ok_or_else(|| ld.err(format!("current-context {name:?} is not among contexts")))?;
        let cl_name = ctx.cluster.unwrap_or_default();
        let cluster = take(cfg.clusters, &cl_name).ok_or_else(|| {
            ld.err(format!(
                "cluster {cl_name:?} (of context {name:?}) is not among clusters"
            ))
        })?;
        let user = match ctx.user.filter(|u| !u.is_empty()) {
            None => User::default(),
            Some(u) => take(cfg.users, &u).ok_or_else(|| {
                ld.err(format!(
                    "user {u:?} (of context {name:?}) is not among users"
                ))
            })?,
        };
        let server = cluster.server.as_deref().unwrap_or_default();
        if server.is_empty() {
            return Err(ld.err(format!("cluster {cl_name:?} has no server")));
        }
        let bad_server =
            |what: &str| ld.err(format!("cluster {cl_name:?}: server {server:?} {what}"));
        let (https, rest) = match (
            server.strip_prefix("https://"),
            server.strip_prefix("http://"),
        ) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => return Err(bad_server("is not an http(s) url")),
        };
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|(h, p)| (h, p.strip_prefix(':'))),
            None => Some(match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }),
        }
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| bad_server("has no host"))?;
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad_server("has a bad port"))?,
            None if https => 443,
            None => 80,
        };
        let token = match user.token_file.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => Some(String::from_utf8_lossy(&ld.read(f)?).trim().to_string()),
            None => user.token.clone(),
        };
        let tls = if https {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| bad_server(&format!("has a bad host: {e}")))?;
            Some((Arc::new(ld.tls_config(&cluster, &user)?), name))
        } else {
            None
        };
        Ok(Api {
            base: format!("{}://{authority}", if https { "https" } else { "http" }),
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            tls,
        })
    }

    /// `GET path`; returns the URL, the status and the body.
    fn get(&self, path: &str) -> Result<(String, u16, Vec<u8>), K8sError> {
        let url = format!("{}{}{path}", self.base, self.prefix);
        let mut request = format!(
            "GET {}{path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
             User-Agent: calico-rs-cni\r\nConnection: close\r\n",
            self.prefix, self.authority
        );
        if let Some(t) = &self.token {
            request.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        request.push_str("\r\n");
        let classify = |e: io::Error| classify(&url, e);
        let tcp = self.connect().map_err(|source| K8sError::Unreachable {
            url: url.clone(),
            source,
        })?;
        let (status, body) = match &self.tls {
            None => exchange(tcp, &request),
            Some((config, name)) => {
                let conn = ClientConnection::new(config.clone(), name.clone()).map_err(|e| {
                    K8sError::Tls {
                        url: url.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let mut stream = StreamOwned::new(conn, tcp);
                while stream.conn.is_handshaking() {
                    stream
                        .conn
                        .complete_io(&mut stream.sock)
                        .map_err(classify)?;
                }
                exchange(stream, &request)
            }
        }
        .map_err(classify)?;
        Ok((url, status, body))
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address");
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(s) => {
                    s.set_read_timeout(Some(TIMEOUT))?;
                    s.set_write_timeout(Some(TIMEOUT))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// An error after connecting: timeouts are `Unreachable`, rustls errors `Tls`.
fn classify(url: &str, e: io::Error) -> K8sError {
    let url = url.to_string();
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => K8sError::Unreachable {
            url,
            source: io::Error::new(io::ErrorKind::TimedOut, "no answer within 5 s"),
        },
        _ if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => K8sError::Tls {
            url,
            reason: e.to_string(),
        },
        _ => K8sError::Protocol {
            url,
            reason: e.to_string(),
        },
    }
}

fn bad(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Sends `request` and reads the status and body of the answer.
fn exchange<S: Read + Write>(mut stream: S, request: &str) -> io::Result<(u16, Vec<u8>)> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut r = BufReader::new(stream);
    let status_line = line(&mut r)?;
    let status = Some(status_line.as_str())
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("not an http status line: {status_line:?}")))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let header = line(&mut r)?;
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(bad(format!("bad header line {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse::<usize>().ok().filter(|n| *n <= MAX_BODY);
            length = Some(n.ok_or_else(|| bad(format!("bad content-length {value:?}")))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = line(&mut r)?;
            let size = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .ok()
                .filter(|n| body.len() + n <= MAX_BODY)
                .ok_or_else(|| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                while !line(&mut r)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            if !line(&mut r)?.is_empty() {
                return Err(bad("chunk not followed by crlf".into()));
            }
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        // Read to close; a TLS peer that skips close_notify ends with UnexpectedEof.
        match r.take(MAX_BODY as u64).read_to_end(&mut body) {
            Err(e) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(e),
            _ => {}
        }
    }
    Ok((status, body))
}

/// One header line without its CRLF.
fn line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    r.take(16 * 1024).read_until(b'\n', &mut buf)?;
    if !buf.ends_with(b"\n") {
        return Err(bad("connection closed, or a line too long".into()));
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
}

/// `insecure-skip-tls-verify`: accepts any server certificate, but still
/// checks the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
