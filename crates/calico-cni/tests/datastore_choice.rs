//! The plugins' datastore when the network config names etcd endpoints but
//! no `datastore_type`, as the config `calico-etcd.yaml` installs does: etcd
//! (Calico's default type), never the local file.

use serde_json::{Value, json};

mod common;
use common::*;

/// A network config as `calico-etcd.yaml`'s installer leaves it (no TLS):
/// `etcd_endpoints` and empty `etcd_*_file` fields, no `datastore_type`.
/// `datastore_path` names a file of the test's, where the local store
/// would be (so a wrong choice shows without touching the host's store).
fn etcd_yaml_conf(ds: &Ds, version: &str, local: &std::path::Path) -> Value {
    let mut conf = ds.conf(version, "node-a", ipam_v4());
    let endpoints = ds.fields["etcd_endpoints"].clone();
    if let Some(c) = conf.as_object_mut() {
        c.remove("datastore_type");
        c.insert("etcd_endpoints".into(), endpoints);
        for f in ["etcd_key_file", "etcd_cert_file", "etcd_ca_cert_file"] {
            c.insert(f.into(), json!(""));
        }
        c.insert("datastore_path".into(), json!(local.display().to_string()));
        c.insert("ipam_socket".into(), json!("none"));
    }
    conf
}

fn call(bin: &str, command: &str, conf: &Value) -> Out {
    Call {
        bin,
        host_netns: None,
        command,
        container: "choice",
        netns: "/var/run/netns/choice".into(),
        ifname: "eth0",
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=choice;K8S_POD_INFRA_CONTAINER_ID=choice",
        path: "/opt/cni/bin",
    }
    .run(&conf.to_string())
}

#[test]
fn etcd_endpoints_without_a_datastore_type_mean_etcd() {
    let ds = etcd();
    ds.apply(&pool_yaml("p", "10.64.0.0/24", 28));
    let local = ds.dir.path().join("local.db");

    // calico STATUS: the pool is found, so the store asked is etcd.
    let conf = etcd_yaml_conf(&ds, "1.1.0", &local);
    let out = call(env!("CARGO_BIN_EXE_calico"), "STATUS", &conf);
    assert_eq!(out.code, 0, "{}", out.raw);

    // calico-ipam ADD: an address of etcd's pool, held in etcd.
    let conf = etcd_yaml_conf(&ds, "1.0.0", &local);
    let ipam = env!("CARGO_BIN_EXE_calico-ipam");
    let out = call(ipam, "ADD", &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let addrs = addresses(&out);
    assert!(
        addrs.len() == 1 && addrs[0].starts_with("10.64.0."),
        "{}",
        out.raw
    );
    let ip = addrs[0].trim_end_matches("/32");
    let (code, shown) = ds.calicoctl(&["ipam", "show", "--ip", ip]);
    assert!(code == 0 && shown.contains("is in use"), "{shown}");
    assert!(!local.exists(), "the plugins opened the local store");
    assert_eq!(call(ipam, "DEL", &conf).code, 0);
    let (_, shown) = ds.calicoctl(&["ipam", "show", "--ip", ip]);
    assert!(shown.contains("not assigned"), "{shown}");
}
