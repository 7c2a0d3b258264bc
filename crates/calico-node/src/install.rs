//! `calico-node install-cni`: what Calico's installer
//! (`cni-plugin/pkg/install`, v3.31) does, read from the same environment.
//!
//! Every input is read and the filled-in network config checked to be a
//! JSON object before anything is written:
//!
//! - the template: `CNI_NETWORK_CONFIG_FILE`, else `CNI_NETWORK_CONFIG`,
//!   else [`default_template`];
//! - the pod's service account, `token` and `ca.crt` in
//!   `CALICO_SERVICEACCOUNT_DIR` (calico-rs's name for where Calico always
//!   looks, default `/var/run/secrets/kubernetes.io/serviceaccount`): a
//!   token means "running as a Kubernetes pod", which needs
//!   `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`, as Calico's;
//! - the etcd TLS files `etcd-key`, `etcd-cert`, `etcd-ca` in
//!   `TLS_ASSETS_DIR` (default `/calico-secrets`, where Calico's manifests
//!   mount the `calico-etcd-secrets` secret).
//!
//! The placeholders and what fills them are [`placeholders`]'s table
//! (Calico's names, sources and defaults, plus calico-rs's
//! `__DATASTORE_PATH__`); values go in as they are, as Calico's do.
//!
//! Then, in `CNI_NET_DIR` (default `/etc/cni/net.d`) and `CNI_BIN_DIR`
//! (default `/opt/cni/bin`): `calico-tls/` is replaced by copies of the TLS
//! files found (their modes kept); `calico` and `calico-ipam` are copied
//! unless named in `SKIP_CNI_BINARIES` or already there with
//! `UPDATE_CNI_BINARIES=false`; a pod gets `calico-kubeconfig` (0600: the
//! API server, its CA or `SKIP_TLS_VERIFY=true`, the service account's
//! token); the conflist `CNI_CONF_NAME` (default `10-calico.conflist`) is
//! written 0600, and `CNI_OLD_CONF_NAME` (the same default) removed when it
//! is another name. Each file is written beside its target and renamed into
//! place, so a runtime never sees half a file.
//!
//! Not as Calico: the kubeconfig carries the pod's own service account
//! token (Calico ≥ 3.26 asks the API for a `calico-cni-plugin` token), and
//! install-cni always exits (`SLEEP=true`, watching the secret for new
//! certificates, is not done and says so).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where Calico finds the pod's service account.
pub const SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The etcd TLS files, by their names in Calico's secret and on the host.
pub const TLS_FILES: [&str; 3] = ["etcd-key", "etcd-cert", "etcd-ca"];

/// Why install-cni stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A setting with a value that cannot be used.
    #[error("{var}: {reason}")]
    Setting {
        /// The environment variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file that could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The filled-in network config is not a JSON object (its text is not
    /// shown: it may hold a token).
    #[error("the network config is not JSON after filling in the placeholders: {0}")]
    NotJson(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { what, path, source }
}

/// What was installed.
#[derive(Debug)]
pub struct Installed {
    /// The plugin binaries written.
    pub binaries: Vec<PathBuf>,
    /// The network config written.
    pub conflist: PathBuf,
    /// The TLS files written into `calico-tls/`.
    pub tls: Vec<PathBuf>,
    /// The kubeconfig, when running as a pod.
    pub kubeconfig: Option<PathBuf>,
    /// Things worth a line on stderr (missing TLS files, unsupported settings).
    pub warnings: Vec<String>,
}

/// The default conflist: calico (with every placeholder it uses), then
/// portmap and bandwidth.
pub fn default_template() -> String {
    r#"{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "__LOG_LEVEL__",
      "log_file_path": "__LOG_FILE_PATH__",
      "datastore_type": "__DATASTORE_TYPE__",
      "datastore_path": "__DATASTORE_PATH__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "etcd_key_file": "__ETCD_KEY_FILE__",
      "etcd_cert_file": "__ETCD_CERT_FILE__",
      "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {"type": "calico-ipam"},
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}
"#
    .to_string()
}

/// What install-cni found that the placeholders depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The node name when `KUBERNETES_NODE_NAME` is not set.
    pub nodename: String,
    /// The service account token (trimmed), when running as a pod.
    pub token: Option<String>,
    /// Which of [`TLS_FILES`] are installed into `calico-tls/`.
    pub tls: Vec<&'static str>,
}

/// `get` with an empty value taken as unset.
fn var(get: &impl Fn(&str) -> Option<String>, k: &str) -> Option<String> {
    get(k).filter(|v| !v.is_empty())
}

