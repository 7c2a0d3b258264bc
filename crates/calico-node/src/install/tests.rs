//! The placeholders one by one (Calico's names, sources and defaults),
//! filling Calico's own manifests' templates, and the kubeconfig.

use std::collections::HashMap;

use super::*;

fn lookup(env: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn found() -> Found {
    Found {
        nodename: "node-1".into(),
        ..Found::default()
    }
}

/// `placeholder` filled alone, from `env` and `found`.
fn filled_with(placeholder: &str, env: &[(&str, &str)], found: &Found) -> String {
    let values = placeholders(lookup(env), found).unwrap_or_else(|e| panic!("{e}"));
    fill(placeholder, &values)
}

fn filled(placeholder: &str, env: &[(&str, &str)]) -> String {
    filled_with(placeholder, env, &found())
}

/// Each placeholder: its default, then its variable.
fn plain(placeholder: &str, var: &str, default: &str) {
    assert_eq!(filled(placeholder, &[]), default, "{placeholder}");
    assert_eq!(filled(placeholder, &[(var, "")]), default, "{placeholder}");
    assert_eq!(
        filled(placeholder, &[(var, "given-value")]),
        "given-value",
        "{placeholder}"
    );
}

#[test]
fn log_level() {
    plain("__LOG_LEVEL__", "LOG_LEVEL", "info");
}

#[test]
fn log_file_path() {
    plain(
        "__LOG_FILE_PATH__",
        "LOG_FILE_PATH",
        "/var/log/calico/cni/cni.log",
    );
}

#[test]
fn log_file_max_size_age_count() {
    plain("__LOG_FILE_MAX_SIZE__", "LOG_FILE_MAX_SIZE", "100");
    plain("__LOG_FILE_MAX_AGE__", "LOG_FILE_MAX_AGE", "30");
    plain("__LOG_FILE_MAX_COUNT__", "LOG_FILE_MAX_COUNT", "10");
}

#[test]
fn datastore_type_follows_the_datastore_rule() {
    let t = "__DATASTORE_TYPE__";
    assert_eq!(filled(t, &[]), "local");
    assert_eq!(
        filled(t, &[("ETCD_ENDPOINTS", "http://10.0.0.1:2379")]),
        "etcdv3"
    );
    assert_eq!(
        filled(t, &[("CALICO_ETCD_ENDPOINTS", "http://10.0.0.1:2379")]),
        "etcdv3"
    );
    assert_eq!(
        filled(
            t,
            &[
                ("DATASTORE_TYPE", "local"),
                ("ETCD_ENDPOINTS", "http://10.0.0.1:2379")
            ]
        ),
        "local"
    );
    assert_eq!(filled(t, &[("DATASTORE_TYPE", "etcdv3")]), "etcdv3");
}

#[test]
fn datastore_path() {
    plain(
        "__DATASTORE_PATH__",
        "DATASTORE_PATH",
        "/var/lib/calico/datastore.db",
    );
}

#[test]
fn kubernetes_node_name() {
    plain("__KUBERNETES_NODE_NAME__", "KUBERNETES_NODE_NAME", "node-1");
}

#[test]
fn kubeconfig_filepath_is_in_the_cni_net_dir() {
    let t = "__KUBECONFIG_FILEPATH__";
    assert_eq!(filled(t, &[]), "/etc/cni/net.d/calico-kubeconfig");
    assert_eq!(
        filled(t, &[("CNI_NET_DIR", "/host/net.d")]),
        "/host/net.d/calico-kubeconfig"
    );
}

#[test]
fn cni_mtu_is_a_number() {
    plain_mtu();
    let e = placeholders(lookup(&[("CNI_MTU", "large")]), &found());
    assert!(
        matches!(&e, Err(InstallError::Setting { var: "CNI_MTU", .. })),
        "{e:?}"
    );
}

fn plain_mtu() {
    assert_eq!(filled("__CNI_MTU__", &[]), "1500");
    assert_eq!(filled("__CNI_MTU__", &[("CNI_MTU", "0")]), "0");
    assert_eq!(filled("__CNI_MTU__", &[("CNI_MTU", " 1440 ")]), "1440");
}

#[test]
fn kubernetes_service_host_and_port() {
    plain("__KUBERNETES_SERVICE_HOST__", "KUBERNETES_SERVICE_HOST", "");
    plain("__KUBERNETES_SERVICE_PORT__", "KUBERNETES_SERVICE_PORT", "");
}

#[test]
fn serviceaccount_token() {
    assert_eq!(filled("__SERVICEACCOUNT_TOKEN__", &[]), "");
    let pod = Found {
        token: Some("eyJhbGciOi.token".into()),
        ..found()
    };
    assert_eq!(
        filled_with("__SERVICEACCOUNT_TOKEN__", &[], &pod),
        "eyJhbGciOi.token"
    );
}

#[test]
fn etcd_tls_files_only_when_installed() {
    for (placeholder, file) in [
        ("__ETCD_KEY_FILE__", "etcd-key"),
        ("__ETCD_CERT_FILE__", "etcd-cert"),
        ("__ETCD_CA_CERT_FILE__", "etcd-ca"),
    ] {
        assert_eq!(filled(placeholder, &[]), "", "{placeholder}");
        let others = Found {
            tls: TLS_FILES.into_iter().filter(|f| *f != file).collect(),
            ..found()
        };
        assert_eq!(filled_with(placeholder, &[], &others), "", "{placeholder}");
        let with = Found {
            tls: vec![file],
            ..found()
        };
        assert_eq!(
            filled_with(placeholder, &[("CNI_NET_DIR", "/x/net.d")], &with),
            format!("/x/net.d/calico-tls/{file}")
        );
    }
}

#[test]
fn etcd_endpoints_and_discovery_srv() {
    plain("__ETCD_ENDPOINTS__", "ETCD_ENDPOINTS", "");
    plain("__ETCD_DISCOVERY_SRV__", "ETCD_DISCOVERY_SRV", "");
}

#[test]
fn require_mtu_file() {
    plain("__REQUIRE_MTU_FILE__", "REQUIRE_MTU_FILE", "false");
}

/// Every placeholder Calico's installer (v3.31) fills is filled here.
#[test]
fn every_placeholder_of_calicos_installer() {
    let calico = [
        "__LOG_LEVEL__",
        "__LOG_FILE_PATH__",
        "__LOG_FILE_MAX_SIZE__",
        "__LOG_FILE_MAX_AGE__",
        "__LOG_FILE_MAX_COUNT__",
        "__DATASTORE_TYPE__",
        "__KUBERNETES_NODE_NAME__",
        "__KUBECONFIG_FILEPATH__",
        "__CNI_MTU__",
        "__KUBERNETES_SERVICE_HOST__",
        "__KUBERNETES_SERVICE_PORT__",
        "__SERVICEACCOUNT_TOKEN__",
        "__ETCD_CERT_FILE__",
        "__ETCD_CA_CERT_FILE__",
        "__ETCD_KEY_FILE__",
        "__ETCD_ENDPOINTS__",
        "__ETCD_DISCOVERY_SRV__",
        "__REQUIRE_MTU_FILE__",
    ];
    let values = placeholders(lookup(&[]), &found()).unwrap_or_else(|e| panic!("{e}"));
    for p in calico {
        assert!(values.iter().any(|(k, _)| *k == p), "{p} is not filled");
    }
    let all = calico.join(" ");
    let out = fill(&all, &values);
    assert!(!out.contains("__"), "{out}");
    // Every occurrence, not only the first.
    assert_eq!(
        fill("__CNI_MTU__ __CNI_MTU__", &values),
        "1500 1500".to_string()
    );
}

/// `cni_network_config` of Calico v3.31's calico-etcd.yaml, unchanged.
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

#[test]
fn calico_etcd_yaml_template() {
    let env = [
        ("ETCD_ENDPOINTS", "https://10.0.0.1:2379"),
        ("CNI_MTU", "0"),
    ];
    let with_tls = Found {
        tls: TLS_FILES.to_vec(),
        ..found()
    };
    let values = placeholders(lookup(&env), &with_tls).unwrap_or_else(|e| panic!("{e}"));
    let conf = network_config(CALICO_ETCD_YAML, &values).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&conf).unwrap_or_else(|e| panic!("{e}"));
    let calico = &v["plugins"][0];
    assert_eq!(calico["etcd_endpoints"], "https://10.0.0.1:2379");
    assert_eq!(
        calico["etcd_key_file"],
        "/etc/cni/net.d/calico-tls/etcd-key"
    );
    assert_eq!(
        calico["etcd_cert_file"],
        "/etc/cni/net.d/calico-tls/etcd-cert"
    );
    assert_eq!(
        calico["etcd_ca_cert_file"],
        "/etc/cni/net.d/calico-tls/etcd-ca"
    );
    assert_eq!(calico["mtu"], 0);
    assert_eq!(
        calico["kubernetes"]["kubeconfig"],
        "/etc/cni/net.d/calico-kubeconfig"
    );
}

