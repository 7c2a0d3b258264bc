//! BGP (`CALICO_NETWORKING_BACKEND=bird`) on a cluster of network
//! namespaces (see `common`): the node-to-node mesh carrying the blocks of
//! an unencapsulated pool, and BIRD 2 (Debian `bird2`) as a route
//! reflector and as a source of routes.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use calico_testutil::require_root;
use common::Cluster;
use common::bird::Bird;
use common::peers::{GoBgp, RawPeer, open, until};
use serde_json::json;

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: flat}\n\
                    spec: {cidr: 10.84.0.0/16, blockSize: 26, ipipMode: Never, vxlanMode: Never}\n";

/// The blocks of node `i` (`10.84.x.y/26`), from its blackhole routes.
fn blocks_of(c: &Cluster, i: usize) -> Vec<String> {
    c.sh(i, "ip route show type blackhole proto 80")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn bgp_routes(c: &Cluster, i: usize) -> String {
    c.sh(i, "ip route show proto 81")
}

/// Whether node `i` routes every block of node `j` (it has some) straight
/// to it: `<block> via 172.31.0.<j+1> dev eth0`, protocol 81.
fn routes_blocks_of(c: &Cluster, i: usize, j: usize) -> bool {
    let routes = bgp_routes(c, i);
    let blocks = blocks_of(c, j);
    !blocks.is_empty()
        && blocks
            .iter()
            .all(|b| routes.contains(&format!("{b} via 172.31.0.{} dev eth0", j + 1)))
}

/// `calicoctl node status` run on node `i` (it must succeed).
fn node_status(c: &Cluster, i: usize) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", c.nodes[i].ns.name()])
        .arg(calico_testutil::workspace_bin("calicoctl"))
        .args(["node", "status"])
        .env("CALICO_STATE_DIR", c.dir.path().join(&c.nodes[i].name))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "calicoctl node status: {text}");
    text
}

