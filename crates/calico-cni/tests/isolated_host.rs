//! Issue 13 point 4: pods on a host without a default route (isolated,
//! air-gapped). The host end answers proxy ARP for 169.254.1.1 only when
//! the host can route 169.254.1.1, so on such a host the pods' gateway
//! never resolved and pods reached nothing, not even each other. The real
//! `calico` binary adds two pods to a "node" namespace made by the test
//! with no default route in either family; traffic goes only between the
//! test's namespaces (pod to pod, pod to the node's own addresses).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_testutil::require_root;
use serde_json::json;

mod common;
use common::host::*;
use common::*;

/// What a failed ping is explained with.
const STATE: &str = "ip addr; ip route; ip -6 route; ip neigh; ip -6 neigh";

fn pods_reach_each_other_and_the_host(h: Host) {
    pools(&h);
    let conf = h.conf(
        "1.0.0",
        json!({"ipam": {"type": "calico-ipam", "assign_ipv6": "true"}}),
    );
    let a = pod("web", "iso-a");
    let b = pod("web", "iso-b");
    let oa = h.call("ADD", &a, &conf);
    assert_eq!(oa.code, 0, "{}", oa.raw);
    // The pod's IPv6 gateway is on the host end as soon as ADD returns,
    // not when the kernel's link watcher gets round to it (up to a second
    // later): till then the pod's first packets waited for an NDP
    // retransmit, and a 2 s ping could miss.
    let va = oa.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let ll = h.sh(&format!("ip -6 addr show dev {va}"));
    assert!(
        ll.contains("inet6 fe80::ecee:eeff:feee:eeee/64") && !ll.contains("tentative"),
        "the IPv6 gateway is not ready when ADD returns:\n{ll}"
    );
    let ob = h.call("ADD", &b, &conf);
    assert_eq!(ob.code, 0, "{}", ob.raw);
    let (ia, ib) = (addresses(&oa), addresses(&ob));
    assert_eq!((ia.len(), ib.len()), (2, 2), "{ia:?} {ib:?}");

    // Pod to pod and pod to host, both families, both directions; every
    // path is tried, and all that fail are named.
    let paths = [
        (&a, bare(&ib[0]), "a -> b over IPv4"),
        (&b, bare(&ia[0]), "b -> a over IPv4"),
        (&a, bare(&ib[1]), "a -> b over IPv6"),
        (&b, bare(&ia[1]), "b -> a over IPv6"),
        (&a, ISOLATED_V4, "a -> host over IPv4"),
        (&b, ISOLATED_V4, "b -> host over IPv4"),
        (&a, ISOLATED_V6, "a -> host over IPv6"),
        (&b, ISOLATED_V6, "b -> host over IPv6"),
    ];
    let failed: Vec<&str> = paths
        .iter()
        .filter(|(from, to, _)| !ping(from, to))
        .map(|(_, _, what)| *what)
        .collect();
    assert!(
        failed.is_empty(),
        "no reply on a host without a default route: {failed:?}\nhost:\n{}\npod a:\n{}\npod b:\n{}",
        h.sh(STATE),
        a.ns.exec(&["sh", "-c", STATE]),
        b.ns.exec(&["sh", "-c", STATE]),
    );

    // How: the pod knows its gateway's MAC without asking (a permanent
    // entry, made by the plugin); IPv6 needs no entry: its gateway is the
    // host end's own link-local address, which NDP answers on any host.
    let neigh =
        a.ns.exec(&["ip", "neigh", "show", "169.254.1.1", "dev", "eth0"]);
    assert!(
        neigh.contains("lladdr ee:ee:ee:ee:ee:ee") && neigh.contains("PERMANENT"),
        "{neigh}"
    );
    let v6 =
        a.ns.exec(&["ip", "-6", "neigh", "show", "nud", "permanent"]);
    assert!(v6.trim().is_empty(), "no IPv6 entry is needed: {v6}");

    // CHECK: passes as added, and names the entry and the gateway
    // address once they are gone.
    let mut chk = conf.clone();
    chk["prevResult"] = oa.json.clone();
    let c = h.call("CHECK", &a, &chk);
    assert_eq!(c.code, 0, "{}", c.raw);
    a.ns.exec(&["ip", "neigh", "del", "169.254.1.1", "dev", "eth0"]);
    h.sh(&format!(
        "ip addr del fe80::ecee:eeff:feee:eeee/64 dev {va}"
    ));
    let c = h.call("CHECK", &a, &chk);
    assert_ne!(c.code, 0, "{}", c.raw);
    let m = msg(&c);
    assert!(
        m.contains(&format!(
            "host interface {va} lacks the IPv6 gateway address fe80::ecee:eeff:feee:eeee"
        )),
        "{m}"
    );
    assert!(
        m.contains("neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee (permanent) is missing on eth0 in the pod"),
        "{m}"
    );
    // Without it the pod is back in the trap: proxy ARP stays silent.
    assert!(
        !ping(&a, bare(&ib[0])),
        "proxy ARP answered on a host without a default route: the test proves nothing"
    );

    assert_eq!(h.call("DEL", &a, &conf).code, 0);
    assert_eq!(h.call("DEL", &b, &conf).code, 0);
    h.assert_clean();
}

#[test]
fn pods_reach_each_other_and_the_host_without_a_default_route() {
    require_root!();
    pods_reach_each_other_and_the_host(Host::isolated(local_host));
}
