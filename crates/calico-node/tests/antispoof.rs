//! Anti-spoofing in the kernel: `inet calico` as calico-node renders it
//! (`felix::nat::ruleset`), loaded into a node namespace with three
//! "pods" on `cali*` veths, and UDP datagrams sent from each pod with its
//! own, allowed, and foreign source addresses. The check runs at the raw
//! prerouting hook, before conntrack: a spoofed packet that matches another
//! pod's established flow is dropped too.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use calico_dataplane::NetNs;
use calico_node::felix::model::{NatSettings, WorkloadInfo};
use calico_node::felix::nat;
use calico_testutil::{TestNetns, require_root};

const NODE: &str = "10.60.255.1";

/// A pod namespace on `cali` in `node`, with `addrs` on its eth0.
fn pod(node: &TestNetns, cali: &str, addrs: &[&str]) -> TestNetns {
    let p = TestNetns::new("spf");
    node.exec(&[
        "sh",
        "-c",
        &format!(
            "ip link add {cali} address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns {p} && \
             ip link set {cali} up",
            p = p.name()
        ),
    ]);
    let mut script = String::from("ip link set lo up && ip link set eth0 up");
    for a in addrs {
        script += &format!(" && ip addr add {a} dev eth0");
    }
    script += &format!(
        " && ip route add {NODE} dev eth0 && ip neigh add {NODE} lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent"
    );
    p.exec(&["sh", "-c", &script]);
    p
}

/// Sends `tag` from `src:port` in `p` to the node's UDP port.
fn send(p: &TestNetns, src: &str, port: u16, tag: &str) {
    let ns = NetNs::open(p.path()).unwrap();
    let src: SocketAddr = format!("{src}:{port}").parse().unwrap();
    let tag = tag.to_string();
    ns.run(move || {
        let s = UdpSocket::bind(src).unwrap();
        s.send_to(tag.as_bytes(), format!("{NODE}:9999")).unwrap();
    })
    .unwrap();
}

/// The tags the node received within a short wait.
fn received(sock: &UdpSocket) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got.sort();
    got
}

#[test]
fn only_a_pods_own_or_allowed_sources_pass_even_inside_an_established_flow() {
    require_root!();
    let node = TestNetns::new("spn");
    node.exec(&[
        "sh",
        "-c",
        &format!("ip link set lo up && ip addr add {NODE}/32 dev lo"),
    ]);
    // a: one address and an allowed prefix; b: an endpoint network wider
    // than one address; c: an interface no endpoint claims.
    let a = pod(
        &node,
        "calia",
        &[
            "10.60.0.1/32",
            "10.61.0.7/32",
            "10.62.0.1/32",
            "10.60.0.9/32",
        ],
    );
    let b = pod(&node, "calib", &["10.60.0.9/32"]);
    let c = pod(&node, "calic", &["10.60.0.20/32"]);
    node.exec(&[
        "sh",
        "-c",
        "ip route add 10.60.0.1/32 dev calia && ip route add 10.60.0.8/30 dev calib",
    ]);
    let workloads = [
        WorkloadInfo {
            iface: "calia".into(),
            nets: vec![
                "10.60.0.1/32".parse().unwrap(),
                "fd00:60::1/128".parse().unwrap(),
            ],
            nats: vec![],
            allow_spoof: vec![
                "10.61.0.0/24".parse().unwrap(),
                "fd00:61::/64".parse().unwrap(),
            ],
            openstack: false,
        },
        WorkloadInfo {
            iface: "calib".into(),
            nets: vec!["10.60.0.8/30".parse().unwrap()],
            nats: vec![],
            allow_spoof: vec![],
            openstack: false,
        },
    ];
    let doc = nat::ruleset(&[], &workloads, &[], &NatSettings::default());
    let node_ns = NetNs::open(node.path()).unwrap();
    let doc2 = doc.clone();
    assert_eq!(node_ns.run(move || nat::apply(&doc2)).unwrap(), Ok(true));
    let listed = node.exec(&["nft", "list", "chain", "inet", "calico", "antispoof"]);
    assert!(listed.contains("@wl4n"), "{listed}");

    let sock = node_ns
        .run(|| UdpSocket::bind("0.0.0.0:9999"))
        .unwrap()
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    send(&a, "10.60.0.1", 5000, "a-own");
    send(&a, "10.61.0.7", 5000, "a-allowed-prefix");
    send(&a, "10.62.0.1", 5000, "a-foreign");
    send(&a, "10.60.0.9", 5001, "a-as-b");
    send(&b, "10.60.0.9", 5000, "b-own-wider-net");
    send(&c, "10.60.0.20", 5000, "c-unclaimed");
    assert_eq!(
        received(&sock),
        ["a-allowed-prefix", "a-own", "b-own-wider-net"],
        "{doc}"
    );

    // b's flow becomes established (the node answers it); a then sends
    // with b's exact tuple: conntrack would call it established, but the
    // check comes first.
    send(&b, "10.60.0.9", 5002, "b-flow");
    sock.send_to(b"reply", "10.60.0.9:5002").unwrap();
    let ct = node.exec(&["sh", "-c", "cat /proc/net/nf_conntrack 2>/dev/null || true"]);
    send(&a, "10.60.0.9", 5002, "a-injects-into-b-flow");
    send(&b, "10.60.0.9", 5002, "b-flow-again");
    assert_eq!(received(&sock), ["b-flow", "b-flow-again"], "{ct}");

    // Without the check the foreign sources arrive (the test can fail).
    node.exec(&["nft", "flush", "chain", "inet", "calico", "antispoof"]);
    send(&a, "10.62.0.1", 5003, "a-foreign-unchecked");
    assert_eq!(received(&sock), ["a-foreign-unchecked"]);
}
