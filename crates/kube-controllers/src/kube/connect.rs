//! The Kubernetes client settings, found as Calico's calico-kube-controllers
//! finds them: the kubeconfig file named by `KUBECONFIG` when set, else the
//! in-cluster service account (`KUBERNETES_SERVICE_HOST`/`_PORT` and the
//! `token` and `ca.crt` in [`SERVICE_ACCOUNT_DIR`]). `K8S_API_ENDPOINT`,
//! when set, overrides the server URL of either.
//!
//! Invariants: every failure names the file or variable at fault; the
//! in-cluster token and CA are read here, so an unreadable one is an error
//! at start, not at the first request.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::KubeError;

/// Where a pod's service account files are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn config_err(e: impl std::fmt::Display) -> KubeError {
    KubeError::Config(e.to_string())
}

/// The settings through `get` (e.g. `|k| std::env::var(k).ok()`), with the
/// in-cluster files in `sa_dir` (normally [`SERVICE_ACCOUNT_DIR`]).
pub fn load(
    get: &dyn Fn(&str) -> Option<String>,
    sa_dir: &Path,
) -> Result<kube::Config, KubeError> {
    let mut config = match get("KUBECONFIG").filter(|p| !p.is_empty()) {
        Some(path) => from_kubeconfig(Path::new(&path))?,
        None => in_cluster(sa_dir, get)?,
    };
    if let Some(url) = get("K8S_API_ENDPOINT").filter(|u| !u.is_empty()) {
        config.cluster_url = url
            .parse()
            .map_err(|e| config_err(format!("K8S_API_ENDPOINT {url:?}: {e}")))?;
    }
    Ok(config)
}

fn resolve(kc: Kubeconfig, what: &str) -> Result<kube::Config, KubeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(config_err)?;
    rt.block_on(kube::Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions::default(),
    ))
    .map_err(|e| config_err(format!("{what}: {e}")))
}

/// The settings of the current context of the kubeconfig file at `path`.
pub fn from_kubeconfig(path: &Path) -> Result<kube::Config, KubeError> {
    let what = format!("KUBECONFIG {}", path.display());
    if !path.is_file() {
        return Err(config_err(format!(
            "{what}: no such file; set KUBECONFIG to a kubeconfig, or unset it in a pod"
        )));
    }
    let kc = Kubeconfig::read_from(path).map_err(|e| config_err(format!("{what}: {e}")))?;
    resolve(kc, &what)
}

/// The in-cluster settings: the server `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`
/// (read through `get`), the bearer token `dir/token` (re-read as it is
/// rotated) and the CA `dir/ca.crt`.
pub fn in_cluster(
    dir: &Path,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<kube::Config, KubeError> {
    let var = |k: &str| {
        get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            config_err(format!(
                "{k} is not set: not in a pod; set KUBECONFIG to a kubeconfig file"
            ))
        })
    };
    let host = var("KUBERNETES_SERVICE_HOST")?;
    let port = var("KUBERNETES_SERVICE_PORT")?;
    let port: u16 = port
        .parse()
        .map_err(|e| config_err(format!("KUBERNETES_SERVICE_PORT {port:?}: {e}")))?;
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host,
    };
    let token = dir.join("token");
    // kube-rs re-reads a token file as it is rotated but sends it as is;
    // one with surrounding white space is sent trimmed, and not re-read.
    let user = match std::fs::read_to_string(&token) {
        Ok(t) if t.trim() == t && !t.is_empty() => {
            serde_json::json!({"tokenFile": token.to_string_lossy()})
        }
        Ok(t) if !t.trim().is_empty() => serde_json::json!({"token": t.trim()}),
        Ok(_) => {
            return Err(config_err(format!(
                "service account token {} is empty",
                token.display()
            )));
        }
        Err(e) => {
            return Err(config_err(format!(
                "reading the service account token {}: {e}",
                token.display()
            )));
        }
    };
    let ca = dir.join("ca.crt");
    if let Err(e) = std::fs::read(&ca) {
        return Err(config_err(format!(
            "reading the service account CA {}: {e}",
            ca.display()
        )));
    }
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|_| "default".into());
    let kc: Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority": ca.to_string_lossy()}}],
        "users": [{"name": "in-cluster", "user": user}],
        "contexts": [{"name": "in-cluster", "context": {
            "cluster": "in-cluster", "user": "in-cluster", "namespace": namespace}}]
    }))
    .map_err(config_err)?;
    resolve(kc, &format!("service account in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(kv: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| kv.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn err(r: Result<kube::Config, KubeError>) -> String {
        match r {
            Ok(c) => panic!("loaded {:?}", c.cluster_url),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_their_cause() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = err(load(&env(&[("KUBECONFIG", "/nonexistent/kc")]), dir.path()));
        assert!(
            e.contains("/nonexistent/kc") && e.contains("no such file"),
            "{e}"
        );
        let bad = dir.path().join("kc");
        std::fs::write(&bad, "clusters: [unterminated").unwrap_or_else(|e| panic!("{e}"));
        let e = err(from_kubeconfig(&bad));
        assert!(e.contains(&bad.display().to_string()), "{e}");
        let e = err(load(&env(&[]), dir.path()));
        assert!(e.contains("KUBERNETES_SERVICE_HOST"), "{e}");
        let host = [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ];
        let e = err(in_cluster(dir.path(), &env(&host)));
        assert!(
            e.contains("service account token") && e.contains("token"),
            "{e}"
        );
        std::fs::write(dir.path().join("token"), "t").unwrap_or_else(|e| panic!("{e}"));
        let e = err(in_cluster(dir.path(), &env(&host)));
        assert!(e.contains("ca.crt"), "{e}");
    }

    #[test]
    fn kubeconfig_server_and_endpoint_override() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kc = dir.path().join("kc");
        std::fs::write(
            &kc,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:8080\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let path = kc.to_string_lossy().to_string();
        let c = load(&env(&[("KUBECONFIG", &path)]), dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.cluster_url.to_string(), "http://127.0.0.1:8080/");
        let c = load(
            &env(&[
                ("KUBECONFIG", &path),
                ("K8S_API_ENDPOINT", "http://10.1.2.3:6443"),
            ]),
            dir.path(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.cluster_url.to_string(), "http://10.1.2.3:6443/");
        let e = err(load(
            &env(&[("KUBECONFIG", &path), ("K8S_API_ENDPOINT", "not a url")]),
            dir.path(),
        ));
        assert!(e.contains("K8S_API_ENDPOINT"), "{e}");
    }
}