/// The CNI configuration directory as the plugin sees it.
fn net_dir(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    PathBuf::from(var(get, "CNI_NET_DIR").unwrap_or_else(|| "/etc/cni/net.d".into()))
}

/// Every placeholder and its value, in Calico's order of replacement:
///
/// | placeholder | value |
/// | --- | --- |
/// | `__LOG_LEVEL__` | `LOG_LEVEL` (`info`) |
/// | `__LOG_FILE_PATH__` | `LOG_FILE_PATH` (`/var/log/calico/cni/cni.log`) |
/// | `__LOG_FILE_MAX_SIZE__`, `_AGE__`, `_COUNT__` | `LOG_FILE_MAX_SIZE` (100), `LOG_FILE_MAX_AGE` (30), `LOG_FILE_MAX_COUNT` (10) |
/// | `__DATASTORE_TYPE__` | `DATASTORE_TYPE`; unset: `etcdv3` when `ETCD_ENDPOINTS` is set, else `local` (Calico: `kubernetes`, which calico-rs does not have) |
/// | `__DATASTORE_PATH__` | `DATASTORE_PATH` (`/var/lib/calico/datastore.db`; calico-rs only) |
/// | `__KUBERNETES_NODE_NAME__` | `KUBERNETES_NODE_NAME`, else the node name |
/// | `__KUBECONFIG_FILEPATH__` | `<CNI_NET_DIR>/calico-kubeconfig` |
/// | `__CNI_MTU__` | `CNI_MTU` (1500), a number |
/// | `__KUBERNETES_SERVICE_HOST__`, `_PORT__` | those variables (empty) |
/// | `__SERVICEACCOUNT_TOKEN__` | the service account token (empty) |
/// | `__ETCD_CERT_FILE__`, `__ETCD_CA_CERT_FILE__`, `__ETCD_KEY_FILE__` | `<CNI_NET_DIR>/calico-tls/etcd-cert` (`etcd-ca`, `etcd-key`) when installed, else empty |
/// | `__ETCD_ENDPOINTS__` | `ETCD_ENDPOINTS` (empty) |
/// | `__ETCD_DISCOVERY_SRV__` | `ETCD_DISCOVERY_SRV` (empty) |
/// | `__REQUIRE_MTU_FILE__` | `REQUIRE_MTU_FILE` (`false`) |
pub fn placeholders(
    get: impl Fn(&str) -> Option<String>,
    found: &Found,
) -> Result<Vec<(&'static str, String)>, InstallError> {
    let or = |k: &str, d: &str| var(&get, k).unwrap_or_else(|| d.to_string());
    let mtu = or("CNI_MTU", "1500");
    if mtu.trim().parse::<u32>().is_err() {
        return Err(InstallError::Setting {
            var: "CNI_MTU",
            reason: format!("{mtu:?} is not a number"),
        });
    }
    let store = calico_datastore::config::Settings::from_lookup(&get);
    let datastore_type = store.datastore_type.clone().unwrap_or_else(|| {
        if store.etcd_endpoints.is_some() {
            "etcdv3".into()
        } else {
            "local".into()
        }
    });
    let dir = net_dir(&get);
    let tls = |name: &str| {
        if found.tls.contains(&name) {
            dir.join("calico-tls").join(name).display().to_string()
        } else {
            String::new()
        }
    };
    Ok(vec![
        ("__LOG_LEVEL__", or("LOG_LEVEL", "info")),
        (
            "__LOG_FILE_PATH__",
            or("LOG_FILE_PATH", "/var/log/calico/cni/cni.log"),
        ),
        ("__LOG_FILE_MAX_SIZE__", or("LOG_FILE_MAX_SIZE", "100")),
        ("__LOG_FILE_MAX_AGE__", or("LOG_FILE_MAX_AGE", "30")),
        ("__LOG_FILE_MAX_COUNT__", or("LOG_FILE_MAX_COUNT", "10")),
        ("__DATASTORE_TYPE__", datastore_type),
        (
            "__DATASTORE_PATH__",
            or("DATASTORE_PATH", calico_datastore::local::DEFAULT_PATH),
        ),
        (
            "__KUBERNETES_NODE_NAME__",
            or("KUBERNETES_NODE_NAME", &found.nodename),
        ),
        (
            "__KUBECONFIG_FILEPATH__",
            dir.join("calico-kubeconfig").display().to_string(),
        ),
        ("__CNI_MTU__", mtu.trim().to_string()),
        (
            "__KUBERNETES_SERVICE_HOST__",
            or("KUBERNETES_SERVICE_HOST", ""),
        ),
        (
            "__KUBERNETES_SERVICE_PORT__",
            or("KUBERNETES_SERVICE_PORT", ""),
        ),
        (
            "__SERVICEACCOUNT_TOKEN__",
            found.token.clone().unwrap_or_default(),
        ),
        ("__ETCD_CERT_FILE__", tls("etcd-cert")),
        ("__ETCD_CA_CERT_FILE__", tls("etcd-ca")),
        ("__ETCD_KEY_FILE__", tls("etcd-key")),
        ("__ETCD_ENDPOINTS__", or("ETCD_ENDPOINTS", "")),
        ("__ETCD_DISCOVERY_SRV__", or("ETCD_DISCOVERY_SRV", "")),
        ("__REQUIRE_MTU_FILE__", or("REQUIRE_MTU_FILE", "false")),
    ])
}

