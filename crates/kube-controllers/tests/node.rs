//! The node controller against a real etcd: a Kubernetes Node deleted →
//! (dry run first: nothing written) its Calico Node, endpoints, addresses and
//! affinities gone, the other node untouched, and `calicoctl ipam check`
//! clean; an address whose pod is gone released only after the grace period.

mod etcd;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use calico_api::{Kind, Resource, decode_documents};
use calico_datastore::Client;
use calico_ipam::{AssignArgs, Ipam, Use};
use calico_kube_controllers::node::NodeController;
use calico_testutil::{EtcdServer, workspace_bin};
use etcd::etcd_client;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn apply(c: &Client, yaml: &str) {
    for r in ok(decode_documents(yaml)) {
        let r: Resource = ok(r);
        ok(c.apply(r));
    }
}

fn pod(c: &Client, ipam: &Ipam, node: &str, name: &str) -> std::net::IpAddr {
    let a = ok(ipam.auto_assign(&AssignArgs {
        handle: format!("k8s-pod-network.{name}"),
        node: node.into(),
        num_v4: 1,
        num_v6: 0,
        v4_pools: vec![],
        v6_pools: vec![],
        attrs: BTreeMap::from([
            ("node".to_string(), node.to_string()),
            ("namespace".to_string(), "prod".to_string()),
            ("pod".to_string(), name.to_string()),
        ]),
        use_: Use::Workload,
    }));
    let ip = a.v4[0];
    apply(
        c,
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {{name: {node}-k8s-{name}-eth0, namespace: prod}}\nspec: {{orchestrator: k8s, node: {node}, pod: {name}, endpoint: eth0, containerID: {name}, interfaceName: cali{name}, ipNetworks: ['{ip}/32'], profiles: [kns.prod]}}\n"
        ),
    );
    ip
}

fn calicoctl() -> std::path::PathBuf {
    let bin = workspace_bin("calicoctl");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = ok(Command::new(cargo)
            .args(["build", "-p", "calicoctl"])
            .status());
        assert!(st.success(), "cargo build -p calicoctl failed");
    }
    bin
}

fn ipam_check(etcd: &EtcdServer) -> (bool, String) {
    let out = ok(Command::new(calicoctl())
        .args(["ipam", "check", "--show-problem-ips"])
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", etcd.endpoint())
        .output());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A real etcd with one pool and these Calico Nodes.
fn cluster(nodes: &[&str]) -> (EtcdServer, Client, Ipam) {
    let (etcd, c) = etcd_client();
    let ipam = Ipam::new(c.store().clone());
    let mut yaml = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.9.0.0/16, blockSize: 26}\n".to_string();
    for n in nodes {
        yaml += &format!(
            "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {n}}}\n"
        );
    }
    apply(&c, &yaml);
    (etcd, c, ipam)
}

#[test]
fn deleted_node_cleaned_and_ipam_check_clean() {
    let (etcd, c, ipam) = cluster(&["node1", "node2"]);
    let keep = pod(&c, &ipam, "node1", "a");
    pod(&c, &ipam, "node2", "b");
    pod(&c, &ipam, "node2", "c");
    let (clean, report) = ipam_check(&etcd);
    assert!(clean, "before: {report}");
    let nodes: BTreeSet<String> = ["node1".to_string()].into();
    let pods: BTreeSet<(String, String)> = [("prod".to_string(), "a".to_string())].into();
    let mut ctl = NodeController::new(Duration::from_secs(300));

    // Dry run: reported, nothing written.
    let rev = ok(c.store().list("/")).1;
    let dry = ok(ctl.pass(&c, &nodes, &pods, Instant::now(), true));
    assert_eq!(dry.nodes, vec!["node2".to_string()]);
    assert_eq!(dry.endpoints.len(), 2);
    assert_eq!(dry.handles.len(), 2);
    assert_eq!(ok(c.store().list("/")).1, rev, "dry run wrote");

    let done = ok(ctl.pass(&c, &nodes, &pods, Instant::now(), false));
    assert_eq!(done.nodes, dry.nodes);
    assert_eq!(done.handles, dry.handles);
    assert_eq!(done.blocks.len(), 1, "{done:?}");
    let (left, _) = ok(c.list(Kind::Node, None));
    assert_eq!(left.len(), 1);
    assert_eq!(ok(c.list(Kind::WorkloadEndpoint, None)).0.len(), 1);
    let aff = ok(ipam.affinities());
    assert!(aff.iter().all(|(n, _)| n == "node1"), "{aff:?}");
    assert!(
        ok(ipam.assignment(keep)).is_some(),
        "live pod's address released"
    );
    let (clean, report) = ipam_check(&etcd);
    assert!(clean, "after: {report}");
    // A second pass has nothing to do.
    let again = ok(ctl.pass(&c, &nodes, &pods, Instant::now(), false));
    assert_eq!(again, Default::default());
}

#[test]
fn address_of_gone_pod_released_after_grace() {
    let (etcd, c, ipam) = cluster(&["node1"]);
    let ip = pod(&c, &ipam, "node1", "gone");
    // The pod went without a CNI DEL: its endpoint is gone, its address
    // leaked (and `ipam check` says so: the check reads this etcd).
    let wep = ok(c.list(Kind::WorkloadEndpoint, None)).0.remove(0);
    ok(c.delete(&wep.key(), None));
    let (clean, report) = ipam_check(&etcd);
    assert!(!clean, "leak not seen: {report}");
    let nodes: BTreeSet<String> = ["node1".to_string()].into();
    let grace = Duration::from_secs(60);
    let mut ctl = NodeController::new(grace);
    let t0 = Instant::now();
    assert!(
        ok(ctl.pass(&c, &nodes, &BTreeSet::new(), t0, false))
            .handles
            .is_empty()
    );
    assert!(ok(ipam.assignment(ip)).is_some());
    let r = ok(ctl.pass(&c, &nodes, &BTreeSet::new(), t0 + grace, false));
    assert_eq!(r.handles, vec!["k8s-pod-network.gone".to_string()]);
    assert!(ok(ipam.assignment(ip)).is_none());
    let (clean, report) = ipam_check(&etcd);
    assert!(clean, "after: {report}");
}