#[test]
fn the_default_template_fills_to_json() {
    let values = placeholders(lookup(&[]), &found()).unwrap_or_else(|e| panic!("{e}"));
    let conf = network_config(&default_template(), &values).unwrap_or_else(|e| panic!("{e}"));
    assert!(!conf.contains("__"), "{conf}");
    let v: serde_json::Value = serde_json::from_str(&conf).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["plugins"][0]["type"], "calico");
    assert_eq!(v["plugins"][0]["mtu"], 1500);
    assert_eq!(v["plugins"][0]["datastore_type"], "local");
}

#[test]
fn a_config_that_is_not_a_json_object_is_refused() {
    let values = placeholders(lookup(&[]), &found()).unwrap_or_else(|e| panic!("{e}"));
    for bad in ["{broken", "[1, 2]", r#"{"mtu": __LOG_LEVEL__}"#] {
        let e = network_config(bad, &values);
        assert!(matches!(e, Err(InstallError::NotJson(_))), "{bad}: {e:?}");
    }
}

#[test]
fn base64_as_rfc_4648() {
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(raw.as_bytes()), enc, "{raw:?}");
    }
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn kubeconfig_as_calicos() {
    let k = kubeconfig("", "10.96.0.1", "443", &ApiTls::Ca(b"foo".to_vec()), "tok");
    assert_eq!(
        k,
        "# Kubeconfig file for Calico CNI plugin.\napiVersion: v1\nkind: Config\nclusters:\n\
         - name: local\n  cluster:\n    server: https://10.96.0.1:443\n    certificate-authority-data: Zm9v\n\
         users:\n- name: calico\n  user:\n    token: tok\ncontexts:\n\
         - name: calico-context\n  context:\n    cluster: local\n    user: calico\n\
         current-context: calico-context\n"
    );
    let v6 = kubeconfig("https", "fd00::1", "6443", &ApiTls::SkipVerify, "tok");
    assert!(v6.contains("server: https://[fd00::1]:6443\n"), "{v6}");
    assert!(v6.contains("    insecure-skip-tls-verify: true\n"), "{v6}");
    let plain = kubeconfig("http", "[fd00::1]", "80", &ApiTls::System, "tok");
    assert!(plain.contains("server: http://[fd00::1]:80\n"), "{plain}");
    assert!(!plain.contains("certificate-authority"), "{plain}");
}

#[test]
fn booleans_as_go_reads_them() {
    for t in ["1", "t", "T", "true", "TRUE", "True"] {
        assert!(matches!(parse_bool("X", t), Ok(true)), "{t}");
    }
    for f in ["0", "f", "F", "false", "FALSE", "False"] {
        assert!(matches!(parse_bool("X", f), Ok(false)), "{f}");
    }
    assert!(parse_bool("UPDATE_CNI_BINARIES", "yes").is_err());
}
