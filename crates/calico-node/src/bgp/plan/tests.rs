#![allow(clippy::unwrap_used)]

use super::*;

fn node(name: &str, addr: &str, labels: &[(&str, &str)]) -> BgpNode {
    BgpNode {
        name: name.into(),
        ipv4: Some(addr.parse().unwrap()),
        ipv4_subnet: None,
        ipv6: None,
        asn: None,
        route_reflector_cluster_id: None,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn resources(yaml: &str) -> Vec<Resource> {
    calico_api::codec::decode_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn inputs3(extra: &str) -> Inputs {
    let mut i = Inputs {
        me: "a".into(),
        nodes: vec![
            node("a", "10.0.0.2", &[("rack", "r1")]),
            node("b", "10.0.0.1", &[("rack", "r1")]),
            node("c", "10.0.0.3", &[("rack", "r2")]),
        ],
        ..Inputs::default()
    };
    for r in resources(extra) {
        match r {
            Resource::BGPConfiguration(c) => i.configurations.push(c),
            Resource::BGPPeer(p) => i.peers.push(p),
            Resource::BGPFilter(f) => i.filters.push(f),
            _ => {}
        }
    }
    i
}

#[test]
fn mesh_by_default_with_one_connecting_side() {
    let p = plan(&inputs3("")).unwrap();
    assert_eq!((p.local_as, p.listen_port), (64512, 179));
    let b = &p.peers[&"10.0.0.1".parse::<IpAddr>().unwrap()];
    let c = &p.peers[&"10.0.0.3".parse::<IpAddr>().unwrap()];
    assert_eq!(b.kind, PeerKind::Mesh);
    assert!(!b.passive, "b has the lower address: we connect");
    assert!(c.passive, "c has the higher address: it connects");
    assert_eq!(p.peers.len(), 2);
}

#[test]
fn node_as_and_configuration() {
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {asNumber: 65000, listenPort: 1179, nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: 30s}\n",
    );
    i.nodes[2].asn = Some(65003);
    let p = plan(&i).unwrap();
    assert_eq!((p.local_as, p.listen_port), (65000, 1179));
    let c = &p.peers[&"10.0.0.3".parse::<IpAddr>().unwrap()];
    assert_eq!((c.asn, c.restart_time), (65003, 30));
}

#[test]
fn route_reflectors_leave_the_mesh_and_mesh_can_be_off() {
    let mut i = inputs3("");
    i.nodes[2].route_reflector_cluster_id = Some("224.0.0.1".parse().unwrap());
    let p = plan(&i).unwrap();
    assert_eq!(p.peers.len(), 1);
    let i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeToNodeMeshEnabled: false}\n",
    );
    assert!(plan(&i).unwrap().peers.is_empty());
}

#[test]
fn bgp_peers_global_node_specific_and_selectors() {
    let i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeToNodeMeshEnabled: false}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 192.168.1.1, asNumber: 65001, maxRestartTime: 5m, keepaliveTime: 20s}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: mine}\n\
         spec: {node: a, peerIP: '192.168.1.2:1179', asNumber: 65002, keepOriginalNextHop: true}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: other}\n\
         spec: {node: b, peerIP: 192.168.1.3, asNumber: 65003}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rack}\n\
         spec: {nodeSelector: rack == 'r1', peerSelector: rack == 'r2'}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: elsewhere}\n\
         spec: {nodeSelector: rack == 'r2', peerIP: 192.168.1.4, asNumber: 65004}\n",
    );
    let p = plan(&i).unwrap();
    let get = |a: &str| p.peers.get(&a.parse::<IpAddr>().unwrap());
    let tor = get("192.168.1.1").unwrap();
    assert_eq!(
        (tor.asn, tor.kind, tor.restart_time),
        (65001, PeerKind::Global, 300)
    );
    assert_eq!(tor.keepalive, Some(20));
    let mine = get("192.168.1.2").unwrap();
    assert_eq!(mine.kind, PeerKind::NodeSpecific);
    assert!(mine.keep_original_next_hop);
    assert!(get("192.168.1.3").is_none(), "another node's peer");
    assert!(get("192.168.1.4").is_none(), "selector does not match");
    let c = get("10.0.0.3").unwrap();
    assert!(c.calico_node && c.kind == PeerKind::Global && c.passive);
    assert_eq!(p.peers.len(), 3);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
}

