//! The netlink client against the real kernel, inside namespaces made here.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_dataplane::{Kind, NetNs, Netlink, Route, Scope, VethSpec, sysctl};
use calico_testutil::{TestNetns, require_root};

const MAC: [u8; 6] = [0xee; 6];

#[test]
fn veth_with_peer_created_in_other_namespace() {
    require_root!();
    let host = TestNetns::new("nlh");
    let pod = TestNetns::new("nlp");
    let host_ns = NetNs::open(host.path()).unwrap();
    let pod_ns = NetNs::open(pod.path()).unwrap();
    let mut nl = Netlink::open_in(&host_ns).unwrap();
    nl.create_veth(&VethSpec {
        name: "calitest0",
        mac: Some(MAC),
        mtu: 1440,
        peer_name: "eth0",
        peer_mac: None,
        peer_netns: Some(pod_ns.fd()),
    })
    .unwrap();
    let link = nl.link("calitest0").unwrap().expect("host end exists");
    assert_eq!(link.mac, Some(MAC));
    assert_eq!(link.mtu, 1440);
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert!(
        nl.link("eth0").unwrap().is_none(),
        "peer is not in the host ns"
    );
    nl.set_up(link.index).unwrap();

    // Creating it again fails with EEXIST.
    let again = nl
        .create_veth(&VethSpec {
            name: "calitest0",
            mac: None,
            mtu: 1500,
            peer_name: "eth1",
            peer_mac: None,
            peer_netns: Some(pod_ns.fd()),
        })
        .unwrap_err();
    assert!(again.is_exists(), "{again}");

    // The peer, seen from inside the pod namespace.
    let mut pnl = Netlink::open_in(&pod_ns).unwrap();
    let eth0 = pnl.link("eth0").unwrap().expect("peer in pod ns");
    // The host end names its peer: index and namespace (by the id the
    // host namespace gives the pod namespace; another namespace has another).
    assert_eq!(link.link, Some(eth0.index));
    assert!(link.link_netnsid.is_some(), "{link:?}");
    assert_eq!(nl.netns_id(pod_ns.fd()).unwrap(), link.link_netnsid);
    let other = TestNetns::new("nlo");
    let other_ns = NetNs::open(other.path()).unwrap();
    assert_ne!(nl.netns_id(other_ns.fd()).unwrap(), link.link_netnsid);
    assert_eq!(eth0.mtu, 1440);
    pnl.set_up(eth0.index).unwrap();
    pnl.set_mac(eth0.index, [0x02, 0, 0, 0, 0, 1]).unwrap();
    pnl.add_address(eth0.index, "10.65.0.5/32".parse().unwrap(), false)
        .unwrap();
    pnl.add_address(eth0.index, "fd00:65::5/128".parse().unwrap(), true)
        .unwrap();
    let gw = Route::new("169.254.1.1/32".parse().unwrap())
        .dev(eth0.index)
        .scope(Scope::Link);
    pnl.add_route(&gw).unwrap();
    pnl.add_route(
        &Route::new("0.0.0.0/0".parse().unwrap())
            .via("169.254.1.1".parse().unwrap())
            .dev(eth0.index),
    )
    .unwrap();
    let addrs = pnl.addresses(eth0.index).unwrap();
    assert!(
        addrs.contains(&"10.65.0.5/32".parse().unwrap()),
        "{addrs:?}"
    );
    assert!(
        addrs.contains(&"fd00:65::5/128".parse().unwrap()),
        "{addrs:?}"
    );
    let shown = pod.exec(&["ip", "route", "show"]);
    assert!(
        shown.contains("default via 169.254.1.1 dev eth0"),
        "{shown}"
    );
    assert!(shown.contains("169.254.1.1 dev eth0 scope link"), "{shown}");
    let shown = pod.exec(&["ip", "link", "show", "eth0"]);
    assert!(shown.contains("02:00:00:00:00:01"), "{shown}");
    let routes = pnl.routes(false).unwrap();
    assert!(routes.iter().any(|r| r == &gw), "{routes:?}");

    // Host side: route to the pod, a blackhole; list and delete them.
    let to_pod = Route::new("10.65.0.5/32".parse().unwrap())
        .dev(link.index)
        .scope(Scope::Link);
    nl.add_route(&to_pod).unwrap();
    assert!(nl.add_route(&to_pod).unwrap_err().is_exists());
    let hole = Route::new("10.65.0.0/26".parse().unwrap())
        .kind(Kind::Blackhole)
        .protocol(80);
    nl.add_route(&hole).unwrap();
    let shown = host.exec(&["ip", "route", "show"]);
    assert!(
        shown.contains("10.65.0.5 dev calitest0 scope link"),
        "{shown}"
    );
    assert!(shown.contains("blackhole 10.65.0.0/26 proto 80"), "{shown}");
    let routes = nl.routes(false).unwrap();
    assert!(
        routes.contains(&to_pod) && routes.contains(&hole),
        "{routes:?}"
    );
    nl.delete_route(&hole).unwrap();
    assert!(nl.delete_route(&hole).unwrap_err().is_not_found());

    // Sysctls are per namespace: set one inside the host test namespace.
    host_ns
        .run(|| sysctl::set_iface("ipv4", "conf", "calitest0", "proxy_arp", "1"))
        .unwrap()
        .unwrap();
    let v = host.exec(&["cat", "/proc/sys/net/ipv4/conf/calitest0/proxy_arp"]);
    assert_eq!(v.trim(), "1");

    // Deleting the host end removes the peer and the route through it.
    nl.delete_link(link.index).unwrap();
    assert!(pnl.link("eth0").unwrap().is_none());
    assert!(!nl.routes(false).unwrap().contains(&to_pod));
    assert!(nl.delete_link(link.index).unwrap_err().is_not_found());
}

