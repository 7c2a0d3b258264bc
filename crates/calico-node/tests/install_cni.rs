//! `calico-node install-cni` as Calico's install-cni init container runs
//! it: the `env:` of calico-etcd.yaml and calico.yaml, the etcd secret
//! mounted as kubelet mounts it, a fake service account directory — all in
//! temporary directories, no Kubernetes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_calico-node");

/// `cni_network_config` of Calico v3.31's calico-etcd.yaml.
const CALICO_ETCD_YAML: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "etcd_key_file": "__ETCD_KEY_FILE__",
      "etcd_cert_file": "__ETCD_CERT_FILE__",
      "etcd_ca_cert_file": "__ETCD_CA_CERT_FILE__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "__KUBECONFIG_FILEPATH__"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}"#;

/// `cni_network_config` of Calico v3.31's calico.yaml.
const CALICO_YAML: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": {
          "type": "calico-ipam"
      },
      "policy": {
          "type": "k8s"
      },
      "kubernetes": {
          "kubeconfig": "__KUBECONFIG_FILEPATH__"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {"portMappings": true}
    }
  ]
}"#;

/// A node's directories and the pod's mounts, all temporary.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let siblings = Path::new(BIN).parent().map(Path::to_path_buf);
        let calico = siblings.unwrap_or_default().join("calico");
        assert!(
            calico.exists(),
            "{} missing: build the workspace (cargo build --workspace)",
            calico.display()
        );
        Node {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn mode(&self, rel: &str) -> u32 {
        std::fs::metadata(self.path(rel))
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn json(&self, rel: &str) -> Value {
        serde_json::from_str(&self.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
    fn write(&self, rel: &str, text: &str, mode: u32) {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The etcd secret as kubelet mounts it: each key a symbolic link into
    /// `..data`, the files 0400 (the manifest's `defaultMode`).
    fn etcd_secret(&self) {
        for (name, text) in [
            ("etcd-key", "KEY PEM"),
            ("etcd-cert", "CERT PEM"),
            ("etcd-ca", "CA PEM"),
        ] {
            self.write(&format!("secrets/..data/{name}"), text, 0o400);
            std::os::unix::fs::symlink(
                format!("..data/{name}"),
                self.path(&format!("secrets/{name}")),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The pod's service account: a token and the cluster's CA.
    fn service_account(&self) {
        self.write("sa/token", "eyJhbGciOiJSUzI1NiJ9.pod-token\n", 0o644);
        self.write("sa/ca.crt", "CLUSTER CA\n", 0o644);
    }

    /// Runs install-cni with only `env` (and the directories) set.
    fn install(&self, env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("install-cni")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NODENAME", "node-i")
            .env("CNI_BIN_DIR", self.path("bin"))
            .env("CNI_NET_DIR", self.path("net.d"))
            .env("TLS_ASSETS_DIR", self.path("secrets"))
            .env("CALICO_SERVICEACCOUNT_DIR", self.path("sa"))
            .envs(env.iter().copied());
        c.output().unwrap_or_else(|e| panic!("{e}"))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn calico_etcd_yaml_with_tls_and_a_service_account() {
    let n = Node::new();
    n.etcd_secret();
    n.service_account();
    let net = n.path("net.d").display().to_string();
    // The install-cni container's env in calico-etcd.yaml (with
    // kubernetes-services-endpoint's two variables, as Kubernetes sets them).
    let out = n.install(&[
        ("CNI_CONF_NAME", "10-calico.conflist"),
        ("CNI_NETWORK_CONFIG", CALICO_ETCD_YAML),
        ("ETCD_ENDPOINTS", "https://10.0.0.10:2379"),
        ("CNI_MTU", "0"),
        ("SLEEP", "false"),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no warning expected");
    for b in ["calico", "calico-ipam"] {
        assert_eq!(n.mode(&format!("bin/{b}")), 0o755, "{b}");
    }
    // The TLS files: Calico's names, contents and modes.
    for (name, text) in [
        ("etcd-key", "KEY PEM"),
        ("etcd-cert", "CERT PEM"),
        ("etcd-ca", "CA PEM"),
    ] {
        let rel = format!("net.d/calico-tls/{name}");
        assert_eq!(n.read(&rel), text);
        assert_eq!(n.mode(&rel), 0o400, "{name}");
    }
    // The conflist: private, every placeholder filled.
    assert_eq!(n.mode("net.d/10-calico.conflist"), 0o600);
    let text = n.read("net.d/10-calico.conflist");
    assert!(!text.contains("__"), "{text}");
    let conf = n.json("net.d/10-calico.conflist");
    let calico = &conf["plugins"][0];
    assert_eq!(calico["etcd_endpoints"], "https://10.0.0.10:2379");
    assert_eq!(
        calico["etcd_key_file"],
        format!("{net}/calico-tls/etcd-key")
    );
    assert_eq!(
        calico["etcd_cert_file"],
        format!("{net}/calico-tls/etcd-cert")
    );
    assert_eq!(
        calico["etcd_ca_cert_file"],
        format!("{net}/calico-tls/etcd-ca")
    );
    assert_eq!(calico["mtu"], 0);
    assert_eq!(
        calico["kubernetes"]["kubeconfig"],
        format!("{net}/calico-kubeconfig")
    );
    // The kubeconfig: private, the API server, the CA, the pod's token.
    assert_eq!(n.mode("net.d/calico-kubeconfig"), 0o600);
    let kc = n.read("net.d/calico-kubeconfig");
    assert!(kc.contains("    server: https://10.96.0.1:443\n"), "{kc}");
    // base64("CLUSTER CA\n")
    assert!(
        kc.contains("    certificate-authority-data: Q0xVU1RFUiBDQQo=\n"),
        "{kc}"
    );
    assert!(
        kc.contains("    token: eyJhbGciOiJSUzI1NiJ9.pod-token\n"),
        "{kc}"
    );
    assert!(kc.contains("current-context: calico-context"), "{kc}");

    // Again without the secret: the old TLS files go, the paths are empty.
    std::fs::remove_dir_all(n.path("secrets")).unwrap_or_else(|e| panic!("{e}"));
    let out = n.install(&[
        ("CNI_NETWORK_CONFIG", CALICO_ETCD_YAML),
        ("ETCD_ENDPOINTS", "http://10.0.0.10:2379"),
        ("KUBERNETES_SERVICE_HOST", "fd00:96::1"),
        ("KUBERNETES_SERVICE_PORT", "6443"),
        ("SKIP_TLS_VERIFY", "true"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!n.path("net.d/calico-tls").exists());
    let calico = &n.json("net.d/10-calico.conflist")["plugins"][0];
    assert_eq!(calico["etcd_key_file"], "");
    assert_eq!(calico["etcd_ca_cert_file"], "");
    assert_eq!(calico["mtu"], 1500, "Calico's default CNI_MTU");
    let kc = n.read("net.d/calico-kubeconfig");
    assert!(
        kc.contains("    server: https://[fd00:96::1]:6443\n"),
        "{kc}"
    );
    assert!(kc.contains("    insecure-skip-tls-verify: true\n"), "{kc}");
}

#[test]
fn calico_yaml_and_the_kubernetes_placeholders() {
    let n = Node::new();
    n.service_account();
    let template = n.path("template.json");
    std::fs::write(
        &template,
        CALICO_YAML.replace(
            "\"log_level\": \"info\"",
            "\"log_level\": \"__LOG_LEVEL__\", \"log_file_path2\": \"__LOG_FILE_PATH__\", \
             \"token\": \"__SERVICEACCOUNT_TOKEN__\", \"api\": \"__KUBERNETES_SERVICE_HOST__:__KUBERNETES_SERVICE_PORT__\", \
             \"datastore_type2\": \"__DATASTORE_TYPE__\", \"require_mtu_file\": __REQUIRE_MTU_FILE__",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let template = template.display().to_string();
    // calico.yaml's env, the template from a file (which wins over the variable).
    let out = n.install(&[
        ("CNI_CONF_NAME", "10-calico.conflist"),
        ("CNI_NETWORK_CONFIG", "{not used"),
        ("CNI_NETWORK_CONFIG_FILE", &template),
        ("KUBERNETES_NODE_NAME", "k8s-node-7"),
        ("CNI_MTU", "1440"),
        ("SLEEP", "false"),
        ("LOG_LEVEL", "debug"),
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calico = &n.json("net.d/10-calico.conflist")["plugins"][0];
    assert_eq!(calico["nodename"], "k8s-node-7");
    assert_eq!(calico["mtu"], 1440);
    assert_eq!(calico["log_level"], "debug");
    assert_eq!(calico["log_file_path2"], "/var/log/calico/cni/cni.log");
    assert_eq!(calico["token"], "eyJhbGciOiJSUzI1NiJ9.pod-token");
    assert_eq!(calico["api"], "10.96.0.1:443");
    assert_eq!(calico["datastore_type2"], "local");
    assert_eq!(calico["require_mtu_file"], false);
    assert!(n.path("net.d/calico-kubeconfig").exists());
}

#[test]
fn outside_kubernetes_with_the_default_template() {
    let n = Node::new();
    // An old conflist of another name goes (CNI_OLD_CONF_NAME's default).
    n.write("net.d/10-calico.conflist", "{}", 0o644);
    let out = n.install(&[
        ("CNI_CONF_NAME", "20-calico.conflist"),
        ("ETCD_ENDPOINTS", "http://10.0.0.10:2379"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!n.path("net.d/10-calico.conflist").exists());
    assert!(!n.path("net.d/calico-kubeconfig").exists(), "not a pod");
    let conf = n.json("net.d/20-calico.conflist");
    let calico = &conf["plugins"][0];
    assert_eq!(calico["nodename"], "node-i");
    assert_eq!(calico["datastore_type"], "etcdv3", "ETCD_ENDPOINTS given");
    assert_eq!(calico["etcd_endpoints"], "http://10.0.0.10:2379");
    assert_eq!(calico["etcd_key_file"], "");
    assert_eq!(calico["ipam"]["type"], "calico-ipam");
    assert_eq!(conf["plugins"][1]["type"], "portmap");
}

#[test]
fn skip_and_keep_binaries() {
    let n = Node::new();
    n.write("bin/calico", "kept", 0o755);
    let out = n.install(&[
        ("UPDATE_CNI_BINARIES", "false"),
        ("SKIP_CNI_BINARIES", "calico-ipam"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(n.read("bin/calico"), "kept");
    assert!(!n.path("bin/calico-ipam").exists());
    let out = n.install(&[("UPDATE_CNI_BINARIES", "maybe")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("UPDATE_CNI_BINARIES"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_writes_nothing() {
    let n = Node::new();
    n.etcd_secret();
    // A pod's token without the API server's address.
    n.service_account();
    let out = n.install(&[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("KUBERNETES_SERVICE_HOST"),
        "{}",
        stderr(&out)
    );
    // A template that is not JSON once filled; an MTU that is no number.
    std::fs::remove_dir_all(n.path("sa")).unwrap_or_else(|e| panic!("{e}"));
    let out = n.install(&[("CNI_NETWORK_CONFIG", "{broken")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not JSON"), "{}", stderr(&out));
    let out = n.install(&[("CNI_MTU", "jumbo")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("CNI_MTU"), "{}", stderr(&out));
    let out = n.install(&[("CNI_NETWORK_CONFIG_FILE", "/nonexistent/calico.json")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/calico.json"),
        "{}",
        stderr(&out)
    );
    assert!(!n.path("bin").exists(), "binaries written");
    assert!(!n.path("net.d").exists(), "config written");
}