#[test]
fn mesh_of_three_nodes_routes_an_unencapsulated_pool() {
    require_root!();
    let mut c = Cluster::with_backend(3, POOL, "bird");
    let mut pods = Vec::new();
    for i in 0..3 {
        pods.push(c.add_pod(i, &format!("p{i}")));
    }
    for i in 0..3 {
        until("every node's blocks routed on every other node", || {
            (0..3)
                .filter(|j| *j != i)
                .all(|j| routes_blocks_of(&c, i, j))
        });
    }
    for (a, _) in &pods {
        for (b, ip) in &pods {
            if a != b {
                // Felix admits a new pod's interface on its next pass.
                until(&format!("pod {a} reaching {ip}"), || c.ping(*a, ip));
            }
        }
    }
    // A pod on node 3 with an address from node 1's block (the `ipAddrs`
    // annotation): node 3 advertises it as a /32, which wins over node 1's
    // block on the other nodes.
    let block1: ipnet::Ipv4Net = blocks_of(&c, 0)[0].parse().unwrap();
    let borrowed = std::net::Ipv4Addr::from(u32::from(block1.network()) + 50).to_string();
    let annotation = format!("[\"{borrowed}\"]");
    let (_, got) = c.add_pod_with(
        2,
        "borrower",
        json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations":
            {"cni.projectcalico.org/ipAddrs": annotation}}}),
    );
    assert_eq!(got, borrowed);
    for i in [0, 1] {
        until("the borrowed address routed to node 3", || {
            bgp_routes(&c, i).contains(&format!("{borrowed} via 172.31.0.3 dev eth0"))
        });
    }
    until("pod on node 2 reaching the borrowed address", || {
        c.ping(pods[1].0, &borrowed)
    });
    // Readiness of the speaker: two established peers on each node.
    for i in 0..3 {
        until("-bird-ready", || {
            c.node_cmd(i, &["-bird-ready"]).status().unwrap().success()
        });
        let out = c.node_cmd(i, &["-bird-live"]).output().unwrap();
        assert!(out.status.success());
    }
    // `calicoctl node status` on node 1: both mesh peers up.
    let text = node_status(&c, 0);
    assert!(
        text.starts_with("Calico process is running.\n\nIPv4 BGP status\n"),
        "{text}"
    );
    for peer in ["172.31.0.2", "172.31.0.3"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {peer} ")))
            .unwrap_or_else(|| panic!("no row for {peer}:\n{text}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2..4], ["node-to-node mesh", "up"], "{row}");
        assert_eq!(cells[5], "Established", "{row}");
    }
    // Graceful restart (restart time 6 s, nodeMeshMaxRestartTime): the
    // agent of node 3 killed and started again within the restart time —
    // its blocks never leave node 1's kernel, and node 3 keeps node 1's.
    let f = c.dir.path().join("gr.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeMeshMaxRestartTime: 6s}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    // The new restart time is offered by sessions made from now on.
    c.kill_agent(2);
    c.start_agent_on(2);
    until("node 3 peers again", || {
        c.node_cmd(2, &["-bird-ready"]).status().unwrap().success()
    });
    let blocks3 = blocks_of(&c, 2);
    let blocks1 = blocks_of(&c, 0);
    let present = |c: &Cluster| {
        let on1 = bgp_routes(c, 0);
        let on3 = bgp_routes(c, 2);
        blocks3.iter().all(|b| on1.contains(b.as_str()))
            && blocks1.iter().all(|b| on3.contains(b.as_str()))
    };
    assert!(present(&c));
    c.kill_agent(2);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        assert!(present(&c), "routes flapped while node 3's agent was down");
        std::thread::sleep(Duration::from_millis(100));
    }
    c.start_agent_on(2);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        assert!(present(&c), "routes flapped while node 3's agent restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.node_cmd(2, &["-bird-ready"]).status().unwrap().success());
    // Killed for good: its routes stay for the restart time, then go.
    c.kill_agent(2);
    let t = Instant::now();
    until(
        "routes of the stopped node withdrawn after the restart time",
        || {
            let routes = bgp_routes(&c, 0);
            blocks3.iter().all(|b| !routes.contains(b.as_str()))
        },
    );
    let kept = t.elapsed();
    eprintln!("routes of the stopped node kept for {kept:?}");
    assert!(
        kept >= Duration::from_secs(4),
        "withdrawn after {kept:?}, before the restart time"
    );
}

#[test]
fn bird_reflects_routes_between_nodes_and_its_own_reach_the_kernels() {
    require_root!();
    if Command::new("bird").arg("--version").output().is_err() {
        panic!("bird (Debian bird2) is not installed; .ci/run installs it");
    }
    let mut c = Cluster::with_backend(2, POOL, "bird");
    let f = c.dir.path().join("bgp.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeToNodeMeshEnabled: false}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: rr}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 64512}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let bird = Bird::start(
        c.fabric.name(),
        c.dir.path(),
        "bird",
        "router id 172.31.0.254;\n\
         protocol device {}\n\
         protocol static extra { ipv4; route 198.51.100.0/24 blackhole; }\n\
         template bgp rrc {\n  local 172.31.0.254 as 64512;\n  rr client;\n  rr cluster id 1.1.1.1;\n\
           ipv4 { import all; export all; };\n}\n\
         protocol bgp node1 from rrc { neighbor 172.31.0.1 as 64512; }\n\
         protocol bgp node2 from rrc { neighbor 172.31.0.2 as 64512; }\n",
    );
    let (a, _) = c.add_pod(0, "a");
    let (_, ip_b) = c.add_pod(1, "b");
    until("both sessions established in BIRD", || {
        let s = bird.cmd(&["show", "protocols"]);
        s.lines()
            .filter(|l| l.starts_with("node") && l.contains("Established"))
            .count()
            == 2
    });
    for (i, j) in [(0, 1), (1, 0)] {
        until("each node's block reflected to the other", || {
            routes_blocks_of(&c, i, j)
        });
    }
    until("pods across nodes through reflected routes", || {
        c.ping(a, &ip_b)
    });
    for i in 0..2 {
        until("BIRD's own route in the node's kernel", || {
            bgp_routes(&c, i).contains("198.51.100.0/24 via 172.31.0.254 dev eth0")
        });
    }
    bird.cmd(&["disable", "extra"]);
    for i in 0..2 {
        until("BIRD's withdrawal reaching the node's kernel", || {
            !bgp_routes(&c, i).contains("198.51.100.0/24")
        });
    }
    // Route refresh (RFC 2918): `reload in` makes BIRD ask node 1 for its
    // routes again (BIRD keeps no copy of what it received); node 1 sends
    // them, and BIRD counts them as received once more.
    let received = || -> u64 {
        let out = bird.cmd(&["show", "protocols", "all", "node1"]);
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("Import updates:"))
            .unwrap_or_else(|| panic!("no import statistics:\n{out}"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let before = received();
    assert!(before > 0);
    bird.cmd(&["reload", "in", "node1"]);
    until("node 1's routes sent again after ROUTE-REFRESH", || {
        received() > before
    });
}

#[test]
fn gobgp_as_an_external_peer_with_an_md5_password() {
    require_root!();
    if Command::new("gobgpd").arg("--version").output().is_err() {
        panic!("gobgpd (Debian gobgpd) is not installed; .ci/run installs it");
    }
    let mut c = Cluster::with_backend(1, POOL, "bird");
    let (_pod, _) = c.add_pod(0, "a");
    // The password, as a Kubernetes secret would hold it, in the agent's
    // secrets directory: <dir>/<secret>/<key>.
    let secrets = c.dir.path().join("node-1-secrets");
    std::fs::create_dir_all(secrets.join("bgp-tor")).unwrap();
    std::fs::write(secrets.join("bgp-tor").join("password"), "s3cret-md5\n").unwrap();
    c.kill_agent(0);
    c.extra_env.borrow_mut().push((
        "CALICO_BGP_SECRETS_DIR".into(),
        secrets.to_string_lossy().into_owned(),
    ));
    c.start_agent_on(0);
    let f = c.dir.path().join("peer.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 65001, password: {secretKeyRef: {name: bgp-tor, key: password}}}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let g = GoBgp::start(
        &c,
        "[global.config]\n  as = 65001\n  router-id = \"172.31.0.254\"\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"172.31.0.1\"\n    peer-as = 64512\n\
             auth-password = \"s3cret-md5\"\n",
    );
    until("the session established in GoBGP", || {
        g.cmd(&["neighbor"])
            .lines()
            .any(|l| l.contains("172.31.0.1") && l.contains("Establ"))
    });
    let blocks = blocks_of(&c, 0);
    assert!(!blocks.is_empty());
    until(
        "the node's blocks in GoBGP's RIB with AS path 64512",
        || {
            let rib = g.cmd(&["global", "rib"]);
            blocks.iter().all(|b| {
                rib.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.contains(&b.as_str()) && f.contains(&"172.31.0.1") && f.contains(&"64512")
                })
            })
        },
    );
    // Services and communities (BGPConfiguration): the service CIDR is
    // advertised; the pool's blocks carry the communities.
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec:\n  serviceClusterIPs: [{cidr: 10.96.0.0/12}]\n\
         \x20 communities: [{name: pool, value: '65001:100'}]\n\
         \x20 prefixAdvertisements: [{cidr: 10.84.0.0/16, communities: [pool, '65001:7:9']}]\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    until(
        "the service CIDR and the communities in GoBGP's RIB",
        || {
            let rib = g.cmd(&["global", "rib"]);
            rib.lines()
                .any(|l| l.contains("10.96.0.0/12") && l.contains("172.31.0.1"))
                && blocks.iter().all(|b| {
                    rib.lines().any(|l| {
                        l.contains(b.as_str()) && l.contains("65001:100") && l.contains("65001:7:9")
                    })
                })
        },
    );
    g.cmd(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "203.0.113.0/24",
        "nexthop",
        "172.31.0.254",
    ]);
    until("GoBGP's route in the node's kernel", || {
        bgp_routes(&c, 0).contains("203.0.113.0/24 via 172.31.0.254 dev eth0")
    });
    g.cmd(&["global", "rib", "del", "-a", "ipv4", "203.0.113.0/24"]);
    until("GoBGP's withdrawal in the node's kernel", || {
        !bgp_routes(&c, 0).contains("203.0.113.0/24")
    });
    // The wrong password: no session.
    std::fs::write(secrets.join("bgp-tor").join("password"), "wrong\n").unwrap();
    c.kill_agent(0);
    c.start_agent_on(0);
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        !g.cmd(&["neighbor"])
            .lines()
            .any(|l| l.contains("172.31.0.1") && l.contains("Establ")),
        "a session with the wrong password"
    );
}

