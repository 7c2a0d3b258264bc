//! Start-up writes the ClusterInformation `default` as Calico's calico-node
//! does (`calicoVersion`, `clusterGUID` kept once made, `datastoreReady`
//! only when unset, `clusterType` from `CLUSTER_TYPE`), so `calicoctl
//! version` shows the cluster version; a locked datastore stays locked.
//! The real binary on a SQLite file and on a real etcd (`node_host`).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_testutil::require_root;

#[allow(dead_code)] // helpers other tests use
mod node_host;
use node_host::{Host, stderr};

const ENV: [(&str, &str); 3] = [
    ("NODENAME", "node-a"),
    ("CALICO_NETWORKING_BACKEND", "vxlan"),
    ("CALICO_IPV4POOL_CIDR", "10.80.0.0/16"),
];

fn startup(h: &Host, cluster_type: &str) {
    let mut env = ENV.to_vec();
    env.push(("CLUSTER_TYPE", cluster_type));
    let out = h.node(&["-startup"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn cluster_information(h: Host) {
    // Before start-up there is none: no cluster version to show.
    let v = h.calicoctl(&["version"]);
    assert!(!v.contains("Cluster Version"), "{v}");
    startup(&h, "k8s,bgp");
    let ci = h.get("clusterinformation", "default");
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(ci["spec"]["calicoVersion"], version.as_str(), "{ci}");
    assert_eq!(ci["spec"]["datastoreReady"], true, "{ci}");
    assert_eq!(ci["spec"]["clusterType"], "k8s,bgp", "{ci}");
    let guid = ci["spec"]["clusterGUID"].as_str().unwrap().to_string();
    assert!(
        guid.len() == 32 && guid.chars().all(|c| c.is_ascii_hexdigit()),
        "{guid}"
    );
    let v = h.calicoctl(&["version"]);
    assert!(
        v.contains(&format!("Cluster Version:   {version}\n"))
            && v.contains("Cluster Type:      k8s,bgp\n"),
        "{v}"
    );
    let table = h.calicoctl(&["get", "clusterinformation"]);
    assert!(
        table.starts_with("NAME") && table.contains("DATASTOREREADY") && table.contains(&guid),
        "{table}"
    );

    // Again, with another type: the GUID stays, the type is added.
    startup(&h, "k8s,typha");
    let ci = h.get("clusterinformation", "default");
    assert_eq!(ci["spec"]["clusterGUID"], guid.as_str(), "{ci}");
    assert_eq!(ci["spec"]["clusterType"], "k8s,bgp,typha", "{ci}");

    // A locked datastore (a migration) is not unlocked by a start-up.
    h.calicoctl(&["datastore", "migrate", "lock"]);
    let _ = h.node(&["-startup"], &ENV);
    let ci = h.get("clusterinformation", "default");
    assert_eq!(ci["spec"]["datastoreReady"], false, "{ci}");
    assert_eq!(ci["spec"]["clusterGUID"], guid.as_str(), "{ci}");
    h.calicoctl(&["datastore", "migrate", "unlock"]);
}

#[test]
fn local() {
    require_root!();
    cluster_information(Host::new(false));
}

#[test]
fn etcd() {
    require_root!();
    cluster_information(Host::new(true));
}
