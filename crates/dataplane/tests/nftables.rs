//! Set elements over netlink, against the real kernel and read back with
//! `nft`, in a test namespace.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_dataplane::NetNs;
use calico_dataplane::nftables::{NfTables, SetChange};
use calico_testutil::{TestNetns, require_root};
use ipnet::IpNet;

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn elements(ns: &TestNetns, set: &str) -> String {
    let out = ns.exec(&["nft", "list", "set", "inet", "t", set]);
    out.split_once("elements = {")
        .map(|(_, e)| {
            e.split('}')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[test]
fn interval_set_elements_added_and_deleted_in_one_batch() {
    require_root!();
    let ns = TestNetns::new("nft");
    ns.exec(&[
        "nft",
        "add table inet t; add set inet t a { type ipv4_addr; flags interval; }; \
         add set inet t b { type ipv6_addr; flags interval; }; \
         add element inet t a { 10.0.0.9 }",
    ]);
    let netns = NetNs::open(ns.path()).unwrap();
    let mut nf = netns.run(NfTables::open).unwrap().unwrap();
    nf.apply(
        "t",
        &[
            SetChange {
                set: "a".into(),
                delete: vec![],
                add: nets(&["10.1.2.3/32", "10.2.0.0/16", "10.1.2.4/32"]),
            },
            SetChange {
                set: "b".into(),
                delete: vec![],
                add: nets(&["fd00::1/128", "fd01::/64"]),
            },
        ],
    )
    .unwrap();
    assert_eq!(
        elements(&ns, "a"),
        "10.0.0.9, 10.1.2.3, 10.1.2.4, 10.2.0.0/16"
    );
    assert_eq!(elements(&ns, "b"), "fd00::1, fd01::/64");
    // nft's own lookups see them.
    ns.exec(&[
        "nft",
        "get",
        "element",
        "inet",
        "t",
        "a",
        "{ 10.1.2.3, 10.2.7.7 }",
    ]);
    // Deletes go before adds; a bad change voids the whole batch.
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: nets(&["10.1.2.3/32"]),
            add: nets(&["10.3.0.1/32"]),
        }],
    )
    .unwrap();
    assert_eq!(
        elements(&ns, "a"),
        "10.0.0.9, 10.1.2.4, 10.2.0.0/16, 10.3.0.1"
    );
    let bad = nf.apply(
        "t",
        &[
            SetChange {
                set: "a".into(),
                delete: vec![],
                add: nets(&["10.4.0.1/32"]),
            },
            SetChange {
                set: "nosuchset".into(),
                delete: vec![],
                add: nets(&["10.5.0.1/32"]),
            },
        ],
    );
    assert!(bad.is_err(), "{bad:?}");
    assert_eq!(
        elements(&ns, "a"),
        "10.0.0.9, 10.1.2.4, 10.2.0.0/16, 10.3.0.1",
        "nothing of a failed batch"
    );
    // Many elements: several messages in one batch.
    let many: Vec<IpNet> = (0..3000u32)
        .map(|i| IpNet::from(std::net::IpAddr::from((0x0a80_0000 + 2 * i).to_be_bytes())))
        .collect();
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: vec![],
            add: many.clone(),
        }],
    )
    .unwrap();
    let listed = ns.exec(&["nft", "list", "set", "inet", "t", "a"]);
    assert!(
        listed.contains("10.128.0.0,") && listed.contains("10.128.23.110"),
        "{listed}"
    );
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: many,
            add: vec![],
        }],
    )
    .unwrap();
    assert_eq!(
        elements(&ns, "a"),
        "10.0.0.9, 10.1.2.4, 10.2.0.0/16, 10.3.0.1"
    );
}