/// Malformed input from a configured peer: the NOTIFICATION RFC 4271 asks
/// for and a closed connection, or (RFC 7606) the update's routes treated
/// as withdrawn with the session kept; the agent never falls over.
#[test]
fn malformed_messages_get_notifications_and_the_agent_stays_up() {
    use calico_bgp::msg::{Message, err};
    require_root!();
    let c = Cluster::with_backend(1, POOL, "bird");
    let f = c.dir.path().join("peer.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: raw}\n\
         spec: {peerIP: 172.31.0.254, asNumber: 65001}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let connect = || {
        let t = Instant::now();
        loop {
            let mut p = RawPeer::connect(&c);
            // The speaker answers a configured peer with its OPEN.
            match p.next() {
                Some(Message::Open(o)) => {
                    assert_eq!(o.asn, 64512);
                    return p;
                }
                other => assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "no OPEN from the speaker: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    // A broken marker: message header error, connection not synchronised.
    let mut p = connect();
    let mut bad = vec![0u8; 19];
    bad[16..18].copy_from_slice(&19u16.to_be_bytes());
    bad[18] = 4;
    p.send_raw(&bad);
    assert_eq!(
        p.notification(),
        (err::MESSAGE_HEADER, err::CONNECTION_NOT_SYNCHRONIZED)
    );
    assert!(p.next().is_none(), "closed after the NOTIFICATION");
    // The wrong AS: OPEN message error, bad peer AS.
    let mut p = connect();
    p.send(&open(65002));
    assert_eq!(p.notification(), (err::OPEN_MESSAGE, err::BAD_PEER_AS));
    // A good session, then an UPDATE whose ORIGIN is malformed: treated as
    // withdraw, the session stays (a KEEPALIVE still gets through and the
    // route never reaches the kernel); then one whose attribute lengths
    // overrun the message: UPDATE message error, malformed attribute list.
    let mut p = connect();
    p.send(&open(65001));
    p.send(&Message::Keepalive);
    let mut origin_bad = Vec::new();
    // withdrawn len 0; attributes: ORIGIN with value 7 (invalid), AS_PATH
    // [65001], NEXT_HOP 172.31.0.254; NLRI 203.0.113.0/24.
    let attrs: Vec<u8> = [
        &[0x40, 1, 1, 7][..],
        &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9][..],
        &[0x40, 3, 4, 172, 31, 0, 254][..],
    ]
    .concat();
    origin_bad.extend_from_slice(&[0u8, 0]);
    origin_bad.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    origin_bad.extend_from_slice(&attrs);
    origin_bad.extend_from_slice(&[24, 203, 0, 113]);
    let frame = |body: &[u8], kind: u8| {
        let mut m = vec![0xffu8; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(kind);
        m.extend_from_slice(body);
        m
    };
    p.send_raw(&frame(&origin_bad, 2));
    p.send(&Message::Keepalive);
    until("the session established", || {
        c.node_cmd(0, &["-bird-ready"]).status().unwrap().success()
    });
    // The same update with a valid ORIGIN for another prefix is installed:
    // the treat-as-withdraw above was not a dead session.
    let mut good = origin_bad.clone();
    good[7] = 0; // ORIGIN IGP
    let n = good.len();
    good[n - 3..].copy_from_slice(&[198, 51, 100]);
    p.send_raw(&frame(&good, 2));
    until("the valid route in the kernel", || {
        bgp_routes(&c, 0).contains("198.51.100.0/24 via 172.31.0.254")
    });
    assert!(
        !bgp_routes(&c, 0).contains("203.0.113.0/24"),
        "a route with a malformed ORIGIN was installed"
    );
    // Total attribute length larger than the message.
    let overrun = [0u8, 0, 0x01, 0x00, 0x40, 1, 1, 0];
    p.send_raw(&frame(&overrun, 2));
    assert_eq!(
        p.notification(),
        (err::UPDATE_MESSAGE, err::MALFORMED_ATTRIBUTE_LIST)
    );
    // Still alive and serving.
    assert!(c.node_cmd(0, &["-bird-live"]).status().unwrap().success());
    let mut p = connect();
    p.send(&open(65001));
    p.send(&Message::Keepalive);
    until("the session established again", || {
        c.node_cmd(0, &["-bird-ready"]).status().unwrap().success()
    });
    drop(p);
}

/// calico-node as a route reflector (RFC 4456): node 3 has a
/// `routeReflectorClusterID`, the mesh is off, and one BGPPeer makes every
/// node peer with the reflectors (peerings between Calico nodes go both
/// ways). Nodes 1 and 2 have no session with each other, yet each learns
/// the other's blocks through node 3, next hop unchanged.
#[test]
fn calico_node_reflects_routes_for_its_clients() {
    require_root!();
    let mut c = Cluster::with_backend(3, POOL, "bird");
    let f = c.dir.path().join("rr.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n\
         spec: {nodeToNodeMeshEnabled: false}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: to-reflectors}\n\
         spec: {nodeSelector: all(), peerSelector: has(route-reflector)}\n",
    )
    .unwrap();
    c.calicoctl(&[
        "patch",
        "node",
        "node-3",
        "-p",
        r#"{"metadata":{"labels":{"route-reflector":"true"}},"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}"#,
    ]);
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let (a, _) = c.add_pod(0, "a");
    let (_, ip_b) = c.add_pod(1, "b");
    for (i, j) in [(0, 1), (1, 0)] {
        until("a client's block reflected to the other client", || {
            routes_blocks_of(&c, i, j)
        });
    }
    until("pods across the clients", || c.ping(a, &ip_b));
    // The clients peer only with the reflector.
    let status = |i: usize| node_status(&c, i);
    let s1 = status(0);
    assert!(
        s1.contains("| 172.31.0.3 ") && !s1.contains("| 172.31.0.2 "),
        "{s1}"
    );
    let s3 = status(2);
    assert!(
        s3.contains("| 172.31.0.1 ") && s3.contains("| 172.31.0.2 "),
        "{s3}"
    );
    // The reflector routes to both clients itself.
    let r3 = bgp_routes(&c, 2);
    assert!(
        r3.contains("via 172.31.0.1 dev eth0") && r3.contains("via 172.31.0.2 dev eth0"),
        "{r3}"
    );
}

const POOL6: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: flat6}\n\
                     spec: {cidr: 'fd00:84::/112', blockSize: 122, ipipMode: Never, vxlanMode: Never}\n";

/// The global IPv6 address of a pod.
fn pod_ipv6(c: &Cluster, pod: usize) -> String {
    let out = c.pods[pod].exec(&[
        "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global",
    ]);
    let f: Vec<&str> = out.split_whitespace().collect();
    let i = f.iter().position(|w| *w == "inet6").unwrap();
    f[i + 1].split('/').next().unwrap().to_string()
}

/// Two dual-stack nodes: the mesh runs an IPv6 session beside the IPv4
/// one (as Calico's BIRD and BIRD6) and carries the IPv6 blocks; GoBGP as
/// an external peer over both families — on a port of its own (`peerIP`
/// `addr:port`), receiving every node's blocks from the node it peers with
/// (next hop self; `keepOriginalNextHop` keeps the other node's), and
/// sending an IPv6 route into the node's kernel.
#[test]
fn dual_stack_mesh_and_an_external_peer_over_both_families() {
    require_root!();
    let pools = format!("{POOL}---\n{POOL6}");
    let mut c = Cluster::dual_stack(2, &pools, "bird");
    let dual =
        json!({"ipam": {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}});
    let (p0, v4_0) = c.add_pod_with(0, "d0", dual.clone());
    let (p1, v4_1) = c.add_pod_with(1, "d1", dual);
    let (v6_0, v6_1) = (pod_ipv6(&c, p0), pod_ipv6(&c, p1));
    assert!(v6_0.starts_with("fd00:84::") && v6_1.starts_with("fd00:84::"));
    let blocks6 = |i: usize| -> Vec<String> {
        c.sh(i, "ip -6 route show type blackhole proto 80")
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect()
    };
    for (i, j) in [(0, 1), (1, 0)] {
        until("the other node's IPv6 blocks via its IPv6 address", || {
            let routes = c.sh(i, "ip -6 route show proto 81");
            let b = blocks6(j);
            !b.is_empty()
                && b.iter()
                    .all(|b| routes.contains(&format!("{b} via fd00:31::{} dev eth0", j + 1)))
        });
        until("the other node's IPv4 blocks", || {
            routes_blocks_of(&c, i, j)
        });
    }
    for (from, to) in [(p0, &v6_1), (p1, &v6_0), (p0, &v4_1), (p1, &v4_0)] {
        until(&format!("pod {from} reaching {to}"), || c.ping(from, to));
    }
    let status = node_status(&c, 0);
    let v6_part = status.split("IPv6 BGP status").nth(1).unwrap();
    assert!(
        v6_part.lines().any(|l| l.starts_with("| fd00:31::2 ")
            && l.contains("node-to-node mesh")
            && l.contains("Established")),
        "{status}"
    );

    // GoBGP on port 1790, peering with node 1 over IPv4 and IPv6.
    let f = c.dir.path().join("peers.yaml");
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {node: node-1, peerIP: '172.31.0.254:1790', asNumber: 65001}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
         spec: {node: node-1, peerIP: '[fd00:31::fe]:1790', asNumber: 65001}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let g = GoBgp::start(
        &c,
        "[global.config]\n  as = 65001\n  router-id = \"172.31.0.254\"\n  port = 1790\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"172.31.0.1\"\n    peer-as = 64512\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"fd00:31::1\"\n    peer-as = 64512\n\
         \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv6-unicast\"\n",
    );
    until("both sessions established in GoBGP", || {
        let n = g.cmd(&["neighbor"]);
        ["172.31.0.1", "fd00:31::1"]
            .iter()
            .all(|a| n.lines().any(|l| l.contains(a) && l.contains("Establ")))
    });
    // (prefix, next hop) rows of GoBGP's RIB of a family, AS path 64512.
    let rib = |family: &str| -> Vec<(String, String)> {
        g.cmd(&["global", "rib", "-a", family])
            .lines()
            .filter(|l| l.contains("64512"))
            .filter_map(|l| {
                let f: Vec<&str> = l
                    .split_whitespace()
                    .filter(|w| *w != "*>" && *w != "*")
                    .collect();
                Some((f.first()?.to_string(), f.get(1)?.to_string()))
            })
            .collect()
    };
    let expect = |keep: bool| {
        let mut want = Vec::new();
        for j in 0..2 {
            let hop4 = if keep {
                format!("172.31.0.{}", j + 1)
            } else {
                "172.31.0.1".into()
            };
            let hop6 = if keep {
                format!("fd00:31::{}", j + 1)
            } else {
                "fd00:31::1".into()
            };
            want.extend(
                blocks_of(&c, j)
                    .into_iter()
                    .map(|b| ("ipv4", b, hop4.clone())),
            );
            want.extend(blocks6(j).into_iter().map(|b| ("ipv6", b, hop6.clone())));
        }
        want
    };
    let all_in_rib = |want: &[(&str, String, String)]| {
        let (r4, r6) = (rib("ipv4"), rib("ipv6"));
        want.iter().all(|(fam, b, hop)| {
            let r = if *fam == "ipv4" { &r4 } else { &r6 };
            r.contains(&(b.clone(), hop.clone()))
        })
    };
    let want = expect(false);
    until("both nodes' blocks in GoBGP, next hop node 1", || {
        all_in_rib(&want)
    });
    // keepOriginalNextHop: node 2's blocks keep node 2 as next hop.
    std::fs::write(
        &f,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n\
         spec: {node: node-1, peerIP: '172.31.0.254:1790', asNumber: 65001, keepOriginalNextHop: true}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor6}\n\
         spec: {node: node-1, peerIP: '[fd00:31::fe]:1790', asNumber: 65001, keepOriginalNextHop: true}\n",
    )
    .unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    let want = expect(true);
    until("node 2's blocks in GoBGP with node 2 as next hop", || {
        all_in_rib(&want)
    });
    // An IPv6 route from GoBGP into node 1's kernel, and out again.
    g.cmd(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv6",
        "2001:db8:99::/48",
        "nexthop",
        "fd00:31::fe",
    ]);
    until("GoBGP's IPv6 route in node 1's kernel", || {
        c.sh(0, "ip -6 route show proto 81")
            .contains("2001:db8:99::/48 via fd00:31::fe dev eth0")
    });
    g.cmd(&["global", "rib", "del", "-a", "ipv6", "2001:db8:99::/48"]);
    until("GoBGP's IPv6 withdrawal in node 1's kernel", || {
        !c.sh(0, "ip -6 route show proto 81")
            .contains("2001:db8:99::/48")
    });
}

