//! Kubernetes objects enforced in a real two-node cluster: calico-node's
//! namespace-cluster harness (`crates/calico-node/tests/common`: nodes on
//! a bridge, a real etcd, calico-node agents, pods attached by the real
//! `calico` plugin), the fake Kubernetes API (`fake_api`) and the
//! `calico-kube-controllers` binary configured as Calico's deployment
//! configures it (KUBECONFIG, DATASTORE_TYPE=etcdv3, ENABLED_CONTROLLERS).
//! Nothing is applied with calicoctl: namespaces become profiles, pod
//! labels reach the endpoints, and a
//! NetworkPolicy created, changed and deleted in the API is enforced and
//! then lifted in the kernel, judged by real TCP connections.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

#[path = "../../calico-node/tests/common/mod.rs"]
mod common;
mod fake_api;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_testutil::{require_root, workspace_bin};
use common::Cluster;
use fake_api::{Ca, FakeApi};
use serde_json::{Value, json};

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: kc}\n\
                    spec: {cidr: 10.87.0.0/16, blockSize: 26, vxlanMode: Always}\n";
const NP: &str = "/apis/networking.k8s.io/v1/networkpolicies";

/// The controller process, ended with the test.
struct Controllers(Child);

impl Drop for Controllers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
           "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": labels},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn pod(ns: &str, name: &str, node: &str, labels: Value) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{name}"), "labels": labels},
           "spec": {"nodeName": node, "serviceAccountName": "default",
                    "containers": [{"name": "c", "image": "busybox"}]}})
}

fn node(name: &str) -> Value {
    json!({"kind": "Node", "apiVersion": "v1",
           "metadata": {"name": name, "uid": format!("uid-{name}")}, "spec": {}})
}

/// `server` in namespace prod admits TCP 8080 from pods labelled
/// role=allowed in the namespaces `ns_selector` picks.
fn policy(ns_selector: Value) -> Value {
    json!({"kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
           "metadata": {"name": "server-in", "namespace": "prod", "uid": "uid-np"},
           "spec": {"podSelector": {"matchLabels": {"app": "server"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": ns_selector,
                                           "podSelector": {"matchLabels": {"role": "allowed"}}}],
                                 "ports": [{"protocol": "TCP", "port": 8080}]}]}})
}

fn connects(from: &Path, to: SocketAddr) -> bool {
    NetNs::open(from)
        .unwrap()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok())
        .unwrap_or(false)
}

/// Waits (≤ 20 s) until every `(pod, reachable)` holds.
fn until(what: &str, to: SocketAddr, want: &[(&Path, bool)]) {
    let t = Instant::now();
    while !want.iter().all(|(p, ok)| connects(p, to) == *ok) {
        assert!(t.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{what}: {:?}", t.elapsed());
}

#[test]
fn network_policy_from_the_api_is_enforced_then_lifted() {
    require_root!();
    let bin = env!("CARGO_BIN_EXE_calico-kube-controllers");
    let built = [
        common::bin(),
        workspace_bin("calico"),
        workspace_bin("calico-ipam"),
        workspace_bin("calicoctl"),
    ];
    for b in built {
        assert!(
            b.exists(),
            "{} is not built: cargo build -p calico-node -p calico-cni -p calicoctl",
            b.display()
        );
    }
    let mut c = Cluster::new(2, POOL);
    // The API server lives in the fabric namespace, beside etcd, where the
    // controllers run; nothing leaves the test's namespaces.
    let fabric = NetNs::open(c.fabric.path()).unwrap();
    let api = fabric.run(FakeApi::start).unwrap();
    let kubeconfig = api.write_kubeconfig(&c.dir.path().join("kubeconfig"), Ca::None, None);
    api.put("/api/v1/nodes", node("node-1"));
    api.put("/api/v1/nodes", node("node-2"));
    api.put("/api/v1/namespaces", namespace("prod", json!({})));
    api.put("/api/v1/namespaces", namespace("dev", json!({})));
    api.put(
        "/api/v1/pods",
        pod("prod", "server", "node-2", json!({"app": "server"})),
    );
    api.put(
        "/api/v1/pods",
        pod("dev", "client", "node-1", json!({"app": "client"})),
    );
    api.put(
        "/api/v1/pods",
        pod("dev", "other", "node-1", json!({"app": "other"})),
    );
    let (server, ip) = c.add_pod_in(1, "prod", "server", json!({}));
    let (client, _) = c.add_pod_in(0, "dev", "client", json!({}));
    let (other, _) = c.add_pod_in(0, "dev", "other", json!({}));
    let to: SocketAddr = format!("{ip}:8080").parse().unwrap();
    let listener = NetNs::open(c.pods[server].path())
        .unwrap()
        .run(|| TcpListener::bind("0.0.0.0:8080"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || for _ in listener.incoming() {});

    let (pc, po) = (c.pods[client].path(), c.pods[other].path());
    let _kc = Controllers(
        Command::new("ip")
            .args(["netns", "exec", c.fabric.name(), bin])
            .env("KUBECONFIG", &kubeconfig)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", c.etcd.endpoint())
            .env(
                "ENABLED_CONTROLLERS",
                "node,policy,namespace,serviceaccount,workloadendpoint",
            )
            .env("LOG_LEVEL", "warning")
            .env("HOSTNAME", "kc-test")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The namespace controller writes the kns.* profiles (allow, labels
    // to apply); with no policy everything passes.
    let t = Instant::now();
    loop {
        let p = c.calicoctl(&["get", "profiles"]);
        if p.contains("kns.prod") && p.contains("kns.dev") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no kns profiles: {p}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    until("no policy, all pass", to, &[(&pc, true), (&po, true)]);
    // A NetworkPolicy created in the API: only role=allowed (in any
    // namespace) may reach the server.
    api.put(NP, policy(json!({})));
    until(
        "the new NetworkPolicy blocks unlabelled clients",
        to,
        &[(&pc, false), (&po, false)],
    );
    // Mirrored where calicoctl and calico-node read Kubernetes policies.
    let listed = c.calicoctl(&["get", "networkpolicy", "-n", "prod"]);
    assert!(listed.contains("knp.default.server-in"), "{listed}");
    // Pod relabelled in the API → its endpoint's labels → the policy's set.
    api.put(
        "/api/v1/pods",
        pod(
            "dev",
            "client",
            "node-1",
            json!({"app": "client", "role": "allowed"}),
        ),
    );
    until(
        "the relabelled pod is admitted",
        to,
        &[(&pc, true), (&po, false)],
    );
    // The policy changed: only namespaces labelled team=a.
    api.put(NP, policy(json!({"matchLabels": {"team": "a"}})));
    until(
        "the changed policy needs team=a",
        to,
        &[(&pc, false), (&po, false)],
    );
    api.put("/api/v1/namespaces", namespace("dev", json!({"team": "a"})));
    until(
        "the namespace label admits the client",
        to,
        &[(&pc, true), (&po, false)],
    );
    // Deleted: lifted for everyone.
    api.delete(NP, "prod", "server-in");
    until(
        "the deleted policy is lifted",
        to,
        &[(&pc, true), (&po, true)],
    );
    let listed = c.calicoctl(&["get", "networkpolicy", "-n", "prod"]);
    assert!(!listed.contains("server-in"), "{listed}");
    // The node controller left the live nodes and their endpoints alone.
    let weps = c.calicoctl(&["get", "workloadendpoints", "-A"]);
    assert_eq!(weps.matches(" cali").count(), 3, "{weps}");
}
