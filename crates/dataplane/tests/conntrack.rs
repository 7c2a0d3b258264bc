//! Conntrack entries listed and deleted over ctnetlink, against the real
//! kernel in a test namespace (conntrack is on there because a table with a
//! `ct state` rule hooks the namespace's traffic).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::net::{IpAddr, UdpSocket};

use calico_dataplane::NetNs;
use calico_dataplane::conntrack::Conntrack;
use calico_testutil::{TestNetns, require_root};

fn addrs(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// (orig source, orig destination) of every entry of a family, sorted.
fn flows(ns: &NetNs, v6: bool) -> Vec<(IpAddr, IpAddr)> {
    let mut v: Vec<_> = ns
        .run(move || Conntrack::open().unwrap().list(v6).unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.orig)
        .collect();
    v.sort();
    v
}

#[test]
fn entries_of_an_address_are_forgotten_in_either_direction() {
    require_root!();
    let t = TestNetns::new("ct");
    t.exec(&[
        "sh",
        "-c",
        "ip link set lo up && ip addr add 10.70.0.1/32 dev lo && ip addr add 10.70.0.2/32 dev lo && \
         ip addr add 10.70.0.3/32 dev lo && ip addr add fd00:70::1/128 dev lo nodad && \
         ip addr add fd00:70::2/128 dev lo nodad && \
         nft 'add table inet t; add chain inet t c { type filter hook output priority 0; ct state new accept; }'",
    ]);
    let ns = NetNs::open(t.path()).unwrap();
    ns.run(|| {
        let to = UdpSocket::bind("10.70.0.2:7000").unwrap();
        for (src, port) in [("10.70.0.1:6000", 7000), ("10.70.0.3:6001", 7000)] {
            let s = UdpSocket::bind(src).unwrap();
            s.send_to(b"x", ("10.70.0.2", port)).unwrap();
        }
        let to6 = UdpSocket::bind("[fd00:70::2]:7000").unwrap();
        let s = UdpSocket::bind("[fd00:70::1]:6000").unwrap();
        s.send_to(b"x", "[fd00:70::2]:7000").unwrap();
        drop((to, to6));
    })
    .unwrap();
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        flows(&ns, false),
        [
            (a("10.70.0.1"), a("10.70.0.2")),
            (a("10.70.0.3"), a("10.70.0.2"))
        ]
    );
    assert_eq!(flows(&ns, true), [(a("fd00:70::1"), a("fd00:70::2"))]);

    let forget = |list: &'static [&'static str]| {
        ns.run(move || Conntrack::open().unwrap().forget(&addrs(list)).unwrap())
            .unwrap()
    };
    // Nothing of an address no flow has.
    assert_eq!(forget(&["10.70.0.9"]), 0);
    // An original source: only its flow goes.
    assert_eq!(forget(&["10.70.0.1"]), 1);
    assert_eq!(flows(&ns, false), [(a("10.70.0.3"), a("10.70.0.2"))]);
    // The other side of a flow (its reply source) counts too; IPv6 alike.
    assert_eq!(forget(&["10.70.0.2", "fd00:70::2"]), 2);
    assert!(flows(&ns, false).is_empty());
    assert!(flows(&ns, true).is_empty());
}