/// The generation stays put while nothing changes and moves on with every
/// committed change: by `nft`, by a netlink batch, in another table too;
/// a failed command commits nothing and leaves it where it was.
#[test]
fn the_generation_moves_with_every_committed_change() {
    require_root!();
    let ns = TestNetns::new("gen");
    let netns = NetNs::open(ns.path()).unwrap();
    let mut nf = netns.run(NfTables::open).unwrap().unwrap();
    let g0 = nf.generation().unwrap();
    assert_eq!(nf.generation().unwrap(), g0, "nothing changed");
    ns.exec(&[
        "nft",
        "add table inet t; add set inet t a { type ipv4_addr; flags interval; }",
    ]);
    let g1 = nf.generation().unwrap();
    assert_eq!(g1, g0.wrapping_add(1), "one nft -f is one commit");
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: vec![],
            add: nets(&["10.9.0.1/32"]),
        }],
    )
    .unwrap();
    let g2 = nf.generation().unwrap();
    assert_eq!(g2, g1.wrapping_add(1), "one netlink batch is one commit");
    // A command the kernel refuses commits nothing.
    assert!(
        ns.try_exec(&["nft", "add element inet t nosuchset { 10.0.0.1 }"])
            .is_err()
    );
    assert_eq!(nf.generation().unwrap(), g2);
    // Another table's change moves it as well.
    ns.exec(&["nft", "add table inet other"]);
    assert_eq!(nf.generation().unwrap(), g2.wrapping_add(1));
}

/// A table made dormant takes no packets; its elements and its waking go
/// in one batch, after which its chains are on their hooks (a counter in
/// an input chain counts traffic only from then on).
#[test]
fn a_dormant_table_is_filled_and_woken_in_one_batch() {
    require_root!();
    let ns = TestNetns::new("wake");
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    ns.exec(&[
        "nft",
        "table inet t { flags dormant; \
           set a { type ipv4_addr; flags interval; }; \
           chain inp { type filter hook input priority 0; policy accept; ip saddr @a counter; }; }",
    ]);
    let counted = |ns: &TestNetns| -> u64 {
        let out = ns.exec(&["nft", "list", "chain", "inet", "t", "inp"]);
        out.split("packets ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let send = |ns: &TestNetns| {
        // One UDP datagram to ourselves over loopback.
        ns.exec(&["bash", "-c", "echo x > /dev/udp/127.0.0.1/9 || true"]);
    };
    let netns = NetNs::open(ns.path()).unwrap();
    let mut nf = netns.run(NfTables::open).unwrap().unwrap();
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: vec![],
            add: nets(&["127.0.0.1/32"]),
        }],
    )
    .unwrap();
    send(&ns);
    assert_eq!(counted(&ns), 0, "a dormant table counted a packet");
    assert!(
        ns.exec(&["nft", "list", "table", "inet", "t"])
            .contains("dormant")
    );
    let g = nf.generation().unwrap();
    nf.apply_and_wake(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: vec![],
            add: nets(&["10.3.0.0/16"]),
        }],
    )
    .unwrap();
    assert_eq!(nf.generation().unwrap(), g.wrapping_add(1), "one commit");
    assert!(
        !ns.exec(&["nft", "list", "table", "inet", "t"])
            .contains("dormant")
    );
    assert_eq!(elements(&ns, "a"), "10.3.0.0/16, 127.0.0.1");
    send(&ns);
    assert!(counted(&ns) >= 1, "the woken table counts nothing");
    // Waking a table that is awake already is no error.
    nf.apply_and_wake("t", &[]).unwrap();
}

/// 60,000 addresses in one batch (megabytes, far past the socket's
/// default send buffer) go in whole.
#[test]
fn a_batch_larger_than_the_socket_buffer_goes_in_whole() {
    require_root!();
    let ns = TestNetns::new("big");
    ns.exec(&[
        "nft",
        "add table inet t; add set inet t a { type ipv4_addr; flags interval; }",
    ]);
    let netns = NetNs::open(ns.path()).unwrap();
    let mut nf = netns.run(NfTables::open).unwrap().unwrap();
    let add: Vec<IpNet> = (0..60_000u32)
        .map(|i| IpNet::from(std::net::IpAddr::from((0x0a00_0000 + 2 * i).to_be_bytes())))
        .collect();
    nf.apply(
        "t",
        &[SetChange {
            set: "a".into(),
            delete: vec![],
            add,
        }],
    )
    .unwrap();
    let listed = elements(&ns, "a");
    assert_eq!(listed.split(", ").count(), 60_000);
    assert!(listed.ends_with("10.1.212.190"), "the last address");
}