#[test]
fn passwords_from_secrets_and_source_address() {
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeMeshPassword: {secretKeyRef: {name: mesh, key: pw}}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 192.168.1.1, asNumber: 65001, sourceAddress: None, password: {secretKeyRef: {name: tor, key: pw}}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: nokey}\n\
         spec: {peerIP: 192.168.1.2, asNumber: 65001, password: {secretKeyRef: {name: gone, key: pw}}}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, v) in [("mesh", "m3sh\n"), ("tor", "t0r")] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("pw"), v).unwrap();
    }
    i.secrets = read_secrets(dir.path());
    let p = plan(&i).unwrap();
    let get = |a: &str| p.peers.get(&a.parse::<IpAddr>().unwrap());
    let mesh = get("10.0.0.1").unwrap();
    assert_eq!(mesh.password.as_deref(), Some("m3sh"));
    assert_eq!(mesh.source_address, Some("10.0.0.2".parse().unwrap()));
    let tor = get("192.168.1.1").unwrap();
    assert_eq!(tor.password.as_deref(), Some("t0r"));
    assert_eq!(tor.source_address, None, "sourceAddress: None");
    assert!(get("192.168.1.2").is_none(), "its secret is missing");
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(p.problems[0].contains("nokey"), "{:?}", p.problems);
}

#[test]
fn route_reflector_topology_both_ways() {
    // c is a route reflector; every node peers with reflectors.
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeToNodeMeshEnabled: false}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: to-rr}\n\
         spec: {nodeSelector: all(), peerSelector: has(route-reflector)}\n",
    );
    i.nodes[2].route_reflector_cluster_id = Some("224.0.0.1".parse().unwrap());
    i.nodes[2]
        .labels
        .insert("route-reflector".into(), "true".into());
    let a = plan(&i).unwrap();
    assert_eq!(
        a.peers.keys().collect::<Vec<_>>(),
        vec![&"10.0.0.3".parse::<IpAddr>().unwrap()]
    );
    assert!(!a.peers.values().next().unwrap().rr_client);
    assert_eq!(a.cluster_id, None);
    i.me = "c".into();
    let c = plan(&i).unwrap();
    assert_eq!(c.cluster_id, Some("224.0.0.1".parse().unwrap()));
    assert_eq!(
        c.peers.len(),
        2,
        "the reflector peers with every node: {:?}",
        c.peers
    );
    assert!(c.peers.values().all(|p| p.rr_client && p.calico_node));
}

#[test]
fn bad_peers_are_problems_not_failures() {
    let i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: half}\n\
         spec: {peerIP: 192.168.1.1}\n",
    );
    let p = plan(&i).unwrap();
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert_eq!(p.peers.len(), 2, "the mesh stays");
}

#[test]
fn exports_skip_pools_without_bgp_export() {
    let mut i = inputs3("");
    i.pools = vec![
        BgpPool {
            cidr: "10.10.0.0/16".parse().unwrap(),
            disable_export: false,
            vxlan: false,
            ipip: EncapMode::Never,
        },
        BgpPool {
            cidr: "10.20.0.0/16".parse().unwrap(),
            disable_export: true,
            vxlan: false,
            ipip: EncapMode::Never,
        },
    ];
    i.my_blocks = vec![
        "10.10.1.0/26".parse().unwrap(),
        "10.20.1.0/26".parse().unwrap(),
    ];
    i.borrowed = vec![
        "10.10.2.7/32".parse().unwrap(),
        "10.20.2.7/32".parse().unwrap(),
    ];
    let p = plan(&i).unwrap();
    assert_eq!(
        p.exports.into_iter().collect::<Vec<_>>(),
        vec![
            "10.10.1.0/26".parse::<IpNet>().unwrap(),
            "10.10.2.7/32".parse::<IpNet>().unwrap()
        ]
    );
}

#[test]
fn services_and_communities() {
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec:\n  serviceClusterIPs: [{cidr: 10.96.0.0/12}]\n  serviceExternalIPs: [{cidr: 192.0.2.0/24}]\n\
         \x20 communities: [{name: web, value: '65001:100'}, {name: big, value: '65001:1:2'}]\n\
         \x20 prefixAdvertisements:\n  - {cidr: 10.10.0.0/16, communities: [web, '65001:200']}\n\
         \x20 - {cidr: 10.10.1.0/26, communities: [big]}\n  - {cidr: 192.0.2.0/24, communities: [nope]}\n",
    );
    i.my_blocks = vec![
        "10.10.1.0/26".parse().unwrap(),
        "10.10.2.0/26".parse().unwrap(),
    ];
    let p = plan(&i).unwrap();
    let n = |s: &str| s.parse::<IpNet>().unwrap();
    assert!(p.exports.contains(&n("10.96.0.0/12")) && p.exports.contains(&n("192.0.2.0/24")));
    let c1 = &p.communities[&n("10.10.1.0/26")];
    assert_eq!(c1.standard, vec![(65001 << 16) | 100, (65001 << 16) | 200]);
    assert_eq!(c1.large, vec![[65001, 1, 2]]);
    assert_eq!(
        p.communities[&n("10.10.2.0/26")].large,
        Vec::<[u32; 3]>::new()
    );
    assert!(!p.communities.contains_key(&n("10.96.0.0/12")));
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
}

