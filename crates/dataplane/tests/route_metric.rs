//! Routes at a metric of their own (`add_route_at`, `replace_route_at`,
//! `delete_route_at`, `for_each_route_metric`) against the real kernel,
//! inside a namespace made here: they live beside other owners' routes to
//! the same destination and never take or remove them.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_dataplane::{NetNs, Netlink, Route};
use calico_testutil::{TestNetns, require_root};

#[test]
fn a_route_at_its_own_metric_leaves_other_owners_routes_alone() {
    require_root!();
    let ns = TestNetns::new("nlm");
    ns.exec(&[
        "sh",
        "-c",
        "ip link add eth0 type veth peer name eth1 && ip addr add 10.66.0.1/24 dev eth0 && \
         ip -6 addr add fd00:66::1/64 dev eth0 nodad && ip link set eth0 up && ip link set eth1 up && \
         ip route add 10.67.0.0/24 via 10.66.0.9 proto 80",
    ]);
    let mut nl = Netlink::open_in(&NetNs::open(ns.path()).unwrap()).unwrap();
    let connected = "10.66.0.0/24".parse().unwrap();
    let theirs = "10.67.0.0/24".parse().unwrap();
    let ours = |dst| {
        Route::new(dst)
            .via("10.66.0.2".parse().unwrap())
            .protocol(81)
    };
    // Beside the kernel's connected route and another protocol's route.
    nl.add_route_at(&ours(connected), 32).unwrap();
    nl.add_route_at(&ours(theirs), 32).unwrap();
    let shown = ns.exec(&["ip", "route", "show"]);
    for want in [
        "10.66.0.0/24 dev eth0 proto kernel scope link src 10.66.0.1",
        "10.66.0.0/24 via 10.66.0.2 dev eth0 proto 81 metric 32",
        "10.67.0.0/24 via 10.66.0.9 dev eth0 proto 80",
        "10.67.0.0/24 via 10.66.0.2 dev eth0 proto 81 metric 32",
    ] {
        assert!(shown.contains(want), "no {want:?} in:\n{shown}");
    }
    // Creating it again finds it; replacing it changes only it.
    assert!(nl.add_route_at(&ours(theirs), 32).unwrap_err().is_exists());
    let moved = Route::new(theirs)
        .via("10.66.0.3".parse().unwrap())
        .protocol(81);
    nl.replace_route_at(&moved, 32).unwrap();
    let mut metrics = Vec::new();
    nl.for_each_route_metric(false, &mut |r, m| {
        if r.dst == theirs {
            metrics.push((r.protocol, r.gateway.map(|g| g.to_string()), m));
        }
    })
    .unwrap();
    metrics.sort();
    assert_eq!(
        metrics,
        [
            (80, Some("10.66.0.9".to_string()), 0),
            (81, Some("10.66.0.3".to_string()), 32)
        ]
    );
    // Deleting takes only the route of that protocol at that metric.
    for dst in [connected, theirs] {
        let del = Route::new(dst).protocol(81);
        assert!(nl.delete_route_at(&del, 31).unwrap_err().is_not_found());
        nl.delete_route_at(&del, 32).unwrap();
        assert!(nl.delete_route_at(&del, 32).unwrap_err().is_not_found());
    }
    let shown = ns.exec(&["ip", "route", "show"]);
    assert!(!shown.contains("proto 81"), "{shown}");
    assert!(
        shown.contains("10.66.0.0/24 dev eth0 proto kernel scope link")
            && shown.contains("10.67.0.0/24 via 10.66.0.9 dev eth0 proto 80"),
        "{shown}"
    );
    // IPv6: the kernel files a route added without a metric at 1024; one
    // at a metric of its own stays a separate route.
    ns.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "fd00:67::/64",
        "via",
        "fd00:66::9",
    ]);
    let v6 = "fd00:67::/64".parse().unwrap();
    nl.add_route_at(
        &Route::new(v6)
            .via("fd00:66::2".parse().unwrap())
            .protocol(81),
        1056,
    )
    .unwrap();
    let shown = ns.exec(&["ip", "-6", "route", "show", "fd00:67::/64"]);
    assert!(
        shown.contains("via fd00:66::9 dev eth0 metric 1024")
            && shown.contains("via fd00:66::2 dev eth0 proto 81 metric 1056"),
        "{shown}"
    );
}

/// `delete_route` removes only a route of the caller's protocol: Felix
/// (proto 80) deleting a prefix that an operator (`proto static`) and BGP
/// (proto 81) also route leaves theirs, even when its own is gone already
/// (a route it read a moment before); a route without a protocol is
/// refused.
#[test]
fn delete_route_takes_only_its_owners_route() {
    require_root!();
    let ns = TestNetns::new("nld");
    ns.exec(&[
        "sh",
        "-c",
        "ip link add eth0 type veth peer name eth1 && ip addr add 10.68.0.1/24 dev eth0 && \
         ip -6 addr add fd00:68::1/64 dev eth0 nodad && ip link set eth0 up && ip link set eth1 up && \
         ip route add 10.69.0.0/24 via 10.68.0.7 proto static && \
         ip route add 10.69.0.0/24 via 10.68.0.8 proto 81 metric 32 && \
         ip route add 10.70.0.0/24 via 10.68.0.8 proto 81 metric 32 && \
         ip -6 route add fd00:69::/64 via fd00:68::7 proto static metric 100 && \
         ip -6 route add fd00:69::/64 via fd00:68::8 proto 81 metric 1056",
    ]);
    let mut nl = Netlink::open_in(&NetNs::open(ns.path()).unwrap()).unwrap();
    let felix = |dst: &str| Route::new(dst.parse().unwrap()).protocol(80);
    for dst in ["10.69.0.0/24", "10.70.0.0/24", "fd00:69::/64"] {
        let e = nl.delete_route(&felix(dst)).unwrap_err();
        assert!(e.is_not_found(), "{dst}: {e}");
    }
    let shown = ns.exec(&["sh", "-c", "ip route show; ip -6 route show"]);
    for want in [
        "10.69.0.0/24 via 10.68.0.7 dev eth0 proto static",
        "10.69.0.0/24 via 10.68.0.8 dev eth0 proto 81 metric 32",
        "10.70.0.0/24 via 10.68.0.8 dev eth0 proto 81 metric 32",
        "fd00:69::/64 via fd00:68::7 dev eth0 proto static metric 100",
        "fd00:69::/64 via fd00:68::8 dev eth0 proto 81 metric 1056",
    ] {
        assert!(shown.contains(want), "no {want:?} in:\n{shown}");
    }
    // Felix's own route, beside the others, is the one it deletes.
    ns.exec(&[
        "ip",
        "route",
        "add",
        "10.70.0.0/24",
        "via",
        "10.68.0.9",
        "proto",
        "80",
    ]);
    nl.delete_route(&felix("10.70.0.0/24")).unwrap();
    let shown = ns.exec(&["ip", "route", "show", "10.70.0.0/24"]);
    assert_eq!(
        shown.trim(),
        "10.70.0.0/24 via 10.68.0.8 dev eth0 proto 81 metric 32"
    );
    // A route without an owner would match anyone's: refused.
    let e = nl
        .delete_route(&Route::new("10.69.0.0/24".parse().unwrap()).protocol(0))
        .unwrap_err();
    assert!(e.to_string().contains("names its protocol"), "{e}");
    assert!(
        ns.exec(&["ip", "route", "show", "10.69.0.0/24"])
            .contains("proto static")
    );
}