/// Replaces each placeholder, in order, everywhere in `template`.
pub fn fill(template: &str, values: &[(&'static str, String)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |t, (k, v)| t.replace(k, v))
}

/// Fills `template` and checks that the result is a JSON object.
pub fn network_config(
    template: &str,
    values: &[(&'static str, String)],
) -> Result<String, InstallError> {
    let conf = fill(template, values);
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&conf)
        .map_err(|e| InstallError::NotJson(e.to_string()))?;
    Ok(conf)
}

/// Standard base64 with padding (RFC 4648), for `certificate-authority-data`.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How the plugin reaches the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiTls {
    /// `certificate-authority-data`: the service account's CA.
    Ca(Vec<u8>),
    /// `insecure-skip-tls-verify: true` (`SKIP_TLS_VERIFY=true`).
    SkipVerify,
    /// No CA line: the plugin uses the system's CAs (no `ca.crt` found).
    System,
}

/// The kubeconfig Calico writes for its plugin: one cluster `local` at
/// `KUBERNETES_SERVICE_PROTOCOL` (`https`)://host:port (an IPv6 host in
/// brackets), user `calico` with the token, context `calico-context`.
pub fn kubeconfig(protocol: &str, host: &str, port: &str, tls: &ApiTls, token: &str) -> String {
    let protocol = if protocol.is_empty() {
        "https"
    } else {
        protocol
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let tls = match tls {
        ApiTls::Ca(pem) => format!("    certificate-authority-data: {}\n", base64(pem)),
        ApiTls::SkipVerify => "    insecure-skip-tls-verify: true\n".to_string(),
        ApiTls::System => String::new(),
    };
    format!(
        "# Kubeconfig file for Calico CNI plugin.\napiVersion: v1\nkind: Config\nclusters:\n\
         - name: local\n  cluster:\n    server: {protocol}://{host}:{port}\n{tls}\
         users:\n- name: calico\n  user:\n    token: {token}\ncontexts:\n\
         - name: calico-context\n  context:\n    cluster: local\n    user: calico\n\
         current-context: calico-context\n"
    )
}

/// A boolean as Go's `strconv.ParseBool` reads it (Calico's envconfig).
fn parse_bool(var: &'static str, v: &str) -> Result<bool, InstallError> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(InstallError::Setting {
            var,
            reason: format!("{other:?} is not true or false"),
        }),
    }
}

/// Writes `content` to `path` with `mode`: into a private temporary file
/// beside it, then renamed into place.
fn place(path: &Path, content: &[u8], mode: u32) -> Result<(), InstallError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &tmp)(e)),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(content).map_err(io("write", &tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io("chmod", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("rename into", path))
}

/// Reads `path` if it exists (following symbolic links, as a secret
/// volume's files are), with its permission bits.
fn read_if_there(path: &Path) -> Result<Option<(Vec<u8>, u32)>, InstallError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
        Ok(m) if m.is_dir() => Ok(None),
        Ok(m) => {
            let bytes = std::fs::read(path).map_err(io("read", path))?;
            Ok(Some((bytes, m.permissions().mode() & 0o7777)))
        }
    }
}