#[test]
fn durations() {
    assert_eq!(seconds("120s"), Some(120));
    assert_eq!(seconds("2m"), Some(120));
    assert_eq!(seconds("1h30m"), Some(5400));
    assert_eq!(seconds("500ms"), Some(1));
    assert_eq!(seconds("5"), None);
    assert_eq!(seconds("5x"), None);
}

#[test]
fn no_address_no_plan() {
    let mut i = inputs3("");
    i.nodes[0].ipv4 = None;
    assert!(plan(&i).is_none());
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv6_mesh_is_a_second_session_per_node_pair() {
    let mut i = inputs3("");
    i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
    i.nodes[1].ipv6 = Some("fd00::1".parse().unwrap());
    // c has no IPv6 address: IPv4 only.
    let p = plan(&i).unwrap();
    assert_eq!(p.peers.len(), 3);
    let b6 = &p.peers[&ip("fd00::1")];
    assert_eq!((b6.kind, b6.passive), (PeerKind::Mesh, false));
    assert_eq!(b6.source_address, Some(ip("fd00::2")));
    assert_eq!(p.ipv6, Some("fd00::2".parse().unwrap()));
    assert_eq!(p.router_id, "10.0.0.2".parse::<Ipv4Addr>().unwrap());
    assert_eq!(
        p.peers[&ip("10.0.0.1")].source_address,
        Some(ip("10.0.0.2"))
    );
    // IPv6 only: a router id from the name's hash.
    i.nodes[0].ipv4 = None;
    let p = plan(&i).unwrap();
    assert_eq!(p.router_id, hashed_router_id("a"));
    assert_eq!(
        p.peers.keys().copied().collect::<Vec<_>>(),
        vec![ip("fd00::1")]
    );
    // An IPv6 BGPPeer needs an IPv6 address here.
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
         spec: {peerIP: 'fd00::fe', asNumber: 65001}\n",
    );
    let p = plan(&i).unwrap();
    assert!(
        p.problems[0].contains("no IPv6 address"),
        "{:?}",
        p.problems
    );
    i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
    let p = plan(&i).unwrap();
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.peers[&ip("fd00::fe")].source_address, Some(ip("fd00::2")));
}

#[test]
fn router_id_from_calico_router_id() {
    // Calico's hashToIPv4: the first four bytes of SHA-256(name), the
    // first kept under 224. SHA-256("a") = ca978112...: 0xca = 202.
    assert_eq!(hashed_router_id("a"), Ipv4Addr::new(202, 151, 129, 18));
    let mut i = inputs3("");
    i.router_id = Some("hash".into());
    assert_eq!(plan(&i).unwrap().router_id, hashed_router_id("a"));
    i.router_id = Some("192.0.2.9".into());
    assert_eq!(plan(&i).unwrap().router_id, Ipv4Addr::new(192, 0, 2, 9));
    i.router_id = Some("nonsense".into());
    let p = plan(&i).unwrap();
    assert_eq!(p.router_id, Ipv4Addr::new(10, 0, 0, 2));
    assert!(p.problems[0].contains("CALICO_ROUTER_ID"));
}

