//! What a BGP peer cannot do to a node (a cluster of network namespaces,
//! see `common`): take the node's own routes, flood it past its prefix
//! limit, or reach a session unsigned when its password could not be put
//! on the listener.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use calico_testutil::require_root;
use common::Cluster;
use common::peers::{RawPeer, open, until};

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: flat}\n\
                    spec: {cidr: 10.84.0.0/16, blockSize: 26, ipipMode: Never, vxlanMode: Never}\n";

/// Applies `yaml` with calicoctl.
fn apply(c: &Cluster, name: &str, yaml: &str) {
    let f = c.dir.path().join(name);
    std::fs::write(&f, yaml).unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
}

/// Whether `calicoctl node status` on node 1 lists the peer at `addr`.
fn lists_peer(c: &Cluster, addr: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", c.nodes[0].ns.name()])
        .arg(calico_testutil::workspace_bin("calicoctl"))
        .args(["node", "status"])
        .env("CALICO_STATE_DIR", c.dir.path().join(&c.nodes[0].name))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains(&format!("| {addr} "))
}

/// A peer whose password the kernel refuses (longer than the 80 bytes of
/// TCP MD5) has no key on the listener: its connections are closed at
/// accept, before any OPEN, rather than taken unsigned. A peer without a
/// password, configured alongside, is still answered.
#[test]
fn a_peer_whose_key_is_not_on_the_listener_is_refused() {
    require_root!();
    let c = Cluster::with_backend(1, POOL, "bird");
    let secrets = c.dir.path().join("node-1-secrets");
    std::fs::create_dir_all(secrets.join("bgp-tor")).unwrap();
    std::fs::write(secrets.join("bgp-tor").join("password"), "k".repeat(81)).unwrap();
    c.kill_agent(0);
    c.extra_env.borrow_mut().push((
        "CALICO_BGP_SECRETS_DIR".into(),
        secrets.to_string_lossy().into_owned(),
    ));
    c.start_agent_on(0);
    apply(
        &c,
        "peer.yaml",
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 65001, password: {secretKeyRef: {name: bgp-tor, key: password}}}\n",
    );
    until("the peer configured on node 1", || {
        lists_peer(&c, "172.31.0.254")
    });
    // Several tries: none gets an OPEN (the session would answer with one
    // before anything else).
    for _ in 0..3 {
        let mut p = RawPeer::connect(&c);
        let got = p.next();
        assert!(got.is_none(), "an unsigned connection was taken: {got:?}");
    }
    // Control: with the password gone the same peer is answered.
    apply(
        &c,
        "peer.yaml",
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 65001}\n",
    );
    let t = Instant::now();
    loop {
        let mut p = RawPeer::connect(&c);
        if matches!(p.next(), Some(calico_bgp::msg::Message::Open(_))) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no OPEN once the password was removed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Connects as the configured peer at 172.31.0.254 (AS 65001) until the
/// speaker answers with its OPEN, and brings the session up.
fn establish(c: &Cluster) -> RawPeer {
    use calico_bgp::msg::Message;
    let t = Instant::now();
    loop {
        let mut p = RawPeer::connect(c);
        if let Some(Message::Open(_)) = p.next() {
            p.send(&open(65001));
            p.send(&Message::Keepalive);
            until("the session established", || {
                c.node_cmd(0, &["-bird-ready"]).status().unwrap().success()
            });
            return p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no OPEN from the speaker"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Announces `prefixes` with next hop 172.31.0.254, AS path 65001.
fn announce(p: &mut RawPeer, prefixes: &[&str]) {
    use calico_bgp::msg::{Attributes, Message, Segment};
    let prefixes: Vec<ipnet::IpNet> = prefixes.iter().map(|s| s.parse().unwrap()).collect();
    let attrs = Attributes {
        as_path: vec![Segment::Sequence(vec![65001])],
        next_hop: Some("172.31.0.254".parse().unwrap()),
        ..Attributes::default()
    };
    let ctx = calico_bgp::wire::Context { asn4: true };
    for u in calico_bgp::wire::pack(&[], &prefixes, &attrs, None, &ctx) {
        p.send(&Message::Update(u));
    }
}

/// What the speaker announces to `p` up to its End-of-RIB.
fn received(p: &mut RawPeer) -> Vec<String> {
    use calico_bgp::msg::Message;
    let mut out = Vec::new();
    loop {
        match p.next() {
            Some(Message::Update(u)) if u.end_of_rib.is_some() => return out,
            Some(Message::Update(u)) => out.extend(u.announced.iter().map(ToString::to_string)),
            Some(_) => {}
            None => panic!("the connection ended before End-of-RIB"),
        }
    }
}

const PEER: &str = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: raw}\n\
                    spec: {peerIP: 172.31.0.254, asNumber: 65001}\n";

/// A peer announcing the node's connected subnet, its block, one of its
/// pods, its own address and the default route: none of them reaches the
/// kernel (the node's routes stay as they were), while its other route is
/// installed at metric 32 beside them. A BGPFilter accepting the default
/// route lets that one in — at metric 32, beside the node's own default
/// route (metric 0), which stays.
#[test]
fn a_peer_cannot_take_the_nodes_own_routes() {
    require_root!();
    let mut c = Cluster::with_backend(1, POOL, "bird");
    let (_, pod) = c.add_pod(0, "a");
    let blackholes = || c.sh(0, "ip route show type blackhole proto 80");
    // Felix blackholes the block and routes the pod on its next pass.
    until("the block blackholed and the pod routed", || {
        !blackholes().trim().is_empty()
            && c.sh(0, &format!("ip route show {pod}"))
                .contains("dev cali")
    });
    let block = blackholes().split_whitespace().nth(1).unwrap().to_string();
    let before = |what: &str| c.sh(0, &format!("ip route show {what}"));
    let own = [
        ("172.31.0.0/24", before("172.31.0.0/24")),
        (block.as_str(), before(&block)),
        (pod.as_str(), before(&pod)),
        ("default", before("default")),
    ];
    assert!(own[0].1.contains("proto kernel scope link"), "{own:?}");
    assert!(own[1].1.contains("blackhole"), "{own:?}");
    assert!(own[2].1.contains("dev cali"), "{own:?}");
    assert!(own[3].1.contains("default via 172.31.0.254"), "{own:?}");
    apply(&c, "peer.yaml", PEER);
    let mut p = establish(&c);
    assert!(received(&mut p).contains(&block), "the block is advertised");
    let pod32 = format!("{pod}/32");
    announce(
        &mut p,
        &[
            "172.31.0.0/24",
            &block,
            &pod32,
            "172.31.0.1/32",
            "172.31.0.0/16",
            "0.0.0.0/0",
            "198.51.100.0/24",
        ],
    );
    // The other route shows the UPDATE was taken in and swept (the
    // node's own routes are checked first: a speaker that took them over
    // may not get this far).
    let t = Instant::now();
    while !c
        .sh(0, "ip route show proto 81")
        .contains("198.51.100.0/24 via 172.31.0.254 dev eth0")
        && t.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    for (what, was) in &own {
        assert_eq!(&before(what), was, "the node's route to {what} changed");
    }
    let bgp = c.sh(0, "ip route show proto 81");
    assert_eq!(
        bgp.trim(),
        "198.51.100.0/24 via 172.31.0.254 dev eth0 metric 32",
        "{bgp}"
    );
    assert!(c.sh(0, "ip route show 172.31.0.1").trim().is_empty());

    // A BGPFilter that accepts the default route from this peer (and
    // keeps the block from it).
    apply(
        &c,
        "filter.yaml",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {{name: take-default}}\n\
             spec:\n  importV4:\n  - {{cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept}}\n\
             \x20 - {{cidr: 198.51.100.0/24, matchOperator: In, action: Reject}}\n\
             \x20 exportV4:\n  - {{cidr: {block}, matchOperator: Equal, action: Reject}}\n"
        ),
    );
    apply(
        &c,
        "peer.yaml",
        &PEER.replace(
            "asNumber: 65001}",
            "asNumber: 65001, filters: [take-default]}",
        ),
    );
    // The new configuration restarts the session.
    while p.next().is_some() {}
    let mut p = establish(&c);
    assert!(!received(&mut p).contains(&block), "rejected on export");
    announce(&mut p, &["0.0.0.0/0", "198.51.100.0/24", "172.31.0.0/24"]);
    until("the accepted default route beside the node's own", || {
        c.sh(0, "ip route show default")
            .contains("default via 172.31.0.254 dev eth0 proto 81 metric 32")
    });
    let defaults = c.sh(0, "ip route show default");
    assert!(defaults.contains(own[3].1.trim()), "{defaults}");
    let bgp = c.sh(0, "ip route show proto 81");
    assert!(
        !bgp.contains("198.51.100.0/24"),
        "rejected by the filter: {bgp}"
    );
    assert!(!bgp.contains("172.31.0.0/24"), "{bgp}");
    assert_eq!(before("172.31.0.0/24"), own[0].1);
}

/// With `CALICO_BGP_MAX_PREFIXES=50`: 40 prefixes are installed; 20 more
/// end the session with a Cease, Maximum Number of Prefixes Reached, and
/// the peer's routes go.
#[test]
fn a_prefix_flood_past_the_limit_ends_the_session() {
    use calico_bgp::msg::err;
    require_root!();
    let c = Cluster::with_backend(1, POOL, "bird");
    c.kill_agent(0);
    c.extra_env
        .borrow_mut()
        .push(("CALICO_BGP_MAX_PREFIXES".into(), "50".into()));
    c.start_agent_on(0);
    apply(&c, "peer.yaml", PEER);
    let mut p = establish(&c);
    let prefixes: Vec<String> = (0..60).map(|i| format!("203.0.113.{i}/32")).collect();
    let first: Vec<&str> = prefixes[..40].iter().map(String::as_str).collect();
    announce(&mut p, &first);
    until("40 routes in the kernel", || {
        c.sh(0, "ip route show proto 81").lines().count() == 40
    });
    let rest: Vec<&str> = prefixes[40..].iter().map(String::as_str).collect();
    announce(&mut p, &rest);
    assert_eq!(
        p.notification(),
        (err::CEASE, err::MAXIMUM_NUMBER_OF_PREFIXES_REACHED)
    );
    assert!(p.next().is_none(), "closed after the NOTIFICATION");
    until("the peer's routes gone", || {
        c.sh(0, "ip route show proto 81").trim().is_empty()
    });
}

/// A withdrawal takes only BGP's route: an operator's `proto static`
/// route to the same prefix, there before the announcement, is still
/// there after it is withdrawn (issue 13: route deletion honours the
/// owner). A learned route an earlier version left at metric 0 is removed
/// when the agent starts.
#[test]
fn a_withdrawal_leaves_an_operators_route_to_the_same_prefix() {
    require_root!();
    let c = Cluster::with_backend(1, POOL, "bird");
    c.kill_agent(0);
    c.sh(0, "ip route add 203.0.113.0/24 via 172.31.0.254 proto 81");
    c.start_agent_on(0);
    until("the earlier version's route removed", || {
        c.sh(0, "ip route show 203.0.113.0/24").trim().is_empty()
    });
    c.sh(
        0,
        "ip route add 198.51.100.0/24 via 172.31.0.254 proto static",
    );
    apply(&c, "peer.yaml", PEER);
    let mut p = establish(&c);
    let _ = received(&mut p);
    announce(&mut p, &["198.51.100.0/24"]);
    until("the learned route beside the operator's", || {
        c.sh(0, "ip route show proto 81")
            .contains("198.51.100.0/24 via 172.31.0.254 dev eth0 metric 32")
    });
    {
        use calico_bgp::msg::{Attributes, Message};
        let gone: Vec<ipnet::IpNet> = vec!["198.51.100.0/24".parse().unwrap()];
        let ctx = calico_bgp::wire::Context { asn4: true };
        for u in calico_bgp::wire::pack(&gone, &[], &Attributes::default(), None, &ctx) {
            p.send(&Message::Update(u));
        }
    }
    until("the learned route withdrawn", || {
        c.sh(0, "ip route show proto 81").trim().is_empty()
    });
    let left = c.sh(0, "ip route show 198.51.100.0/24");
    assert_eq!(
        left.trim(),
        "198.51.100.0/24 via 172.31.0.254 dev eth0 proto static",
        "{left}"
    );
}