/// Installs from the directory `from` (where calico-node's siblings are);
/// `nodename` names the node when `KUBERNETES_NODE_NAME` is not set.
pub fn install(
    from: &Path,
    get: impl Fn(&str) -> Option<String>,
    nodename: &str,
) -> Result<Installed, InstallError> {
    let or = |k: &str, d: &str| var(&get, k).unwrap_or_else(|| d.to_string());
    let mut warnings = Vec::new();
    let bin_dir = PathBuf::from(or("CNI_BIN_DIR", "/opt/cni/bin"));
    let dir = net_dir(&get);
    let update = parse_bool("UPDATE_CNI_BINARIES", &or("UPDATE_CNI_BINARIES", "true"))?;
    if parse_bool("SLEEP", &or("SLEEP", "false"))? {
        warnings.push(
            "SLEEP=true is not implemented: install-cni exits, and new certificates in the \
             secret are installed by running it again"
                .to_string(),
        );
    }
    let skip: Vec<String> = or("SKIP_CNI_BINARIES", "")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();

    // Inputs.
    let template = match var(&get, "CNI_NETWORK_CONFIG_FILE") {
        Some(f) => std::fs::read_to_string(&f).map_err(io("read", Path::new(&f)))?,
        None => var(&get, "CNI_NETWORK_CONFIG").unwrap_or_else(default_template),
    };
    let sa = PathBuf::from(or("CALICO_SERVICEACCOUNT_DIR", SERVICEACCOUNT_DIR));
    let token = read_if_there(&sa.join("token"))?
        .map(|(t, _)| String::from_utf8_lossy(&t).trim().to_string());
    let api = match &token {
        None => None,
        Some(_) => {
            let (Some(host), Some(port)) = (
                var(&get, "KUBERNETES_SERVICE_HOST"),
                var(&get, "KUBERNETES_SERVICE_PORT"),
            ) else {
                return Err(InstallError::Setting {
                    var: "KUBERNETES_SERVICE_HOST",
                    reason: format!(
                        "running as a Kubernetes pod (a token in {}) needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT",
                        sa.display()
                    ),
                });
            };
            let tls = if var(&get, "SKIP_TLS_VERIFY").as_deref() == Some("true") {
                ApiTls::SkipVerify
            } else {
                match read_if_there(&sa.join("ca.crt"))? {
                    Some((ca, _)) => ApiTls::Ca(ca),
                    None => {
                        warnings.push(format!(
                            "no ca.crt in {}: the plugin's kubeconfig names no CA (the system's are used)",
                            sa.display()
                        ));
                        ApiTls::System
                    }
                }
            };
            Some((host, port, tls))
        }
    };
    let assets = PathBuf::from(or("TLS_ASSETS_DIR", "/calico-secrets"));
    let mut tls_files = Vec::new();
    for name in TLS_FILES {
        if let Some(f) = read_if_there(&assets.join(name))? {
            tls_files.push((name, f));
        }
    }
    if !tls_files.is_empty() {
        for name in TLS_FILES {
            if !tls_files.iter().any(|(n, _)| *n == name) {
                warnings.push(format!("missing {name} in {}", assets.display()));
            }
        }
    }
    let found = Found {
        nodename: nodename.to_string(),
        token: token.clone(),
        tls: tls_files.iter().map(|(n, _)| *n).collect(),
    };
    let conf = network_config(&template, &placeholders(&get, &found)?)?;
    let mut binaries = Vec::new();
    let mut sources = Vec::new();
    for name in ["calico", "calico-ipam"] {
        if skip.iter().any(|s| s == name) {
            continue;
        }
        let dst = bin_dir.join(name);
        if !update && dst.exists() {
            continue;
        }
        let src = from.join(name);
        sources.push((dst, std::fs::read(&src).map_err(io("read", &src))?));
    }

    // Writes.
    let tls_dir = dir.join("calico-tls");
    match std::fs::remove_dir_all(&tls_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("remove", &tls_dir)(e));
        }
        _ => {}
    }
    let mut tls = Vec::new();
    for (name, (bytes, mode)) in &tls_files {
        let dst = tls_dir.join(name);
        place(&dst, bytes, *mode)?;
        tls.push(dst);
    }
    for (dst, bytes) in sources {
        place(&dst, &bytes, 0o755)?;
        binaries.push(dst);
    }
    let kubeconfig_path = match (&api, &token) {
        (Some((host, port, api_tls)), Some(token)) => {
            let path = dir.join("calico-kubeconfig");
            let text = kubeconfig(
                &or("KUBERNETES_SERVICE_PROTOCOL", "https"),
                host,
                port,
                api_tls,
                token,
            );
            place(&path, text.as_bytes(), 0o600)?;
            Some(path)
        }
        _ => None,
    };
    let name = or("CNI_CONF_NAME", "10-calico.conflist");
    let conflist = dir.join(&name);
    place(&conflist, conf.as_bytes(), 0o600)?;
    let old = or("CNI_OLD_CONF_NAME", "10-calico.conflist");
    if old != name {
        match std::fs::remove_file(dir.join(&old)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                warnings.push(format!("cannot remove the old {old}: {e}"));
            }
            _ => {}
        }
    }
    Ok(Installed {
        binaries,
        conflist,
        tls,
        kubeconfig: kubeconfig_path,
        warnings,
    })
}

#[cfg(test)]
mod tests;
