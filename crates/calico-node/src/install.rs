//! `calico-node install-cni`: what Calico's install-cni does — copy the
//! `calico` and `calico-ipam` plugins into the CNI binary directory and
//! write the network configuration.
//!
//! Environment (Calico's names): `CNI_BIN_DIR` (/opt/cni/bin), `CNI_NET_DIR`
//! (/etc/cni/net.d), `CNI_CONF_NAME` (10-calico.conflist), `CNI_MTU`, and
//! `CNI_NETWORK_CONFIG`, a template whose `__KUBERNETES_NODE_NAME__`,
//! `__CNI_MTU__`, `__DATASTORE_TYPE__`, `__DATASTORE_PATH__` and
//! `__ETCD_ENDPOINTS__` are filled in. Files are written beside their
//! target and renamed into place, so a runtime never sees half a file.

use std::path::{Path, PathBuf};

use serde_json::json;

/// What was installed.
#[derive(Debug)]
pub struct Installed {
    pub binaries: Vec<PathBuf>,
    pub conflist: PathBuf,
}

fn place(path: &Path, content: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no directory", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, content).map_err(|e| format!("write {}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("rename to {}: {e}", path.display()))
}

/// The default conflist: calico, then portmap and bandwidth.
pub fn default_template() -> String {
    json!({
        "name": "k8s-pod-network",
        "cniVersion": "1.0.0",
        "plugins": [
            {"type": "calico", "log_level": "info", "log_file_path": "/var/log/calico/cni/cni.log",
             "datastore_type": "__DATASTORE_TYPE__", "datastore_path": "__DATASTORE_PATH__",
             "etcd_endpoints": "__ETCD_ENDPOINTS__", "nodename": "__KUBERNETES_NODE_NAME__",
             "mtu": "__CNI_MTU__", "ipam": {"type": "calico-ipam"}, "policy": {"type": "k8s"}},
            {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
    })
    .to_string()
    .replace("\"__CNI_MTU__\"", "__CNI_MTU__")
}

/// Installs from the directory `from` (where calico-node's siblings are).
pub fn install(
    from: &Path,
    get: impl Fn(&str) -> Option<String>,
    nodename: &str,
) -> Result<Installed, String> {
    let env = |k: &str, d: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.to_string())
    };
    let bin_dir = PathBuf::from(env("CNI_BIN_DIR", "/opt/cni/bin"));
    let net_dir = PathBuf::from(env("CNI_NET_DIR", "/etc/cni/net.d"));
    let mut binaries = Vec::new();
    for name in ["calico", "calico-ipam"] {
        let src = from.join(name);
        let bytes = std::fs::read(&src).map_err(|e| format!("read {}: {e}", src.display()))?;
        let dst = bin_dir.join(name);
        place(&dst, &bytes, 0o755)?;
        binaries.push(dst);
    }
    let mtu = env("CNI_MTU", "0");
    mtu.parse::<u32>()
        .map_err(|_| format!("CNI_MTU: {mtu:?} is not a number"))?;
    let conf = env("CNI_NETWORK_CONFIG", &default_template())
        .replace("__KUBERNETES_NODE_NAME__", nodename)
        .replace("__CNI_MTU__", &mtu)
        .replace("__DATASTORE_TYPE__", &env("DATASTORE_TYPE", "local"))
        .replace(
            "__DATASTORE_PATH__",
            &env("DATASTORE_PATH", "/var/lib/calico/datastore.db"),
        )
        .replace("__ETCD_ENDPOINTS__", &env("ETCD_ENDPOINTS", ""));
    let parsed: serde_json::Value = serde_json::from_str(&conf)
        .map_err(|e| format!("the network config is not JSON after filling in: {e}"))?;
    let pretty = serde_json::to_string_pretty(&parsed).map_err(|e| e.to_string())?;
    let conflist = net_dir.join(env("CNI_CONF_NAME", "10-calico.conflist"));
    place(&conflist, pretty.as_bytes(), 0o644)?;
    Ok(Installed { binaries, conflist })
}