/// An IP-in-IP pool: learned routes into it go through `tunl0` (`Always`),
/// or straight to a node in this node's subnet (`CrossSubnet`), as
/// Calico's BIRD programs them; the Felix part leaves these routes to BGP.
/// This kernel may lack the ipip module: the test then stands a veth
/// named `tunl0` in for it (no dummy module either) — the routes are
/// checked, no packet is sent through the tunnel.
#[test]
fn ip_in_ip_pools_route_through_tunl0_from_bgp() {
    require_root!();
    let pool = POOL.replace("ipipMode: Never", "ipipMode: Always");
    let mut c = Cluster::with_backend(2, &pool, "bird");
    for i in 0..2 {
        c.sh(
            i,
            "ip link show tunl0 >/dev/null 2>&1 || ip link add tunl0 type veth peer name tunl0-end; \
             ip link set tunl0 up",
        );
    }
    c.add_pod(0, "a");
    c.add_pod(1, "b");
    until("node 2's block blackholed", || !blocks_of(&c, 1).is_empty());
    let theirs = blocks_of(&c, 1);
    until("node 2's blocks through tunl0 on node 1", || {
        let routes = bgp_routes(&c, 0);
        theirs.iter().all(|b| {
            routes.lines().any(|l| {
                l.starts_with(&format!("{b} via 172.31.0.2 dev tunl0")) && l.contains("onlink")
            })
        })
    });
    let felix = c.sh(0, "ip route show proto 80");
    assert!(
        theirs.iter().all(|b| !felix.contains(b.as_str())),
        "Felix programmed IPIP routes beside BGP:\n{felix}"
    );
    // CrossSubnet: both nodes are in 172.31.0.0/24, so no tunnel.
    let f = c.dir.path().join("pool.yaml");
    std::fs::write(&f, POOL.replace("ipipMode: Never", "ipipMode: CrossSubnet")).unwrap();
    c.calicoctl(&["apply", "-f", f.to_str().unwrap()]);
    until("node 2's blocks straight over eth0 on node 1", || {
        let routes = bgp_routes(&c, 0);
        theirs
            .iter()
            .all(|b| routes.contains(&format!("{b} via 172.31.0.2 dev eth0")))
    });
}
