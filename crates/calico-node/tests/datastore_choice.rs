//! calico-node's datastore when `ETCD_ENDPOINTS` is set without
//! `DATASTORE_TYPE`, as in `calico-etcd.yaml`: the etcd, as Calico's
//! calico-node (default type etcdv3), never the local file.

#![allow(clippy::unwrap_used)] // the shared harness (node_host) unwraps: a failed unwrap is a failed test

use calico_testutil::require_root;

#[allow(dead_code)] // node.rs uses the rest of the harness
mod node_host;
use node_host::{Host, stderr};

#[test]
fn etcd_endpoints_without_a_datastore_type_mean_etcd() {
    require_root!();
    let mut h = Host::new(true);
    // calico-etcd.yaml's env: ETCD_ENDPOINTS, no DATASTORE_TYPE. The local
    // store's file is the test's, so a wrong choice shows without touching
    // the host's store.
    h.store.retain(|(k, _)| k != "DATASTORE_TYPE");
    let local = h.dir.path().join("local.db");
    let env = [
        ("NODENAME", "node-e"),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_CIDR", "10.81.0.0/16"),
        ("DATASTORE_PATH", local.to_str().unwrap()),
    ];
    let out = h.node(&["-startup"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!local.exists(), "calico-node opened the local store");
    // Read back from the etcd, named explicitly.
    let calicoctl = calico_testutil::workspace_bin("calicoctl");
    let etcd = |args: &[&str]| {
        h.cmd(
            calicoctl.to_str().unwrap(),
            args,
            &[("DATASTORE_TYPE", "etcdv3")],
        )
        .output()
        .unwrap()
    };
    let node = etcd(&["get", "node", "node-e", "-o", "json"]);
    assert!(
        node.status.success(),
        "the node is not in etcd: {}",
        stderr(&node)
    );
    let pools =
        String::from_utf8_lossy(&etcd(&["get", "ippool", "-o", "wide"]).stdout).into_owned();
    assert!(pools.contains("10.81.0.0/16"), "{pools}");
}