#[test]
fn ports_of_peers_and_node_specific_configuration() {
    let i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {listenPort: 1179, logSeverityScreen: Warning,\n\
           prefixAdvertisements: [{cidr: 10.9.0.0/16, communities: ['1:1']}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.b}\n\
         spec: {listenPort: 2179}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.a}\n\
         spec: {logSeverityScreen: Debug, prefixAdvertisements: [{cidr: 10.9.0.0/16, communities: ['2:2']}]}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: '192.0.2.1:1790', asNumber: 65001}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
         spec: {peerIP: '[fd00::fe]:1791', asNumber: 65001}\n\
         ---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: plain}\n\
         spec: {peerIP: 192.0.2.2, asNumber: 65001}\n",
    );
    let mut i = i;
    i.nodes[0].ipv6 = Some("fd00::2".parse().unwrap());
    i.my_blocks = vec!["10.9.1.0/26".parse().unwrap()];
    let p = plan(&i).unwrap();
    assert_eq!(p.listen_port, 1179, "node.a sets no listenPort");
    assert_eq!(
        p.peers[&ip("10.0.0.1")].port,
        2179,
        "b listens on its own port"
    );
    assert_eq!(p.peers[&ip("10.0.0.3")].port, 1179);
    assert_eq!(p.peers[&ip("192.0.2.1")].port, 1790);
    assert_eq!(p.peers[&ip("fd00::fe")].port, 1791);
    assert_eq!(p.peers[&ip("192.0.2.2")].port, 179);
    assert_eq!(p.log, LogLevel::All, "node.a: Debug");
    assert_eq!(
        p.communities[&"10.9.1.0/26".parse::<IpNet>().unwrap()].standard,
        vec![(2 << 16) | 2],
        "node.a's prefixAdvertisements replace the global ones"
    );
    let mut i = i;
    i.me = "c".into();
    let p = plan(&i).unwrap();
    assert_eq!(p.log, LogLevel::None, "Warning: no state messages");
    assert_eq!(LogLevel::from_severity("info"), LogLevel::States);
    assert_eq!(peer_ip("[fd00::1]:179"), Some((ip("fd00::1"), Some(179))));
    assert_eq!(peer_ip("fd00::1"), Some((ip("fd00::1"), None)));
    assert_eq!(peer_ip("10.0.0.1:x"), None);
}

#[test]
fn import_filters_local_prefixes_and_the_prefix_limit() {
    let mut i = inputs3(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 192.168.1.1, asNumber: 65001, filters: [default-in, missing]}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: default-in}\n\
         spec:\n  importV4: [{cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept}]\n\
         \x20 exportV4: [{cidr: 10.0.0.0/8, matchOperator: In, action: Reject}]\n",
    );
    i.nodes[0].ipv4_subnet = Some("10.0.0.0/24".parse().unwrap());
    i.my_blocks = vec!["10.84.0.0/26".parse().unwrap()];
    i.workloads = vec!["10.84.0.5/32".parse().unwrap()];
    i.borrowed = vec!["10.84.1.70/32".parse().unwrap()];
    i.interfaces = vec!["172.16.5.9/16".parse().unwrap()];
    let p = plan(&i).unwrap();
    let tor = &p.peers[&"192.168.1.1".parse::<IpAddr>().unwrap()];
    let default: IpNet = "0.0.0.0/0".parse().unwrap();
    assert_eq!(
        tor.import.verdict(&default, true),
        Some(super::super::filter::Verdict::Accept)
    );
    let ten: IpNet = "10.1.0.0/16".parse().unwrap();
    assert_eq!(
        tor.export.verdict(&ten, false),
        Some(super::super::filter::Verdict::Reject)
    );
    // Mesh peers have no filters.
    let b = &p.peers[&"10.0.0.1".parse::<IpAddr>().unwrap()];
    assert_eq!(b.import.verdict(&default, true), None);
    assert_eq!(tor.max_prefixes, DEFAULT_MAX_PREFIXES);
    assert!(
        p.problems
            .iter()
            .any(|e| e.contains("\"missing\" does not exist")),
        "{:?}",
        p.problems
    );
    // The node's own: its subnet and address, interfaces, block; its
    // workloads' (and borrowed) addresses by equality.
    for (prefix, protected) in [
        ("10.0.0.0/24", true),
        ("10.0.0.2/32", true),
        ("10.0.0.3/32", false),
        ("172.16.0.0/16", true),
        ("172.16.5.9/32", true),
        ("172.16.5.0/24", true),
        ("172.16.6.0/24", false),
        ("10.84.0.0/26", true),
        ("10.84.0.0/16", true),
        ("10.84.0.5/32", true),
        ("10.84.1.70/32", true),
        ("10.84.1.64/26", false),
        ("0.0.0.0/0", true),
    ] {
        let n: IpNet = prefix.parse().unwrap();
        assert_eq!(p.local.protects(&n), protected, "{prefix}");
    }
    // CALICO_BGP_MAX_PREFIXES.
    i.max_prefixes = Some("100".into());
    let p = plan(&i).unwrap();
    assert!(p.peers.values().all(|pp| pp.max_prefixes == 100));
    i.max_prefixes = Some("lots".into());
    let p = plan(&i).unwrap();
    assert!(
        p.peers
            .values()
            .all(|pp| pp.max_prefixes == DEFAULT_MAX_PREFIXES)
    );
    assert!(
        p.problems
            .iter()
            .any(|e| e.contains("CALICO_BGP_MAX_PREFIXES")),
        "{:?}",
        p.problems
    );
}
