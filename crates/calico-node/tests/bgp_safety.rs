//! What a BGP peer cannot do to a node (a cluster of network namespaces,
//! see `common`): take the node's own routes, flood it past its prefix
//! limit, or reach a session unsigned when its password could not be put
//! on the listener.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use calico_testutil::require_root;
use common::Cluster;
use common::peers::{RawPeer, until};

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
