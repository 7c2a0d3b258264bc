//! A removed endpoint's conntrack entries go, as Felix removes them when a
//! workload's route goes: three pods on one node (see `common`) exchange
//! UDP, pod a's endpoint is deleted, and the node's conntrack table loses
//! every entry of a's address while b ↔ c's stays.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_dataplane::conntrack::Conntrack;
use calico_testutil::require_root;
use common::Cluster;

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ct}\n\
                    spec: {cidr: 10.86.0.0/16, blockSize: 26, vxlanMode: Always}\n";

/// Sends one datagram from `from` (a pod namespace) to `to`:7000 and
/// answers it there, so the node tracks an established flow.
fn exchange(from: &NetNs, to_ns: &NetNs, to: &str) {
    let to_addr = format!("{to}:7000");
    let server = to_ns
        .run(|| UdpSocket::bind("0.0.0.0:7000"))
        .unwrap()
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let client = from.run(|| UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 8];
    let t = Instant::now();
    loop {
        client.send_to(b"ping", &to_addr).unwrap();
        if let Ok((_, peer)) = server.recv_from(&mut buf) {
            server.send_to(b"pong", peer).unwrap();
            if client.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no UDP path to {to}");
    }
}

/// The node's conntrack entries that involve `ip`.
fn flows_of(node: &NetNs, ip: IpAddr) -> usize {
    let set = BTreeSet::from([ip]);
    node.run(|| Conntrack::open().unwrap().list(false).unwrap())
        .unwrap()
        .iter()
        .filter(|e| e.involves(&set))
        .count()
}

#[test]
fn a_removed_endpoints_flows_are_forgotten() {
    require_root!();
    let mut c = Cluster::new(1, POOL);
    let (a, ip_a) = c.add_pod(0, "ct-a");
    let (b, ip_b) = c.add_pod(0, "ct-b");
    let (cc, ip_c) = c.add_pod(0, "ct-c");
    let ns = |i: usize| NetNs::open(c.pods[i].path()).unwrap();
    exchange(&ns(a), &ns(b), &ip_b);
    exchange(&ns(b), &ns(cc), &ip_c);
    let node = NetNs::open(c.nodes[0].ns.path()).unwrap();
    let (ip_a, ip_c): (IpAddr, IpAddr) = (ip_a.parse().unwrap(), ip_c.parse().unwrap());
    assert!(flows_of(&node, ip_a) >= 1);
    assert!(flows_of(&node, ip_c) >= 1);

    c.calicoctl(&[
        "delete",
        "workloadendpoint",
        "node--1-k8s-ct--a-eth0",
        "-n",
        "default",
    ]);
    let t = Instant::now();
    while flows_of(&node, ip_a) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the removed endpoint's flows are still tracked"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(flows_of(&node, ip_c) >= 1, "b ↔ c's flow went too");
}