#[test]
fn entering_a_missing_namespace_is_an_error() {
    let err = NetNs::open("/run/netns/does-not-exist-calico-rs").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn vxlan_device_neighbours_and_fdb() {
    require_root!();
    let host = TestNetns::new("vx");
    host.exec(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    let ns = NetNs::open(host.path()).unwrap();
    let mut nl = Netlink::open_in(&ns).unwrap();
    let mac = [0x66, 0x11, 0x22, 0x33, 0x44, 0x55];
    nl.create_vxlan(
        "vxlan.calico",
        4096,
        "192.0.2.10".parse().unwrap(),
        4789,
        1450,
        Some(mac),
    )
    .unwrap();
    let link = nl.link("vxlan.calico").unwrap().unwrap();
    assert_eq!(link.kind.as_deref(), Some("vxlan"));
    assert_eq!(link.mac, Some(mac));
    assert_eq!(link.mtu, 1450);
    assert_eq!(
        nl.vxlan_info("vxlan.calico").unwrap(),
        Some((4096, Some("192.0.2.10".parse().unwrap()), 4789))
    );
    let shown = host.exec(&["ip", "-d", "link", "show", "vxlan.calico"]);
    assert!(
        shown.contains("vxlan id 4096") && shown.contains("nolearning"),
        "{shown}"
    );
    nl.set_mtu(link.index, 1400).unwrap();
    nl.set_up(link.index).unwrap();
    let peer_mac = [0x66, 0, 0, 0, 0, 2];
    let tunnel: std::net::IpAddr = "10.80.1.0".parse().unwrap();
    let node: std::net::IpAddr = "192.0.2.20".parse().unwrap();
    nl.set_neighbour(link.index, tunnel, peer_mac).unwrap();
    nl.set_fdb(link.index, peer_mac, node).unwrap();
    assert_eq!(nl.neighbours(link.index).unwrap(), vec![(tunnel, peer_mac)]);
    assert_eq!(nl.fdb(link.index).unwrap(), vec![(peer_mac, node)]);
    let fdb = host.exec(&["bridge", "fdb", "show", "dev", "vxlan.calico"]);
    assert!(
        fdb.contains("66:00:00:00:00:02 dst 192.0.2.20 self permanent"),
        "{fdb}"
    );
    let route = Route::new("10.80.1.0/26".parse().unwrap())
        .via(tunnel)
        .dev(link.index)
        .onlink()
        .protocol(80);
    nl.add_route(&route).unwrap();
    assert!(nl.routes(false).unwrap().contains(&route));
    nl.delete_fdb(link.index, peer_mac, node).unwrap();
    nl.delete_neighbour(link.index, tunnel).unwrap();
    assert!(nl.fdb(link.index).unwrap().is_empty());
    assert!(nl.neighbours(link.index).unwrap().is_empty());
}

/// Many route changes in one batch (several sends of 32 KiB): all applied;
/// each failure named by its position while the rest of the same batch
/// still goes in; deletes of routes that are not there are no failure.
#[test]
fn route_batch_applies_thousands_and_names_each_failure() {
    require_root!();
    use calico_dataplane::netlink::RouteOp;
    let ns = TestNetns::new("rb");
    // A veth pair with both ends in the namespace (no dummy module needed).
    ns.exec(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    ns.exec(&["ip", "link", "set", "d1", "up"]);
    ns.exec(&["ip", "addr", "add", "10.200.0.1/24", "dev", "d0"]);
    ns.exec(&["ip", "link", "set", "d0", "up"]);
    let netns = NetNs::open(ns.path()).unwrap();
    let mut nl = Netlink::open_in(&netns).unwrap();
    let ix = nl.link("d0").unwrap().unwrap().index;
    // 10.80.x.y/32 dev d0 proto 80, the i-th.
    let route = |i: u32| {
        let dst = std::net::Ipv4Addr::from(0x0a50_0000 + i);
        Route::new(ipnet::IpNet::from(std::net::IpAddr::V4(dst)))
            .dev(ix)
            .scope(Scope::Link)
            .protocol(80)
    };
    let ours = |nl: &mut Netlink| -> Vec<Route> {
        let mut r = nl.routes_where(false, &|r| r.protocol == 80).unwrap();
        r.sort_by_key(|r| r.dst);
        r
    };
    let shown = |ns: &TestNetns| -> usize {
        ns.exec(&["ip", "route", "show", "proto", "80"])
            .lines()
            .count()
    };

    let ops: Vec<RouteOp> = (0..3000).map(|i| RouteOp::Replace(route(i))).collect();
    let failed = nl.route_batch(&ops);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(shown(&ns), 3000);
    let want: Vec<Route> = (0..3000).map(route).collect();
    assert_eq!(ours(&mut nl), want);
    // Replacing them all again is no error and changes nothing.
    assert!(nl.route_batch(&ops).is_empty());
    assert_eq!(shown(&ns), 3000);

    // A mixed batch of 1,000 (two sends): a few invalid ops, spread over
    // both sends, each a different way of being wrong.
    let bad: [(usize, RouteOp); 5] = [
        // An interface index that does not exist.
        (0, RouteOp::Replace(route(5000).dev(999_999))),
        // A gateway with no route to it (not on d0's subnet, no onlink).
        (
            321,
            RouteOp::Replace(route(5001).via("192.0.2.7".parse().unwrap())),
        ),
        // A delete without a protocol: refused before it is sent.
        (640, RouteOp::Delete(route(10).protocol(0))),
        (777, RouteOp::Replace(route(5002).dev(999_998))),
        (
            999,
            RouteOp::Replace(route(5003).via("198.51.100.1".parse().unwrap())),
        ),
    ];
    let mut mixed: Vec<RouteOp> = (0..1000)
        .map(|i| RouteOp::Replace(route(4000 + i)))
        .collect();
    for (at, op) in &bad {
        mixed[*at] = op.clone();
    }
    let failed = nl.route_batch(&mixed);
    let at: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        at,
        bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        "{failed:?}"
    );
    assert!(
        failed[0].1.to_string().contains("10.80.19.136/32"),
        "{}",
        failed[0].1
    );
    let mut want = want;
    want.extend(
        (0..1000u32)
            .filter(|i| bad.iter().all(|(at, _)| *at != *i as usize))
            .map(|i| route(4000 + i)),
    );
    want.sort_by_key(|r| r.dst);
    assert_eq!(ours(&mut nl), want, "the valid ops of the mixed batch");
    assert_eq!(shown(&ns), 3995);

    // Delete them all, and some that were never there: no failure, none left.
    let mut gone: Vec<RouteOp> = want.iter().cloned().map(RouteOp::Delete).collect();
    gone.extend((5000..5010).map(|i| RouteOp::Delete(route(i))));
    gone.rotate_left(1234);
    let failed = nl.route_batch(&gone);
    assert!(failed.is_empty(), "{failed:?}");
    assert!(ours(&mut nl).is_empty());
    assert_eq!(shown(&ns), 0);
    // The connected route of d0 (proto kernel) is untouched.
    let left = ns.exec(&["ip", "route", "show", "dev", "d0"]);
    assert!(left.contains("10.200.0.0/24"), "{left}");
}
