//! Felix's routes through workload interfaces, in a test namespace with the
//! real agent: a new interface's routes are left alone for the grace
//! period (the plugin routes a pod before it writes the pod's endpoint),
//! and when it ends a route no endpoint claims goes, IPv4 and IPv6 alike.
//! Routes are read back every `routeRefreshInterval` (2 s here); a route
//! spared for its interface's grace is looked at again when the grace ends.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::process::Stdio;
use std::time::{Duration, Instant};

use calico_testutil::{free_port, require_root};

#[allow(dead_code)] // each test binary uses part of the harness
mod node_host;
use node_host::{Agent, BIN, Host};

/// Writes a workload endpoint of node `node-g` for `iface` with `ip`.
fn endpoint(h: &Host, iface: &str, ip: &str) {
    let f = h.dir.path().join(format!("{iface}.json"));
    let doc = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("node--g-k8s-{iface}-eth0"), "namespace": "default"},
        "spec": {"orchestrator": "k8s", "node": "node-g", "pod": iface, "endpoint": "eth0",
                 "interfaceName": iface, "ipNetworks": [format!("{ip}/32")]}});
    std::fs::write(&f, doc.to_string()).unwrap();
    h.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
}

/// Waits until `ip route show` has `want` (a pass of the agent made it).
fn until_route(h: &Host, want: &str) {
    let t = Instant::now();
    loop {
        let routes = h.ns.exec(&["ip", "route", "show"]);
        if routes.contains(want) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no {want:?}: {routes}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn routes_through_a_new_interface_wait_out_the_grace_period_then_go() {
    require_root!();
    let h = Host::new(false);
    for (host, peer) in [
        ("caligr1", "podgr1"),
        ("calim1", "podm1"),
        ("calim2", "podm2"),
    ] {
        h.ns.exec(&[
            "sh",
            "-c",
            &format!("ip link add {host} type veth peer name {peer} && ip link set {host} up && ip link set {peer} up"),
        ]);
    }
    let port = free_port().to_string();
    let env = [
        ("NODENAME", "node-g"),
        ("FELIX_HEALTHPORT", port.as_str()),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_CIDR", "10.87.0.0/16"),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
        ("FELIX_ROUTEREFRESHINTERVAL", "2"),
    ];
    let _agent = Agent(h.cmd(BIN, &[], &env).stderr(Stdio::null()).spawn().unwrap());
    let t = Instant::now();
    while !h.node(&["-felix-ready"], &env).status.success() {
        assert!(t.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A pod routed by its plugin, its endpoint not written yet; the
    // interface is new to the agent.
    h.ns.exec(&["ip", "link", "set", "caligr1", "down"]);
    h.ns.exec(&["ip", "link", "delete", "caligr1"]);
    h.ns.exec(&[
        "sh",
        "-c",
        "ip link add caligr1 type veth peer name podgr1 && ip link set caligr1 up && ip link set podgr1 up",
    ]);
    h.ns.exec(&[
        "ip",
        "route",
        "add",
        "10.87.0.5",
        "dev",
        "caligr1",
        "scope",
        "link",
    ]);
    h.ns.exec(&["ip", "-6", "route", "add", "fd00:87::5", "dev", "caligr1"]);
    let routed = Instant::now();
    // Another endpoint, and read-backs every 2 s: the new interface's
    // routes stay.
    endpoint(&h, "calim1", "10.87.0.6");
    until_route(&h, "10.87.0.6 dev calim1");
    std::thread::sleep(Duration::from_secs(5));
    let v4 = h.ns.exec(&["ip", "route", "show", "10.87.0.5"]);
    let v6 = h.ns.exec(&["ip", "-6", "route", "show", "fd00:87::5"]);
    assert!(
        v4.contains("dev caligr1"),
        "removed within the grace period: {v4:?}"
    );
    assert!(
        v6.contains("dev caligr1"),
        "removed within the grace period: {v6:?}"
    );
    // When the grace period ends, both families' routes that no endpoint
    // claims go.
    std::thread::sleep(
        (routed + Duration::from_secs(10)).saturating_duration_since(Instant::now()),
    );
    endpoint(&h, "calim2", "10.87.0.7");
    until_route(&h, "10.87.0.7 dev calim2");
    let t = Instant::now();
    loop {
        let v4 = h.ns.exec(&["ip", "route", "show", "10.87.0.5"]);
        let v6 = h.ns.exec(&["ip", "-6", "route", "show", "fd00:87::5"]);
        if v4.trim().is_empty() && v6.trim().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "left after the grace period: {v4:?} {v6:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The kernel's own link-local route on the interface stays.
    let ll = h.ns.exec(&["ip", "-6", "route", "show", "dev", "caligr1"]);
    assert!(ll.contains("fe80::/64"), "{ll:?}");
}

/// The periodic check (every second here) leaves the policy table alone
/// while only the agent changes nftables: its rules keep their handles (a
/// reload would make new ones). Someone else's change (the table flushed by
/// hand) is repaired by the next check.
#[test]
fn the_policy_table_is_reloaded_only_when_someone_else_touched_nftables() {
    require_root!();
    let h = Host::new(false);
    h.ns.exec(&[
        "sh",
        "-c",
        "ip link add calip1 type veth peer name podp1 && ip link set calip1 up && ip link set podp1 up",
    ]);
    let port = free_port().to_string();
    let env = [
        ("NODENAME", "node-g"),
        ("FELIX_HEALTHPORT", port.as_str()),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("CALICO_IPV4POOL_CIDR", "10.88.0.0/16"),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
        ("FELIX_ROUTEREFRESHINTERVAL", "1"),
    ];
    let _agent = Agent(h.cmd(BIN, &[], &env).stderr(Stdio::null()).spawn().unwrap());
    let t = Instant::now();
    while !h.node(&["-felix-ready"], &env).status.success() {
        assert!(t.elapsed() < Duration::from_secs(30), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    endpoint(&h, "calip1", "10.88.0.6");
    until_route(&h, "10.88.0.6 dev calip1");
    let table = || {
        h.ns.exec(&["nft", "-a", "list", "table", "inet", "calico-policy"])
    };
    // The endpoint's rules are in; then several checks pass.
    let t = Instant::now();
    while !table().contains("calip1") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", table());
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = table();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(table(), before, "reloaded although nothing else changed");
    // Someone empties the table: every rule and element gone.
    h.ns.exec(&["nft", "flush", "table", "inet", "calico-policy"]);
    assert_ne!(table(), before);
    let t = Instant::now();
    // The table's sets, maps and chains without handles, in any order
    // (chains added one at a time sit after those of a whole load).
    let strip = |s: &str| -> Vec<String> {
        let text: Vec<&str> = s
            .lines()
            .map(|l| l.split(" # handle").next().unwrap_or(l).trim_end())
            .filter(|l| !l.starts_with("table ") && *l != "}")
            .collect();
        let mut blocks: Vec<String> = text
            .join("\n")
            .split("\n\n")
            .map(|b| b.trim().to_string())
            .collect();
        blocks.sort();
        blocks
    };
    while strip(&table()) != strip(&before) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "not repaired:\n{}\nbefore:\n{before}",
            table()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
