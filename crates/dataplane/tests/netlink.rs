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
