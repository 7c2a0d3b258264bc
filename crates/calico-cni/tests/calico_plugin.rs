//! The real `calico` binary, run as a runtime runs it, inside a "host"
//! network namespace made by the test, against pods that are namespaces
//! made by the test; on a real SQLite file and on a real etcd. Traffic goes
//! only between those namespaces. This file: the dataplane, connectivity,
//! CHECK, failures, DEL/ADD races, concurrency, delegated IPAM.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use calico_testutil::require_root;
use serde_json::json;

mod common;
use common::host::*;
use common::*;

fn dataplane_endpoint_and_every_version(h: Host) {
    pools(&h);
    for (i, v) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let dual = i % 2 == 0;
        let conf = h.conf(
            v,
            json!({"mtu": 1400, "ipam": {"type": "calico-ipam", "assign_ipv6": if dual {"true"} else {"false"}}}),
        );
        let p = pod("web", &format!("nginx-{i}"));
        let out = h.call("ADD", &p, &conf);
        assert_eq!(out.code, 0, "{v}: {}", out.raw);
        assert_eq!(out.json["cniVersion"], *v);
        let addrs = addresses(&out);
        assert_eq!(addrs.len(), if dual { 2 } else { 1 }, "{v}: {}", out.raw);
        let v4 = addrs[0].clone();
        assert!(v4.starts_with("10.70.") && v4.ends_with("/32"), "{v4}");
        let veth = calico_cni::plugin::identity::veth_name(&format!("web.nginx-{i}"));
        assert_eq!(out.json["interfaces"][0]["name"], veth.as_str());
        assert_eq!(out.json["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
        assert_eq!(out.json["interfaces"][1]["name"], "eth0");
        assert_eq!(
            out.json["interfaces"][1]["sandbox"],
            p.ns.path().display().to_string()
        );
        assert_eq!(out.json["ips"][0]["interface"], 1);

        // Host end: name, MAC, up, MTU, sysctls, a scope-link route per address.
        let link = h.sh(&format!("ip -d link show {veth}"));
        assert!(
            link.contains("ee:ee:ee:ee:ee:ee") && link.contains("mtu 1400"),
            "{link}"
        );
        assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
        for (key, want) in [
            ("ipv4/conf/{}/proxy_arp", "1"),
            ("ipv4/neigh/{}/proxy_delay", "0"),
            ("ipv4/conf/{}/forwarding", "1"),
            ("ipv4/conf/{}/route_localnet", "1"),
        ] {
            let path = format!("/proc/sys/net/{}", key.replace("{}", &veth));
            assert_eq!(h.sh(&format!("cat {path}")).trim(), want, "{path}");
        }
        let routes = h.sh("ip route show");
        assert!(
            routes.contains(&format!("{} dev {veth} scope link", bare(&v4))),
            "{routes}"
        );
        // Container end: addresses, gateway routes.
        let inside = p.ns.exec(&["ip", "addr", "show", "eth0"]);
        assert!(inside.contains(&format!("inet {v4}")), "{inside}");
        let r = p.ns.exec(&["ip", "route", "show"]);
        assert!(r.contains("default via 169.254.1.1 dev eth0"), "{r}");
        assert!(r.contains("169.254.1.1 dev eth0 scope link"), "{r}");
        if dual {
            let v6 = addrs[1].clone();
            assert!(v6.starts_with("fd00:70::") && v6.ends_with("/128"), "{v6}");
            assert!(inside.contains(&format!("inet6 {v6}")), "{inside}");
            let r6 = p.ns.exec(&["ip", "-6", "route", "show"]);
            assert!(
                r6.contains("default via fe80::ecee:eeff:feee:eeee dev eth0"),
                "{r6}"
            );
            let hr6 = h.sh("ip -6 route show");
            assert!(hr6.contains(&format!("{} dev {veth}", bare(&v6))), "{hr6}");
            for (key, want) in [("proxy_ndp", "1"), ("accept_ra", "0"), ("forwarding", "1")] {
                let path = format!("/proc/sys/net/ipv6/conf/{veth}/{key}");
                assert_eq!(h.sh(&format!("cat {path}")).trim(), want, "{path}");
            }
        }

        // The WorkloadEndpoint, as Calico names and fills it.
        let ep = h.calicoctl_json(&[
            "get",
            "workloadendpoint",
            &format!("node--a-k8s-nginx--{i}-eth0"),
            "-n",
            "web",
            "-o",
            "json",
        ]);
        let s = &ep["spec"];
        assert_eq!(s["orchestrator"], "k8s");
        assert_eq!(s["node"], NODE);
        assert_eq!(s["pod"], format!("nginx-{i}"));
        assert_eq!(s["containerID"], p.id.as_str());
        assert_eq!(s["endpoint"], "eth0");
        assert_eq!(s["interfaceName"], veth.as_str());
        assert_eq!(s["profiles"], json!(["kns.web"]));
        assert_eq!(s["ipNetworks"], json!(addrs));
        assert_eq!(s["mac"], out.json["interfaces"][1]["mac"]);
        assert_eq!(
            ep["metadata"]["labels"]["projectcalico.org/namespace"],
            "web"
        );
        assert_eq!(
            ep["metadata"]["labels"]["projectcalico.org/orchestrator"],
            "k8s"
        );

        if !v.starts_with("0.3") {
            let mut chk = conf.clone();
            chk["prevResult"] = out.json.clone();
            let c = h.call("CHECK", &p, &chk);
            assert_eq!(c.code, 0, "{v} CHECK: {}", c.raw);
        }

        // DEL removes everything; a second DEL, and one after the netns is
        // gone, succeed.
        assert_eq!(h.call("DEL", &p, &conf).code, 0);
        assert_eq!(h.call("DEL", &p, &conf).code, 0, "DEL must be idempotent");
        let gone = h.call_raw("DEL", &p.id, "/run/netns/no-such-ns".into(), &p.args, &conf);
        assert_eq!(gone.code, 0, "{}", gone.raw);
        h.assert_clean();
    }
}

fn pods_reach_each_other(h: Host) {
    pools(&h);
    let conf = h.conf(
        "1.0.0",
        json!({"ipam": {"type": "calico-ipam", "assign_ipv6": "true"}}),
    );
    let a = pod("web", "a");
    let b = pod("web", "b");
    let oa = h.call("ADD", &a, &conf);
    let ob = h.call("ADD", &b, &conf);
    assert_eq!(oa.code, 0, "{}", oa.raw);
    assert_eq!(ob.code, 0, "{}", ob.raw);
    let (ia, ib) = (addresses(&oa), addresses(&ob));
    // Through the host: the gateway 169.254.1.1, host routes per pod.
    assert!(ping(&a, bare(&ib[0])), "a cannot reach b over IPv4");
    assert!(ping(&b, bare(&ia[0])), "b cannot reach a over IPv4");
    assert!(ping(&a, bare(&ib[1])), "a cannot reach b over IPv6");
    // The pod reaches the gateway at the host end's MAC.
    let neigh = a.ns.exec(&["ip", "neigh", "show", "169.254.1.1"]);
    assert!(neigh.contains("ee:ee:ee:ee:ee:ee"), "{neigh}");
    // A TCP connection, pod to pod.
    let port = "8080";
    let server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            b.ns.name(),
            "busybox",
            "nc",
            "-l",
            "-p",
            port,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("busybox nc");
    std::thread::sleep(Duration::from_millis(300));
    let sent = a.ns.try_exec(&[
        "sh",
        "-c",
        &format!(
            "echo hello-from-a | busybox nc -w 2 {} {port}",
            bare(&ib[0])
        ),
    ]);
    let out = server.wait_with_output().expect("nc output");
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello-from-a");

    assert_eq!(h.call("DEL", &a, &conf).code, 0);
    assert!(!ping(&b, bare(&ia[0])), "a still reachable after DEL");
    assert_eq!(h.call("DEL", &b, &conf).code, 0);
    h.assert_clean();
}

fn check_names_what_is_missing(h: Host) {
    pools(&h);
    let conf = h.conf("1.1.0", json!({}));
    let p = pod("web", "chk");
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let v4 = bare(&addresses(&out)[0]).to_string();
    let veth = out.json["interfaces"][0]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut chk = conf.clone();
    chk["prevResult"] = out.json.clone();
    assert_eq!(h.call("CHECK", &p, &chk).code, 0);

    // Without prevResult: a configuration error.
    let c = h.call("CHECK", &p, &conf);
    assert_eq!(c.json["code"], 7, "{}", c.raw);

    h.sh(&format!("ip route del {v4}/32 dev {veth}"));
    p.ns.exec(&["ip", "route", "del", "default"]);
    let c = h.call("CHECK", &p, &chk);
    assert_ne!(c.code, 0);
    let m = msg(&c);
    assert!(
        m.contains(&format!("host route {v4}/32 dev {veth} is missing")),
        "{m}"
    );
    assert!(
        m.contains("route 0.0.0.0/0 via 169.254.1.1 dev eth0 is missing in the pod"),
        "{m}"
    );

    let (code, o) = h.ds.calicoctl(&[
        "delete",
        "workloadendpoint",
        "node--a-k8s-chk-eth0",
        "-n",
        "web",
    ]);
    assert_eq!(code, 0, "{o}");
    h.ds.calicoctl(&["ipam", "release", "--ip", &v4]);
    let c = h.call("CHECK", &p, &chk);
    let m = msg(&c);
    assert!(
        m.contains("workload endpoint node--a-k8s-chk-eth0 is missing"),
        "{m}"
    );
    assert!(m.contains(&format!("address {v4} is not allocated")), "{m}");

    p.ns.exec(&["ip", "link", "del", "eth0"]);
    let c = h.call("CHECK", &p, &chk);
    let m = msg(&c);
    assert!(
        m.contains(&format!("host interface {veth} is missing")),
        "{m}"
    );
    assert!(m.contains("eth0 is missing in the pod namespace"), "{m}");
    assert_eq!(h.call("DEL", &p, &conf).code, 0);
    h.assert_clean();
}

fn failures_undo_everything(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    // The interface name is taken inside the pod: addresses are released.
    let p = pod("web", "taken");
    p.ns.exec(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0",
    ]);
    let out = h.call("ADD", &p, &conf);
    assert_ne!(out.code, 0);
    assert!(
        msg(&out).contains("an interface of that name already exists"),
        "{}",
        out.raw
    );
    h.assert_clean();

    // A node name the endpoint cannot carry: fails after the veth and the
    // addresses were made; both are undone.
    let mut bad = conf.clone();
    bad["nodename"] = json!("Bad_Node");
    let q = pod("web", "badnode");
    let out = h.call("ADD", &q, &bad);
    assert_ne!(out.code, 0);
    assert!(
        msg(&out).contains("Bad_Node") && msg(&out).contains("is invalid"),
        "{}",
        out.raw
    );
    h.assert_clean();

    // A netns that does not exist: an error before anything is allocated.
    let out = h.call_raw(
        "ADD",
        "ghost",
        "/run/netns/calico-rs-no-such".into(),
        "",
        &conf,
    );
    assert_ne!(out.code, 0);
    assert!(
        msg(&out).contains("/run/netns/calico-rs-no-such"),
        "{}",
        out.raw
    );
    h.assert_clean();

    // Missing CNI_NETNS: invalid environment (4).
    let out = h.call_raw("ADD", "ghost", String::new(), "", &conf);
    assert_eq!(out.json["code"], 4, "{}", out.raw);

    // Pool exhausted: the error names the pool; nothing half-made.
    let mut tiny = h.conf("1.0.0", json!({}));
    tiny["ipam"] = json!({"type": "calico-ipam", "ipv4_pools": ["tiny"]});
    h.ds.apply("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: tiny}\nspec: {cidr: '10.72.0.0/31', blockSize: 31}\n");
    let pods: Vec<Pod> = (0..3).map(|i| pod("web", &format!("t{i}"))).collect();
    let outs: Vec<Out> = pods.iter().map(|p| h.call("ADD", p, &tiny)).collect();
    assert_eq!(outs[0].code, 0, "{}", outs[0].raw);
    assert_eq!(outs[1].code, 0, "{}", outs[1].raw);
    assert_ne!(outs[2].code, 0);
    assert!(msg(&outs[2]).contains("10.72.0.0/31"), "{}", outs[2].raw);
    for p in &pods {
        assert_eq!(h.call("DEL", p, &tiny).code, 0);
    }
    h.assert_clean();

    // The host already routes the address through another interface: refused
    // (as Calico), and the pod's veth and address are undone.
    h.sh("ip route add 10.70.5.5/32 dev up0");
    let mut taken = conf.clone();
    taken["runtimeConfig"] = json!({"ips": ["10.70.5.5"]});
    let r = pod("web", "routed");
    let out = h.call("ADD", &r, &taken);
    assert_ne!(out.code, 0);
    assert!(
        msg(&out).contains("already exists for an interface other than"),
        "{}",
        out.raw
    );
    h.sh("ip route del 10.70.5.5/32 dev up0");
    h.assert_clean();

    // A config that does not decode: code 6.
    let mut broken = conf.clone();
    broken["ipam"] = json!({"type": "calico-ipam", "assign_ipv4": "maybe"});
    let out = h.call("ADD", &p, &broken);
    assert_eq!(out.json["code"], 6, "{}", out.raw);
    assert!(
        msg(&out).contains("invalid boolean \"maybe\""),
        "{}",
        out.raw
    );
    h.assert_clean();
}

fn readd_right_after_del(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    let first = pod("web", "again");
    let out = h.call("ADD", &first, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let ip = addresses(&out)[0].clone();
    assert_eq!(h.call("DEL", &first, &conf).code, 0);
    // Same pod name (same veth name), new sandbox, the same address.
    let mut second = pod("web", "again");
    second.id = format!("{}-2", first.id);
    second.args = second.args.replace(&first.id, &second.id);
    let mut fixed = conf.clone();
    fixed["runtimeConfig"] = json!({"ips": [ip]});
    let out = h.call("ADD", &second, &fixed);
    assert_eq!(out.code, 0, "{}", out.raw);
    std::thread::sleep(Duration::from_millis(500));
    let mut chk = fixed.clone();
    chk["prevResult"] = out.json.clone();
    let c = h.call("CHECK", &second, &chk);
    assert_eq!(c.code, 0, "the new pod lost its dataplane: {}", c.raw);
    assert_eq!(h.call("DEL", &second, &fixed).code, 0);
    h.assert_clean();
}

/// The host end and host route of the sandbox `added` made are there.
fn assert_dataplane(h: &Host, added: &Out, when: &str) {
    let veth = added.json["interfaces"][0]["name"].as_str().unwrap_or("");
    let ip = bare(&addresses(added)[0]).to_string();
    let links = h.links();
    assert!(links.contains(veth), "{when}: {veth} lost:\n{links}");
    let routes = h.sh("ip route show");
    assert!(
        routes.contains(&format!("{ip} dev {veth} scope link")),
        "{when}: host route lost:\n{routes}"
    );
}

/// CHECK of `p` against its ADD result passes: host end, host routes,
/// container end, endpoint (with `p`'s container ID) and IPAM handle.
fn assert_intact(h: &Host, p: &Pod, conf: &serde_json::Value, added: &Out, when: &str) {
    let mut chk = conf.clone();
    chk["prevResult"] = added.json.clone();
    let c = h.call("CHECK", p, &chk);
    assert_eq!(c.code, 0, "{when}: the new sandbox was damaged: {}", c.raw);
    assert_dataplane(h, added, when);
}

/// Issue 19 point 2: the runtime retries DEL for a sandbox the pod has
/// already replaced. Only what belongs to that container ID may go.
fn late_del_of_an_old_sandbox(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    let old = pod("default", "web");
    let out = h.call("ADD", &old, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert_eq!(h.call("DEL", &old, &conf).code, 0);
    // Same pod (same host end name, same endpoint), new sandbox.
    let new = pod("default", "web");
    let added = h.call("ADD", &new, &conf);
    assert_eq!(added.code, 0, "{}", added.raw);
    assert_intact(&h, &new, &conf, &added, "after ADD");

    // The late DEL: with the old namespace still there, gone, and not given.
    let old_path = old.ns.path().display().to_string();
    for netns in [old_path.as_str(), "/run/netns/calico-rs-gone", ""] {
        let d = h.call_raw("DEL", &old.id, netns.to_string(), &old.args, &conf);
        assert_eq!(d.code, 0, "late DEL (netns {netns:?}): {}", d.raw);
        assert_intact(
            &h,
            &new,
            &conf,
            &added,
            &format!("late DEL, netns {netns:?}"),
        );
    }

    // A DEL the runtime lost: the old sandbox still holds its address when
    // the new one is added. The late DEL frees the old handle only.
    let older = pod("default", "api");
    let first = h.call("ADD", &older, &conf);
    assert_eq!(first.code, 0, "{}", first.raw);
    let newer = pod("default", "api");
    let second = h.call("ADD", &newer, &conf);
    assert_eq!(second.code, 0, "{}", second.raw);
    assert_ne!(addresses(&first), addresses(&second));
    let d = h.call("DEL", &older, &conf);
    assert_eq!(d.code, 0, "{}", d.raw);
    assert_intact(&h, &newer, &conf, &second, "late DEL of a lost sandbox");
    assert_intact(&h, &new, &conf, &added, "late DEL of another pod");
    let check = h.ipam_in_use();
    assert!(
        check.contains("Found 2 IPs allocated in IPAM."),
        "the old sandbox's address was not released (or a live one was):\n{check}"
    );

    // The new ADD has made its veth but not yet rewritten the endpoint,
    // which still names the old container: the old namespace shows the
    // veth is not the old sandbox's, so only the endpoint goes.
    let ep = h.calicoctl_json(&[
        "get",
        "workloadendpoint",
        "node--a-k8s-web-eth0",
        "-n",
        "default",
        "-o",
        "json",
    ]);
    let mut stale = ep.clone();
    stale["spec"]["containerID"] = json!(old.id);
    h.ds.apply(&stale.to_string());
    let d = h.call_raw("DEL", &old.id, old_path.clone(), &old.args, &conf);
    assert_eq!(d.code, 0, "{}", d.raw);
    assert_dataplane(&h, &added, "late DEL with a stale endpoint");
    let eps = h.endpoints();
    assert!(
        eps.iter()
            .all(|e| e["metadata"]["name"] != "node--a-k8s-web-eth0"),
        "the stale endpoint names the old container and goes: {eps:?}"
    );
    // No endpoint at all, old namespace gone: nothing shows the veth is
    // the old sandbox's, so it stays.
    let gone = "/run/netns/calico-rs-gone".to_string();
    let d = h.call_raw("DEL", &old.id, gone, &old.args, &conf);
    assert_eq!(d.code, 0, "{}", d.raw);
    assert_dataplane(&h, &added, "late DEL without an endpoint");
    h.ds.apply(&ep.to_string());
    assert_intact(&h, &new, &conf, &added, "endpoint restored");

    // An endpoint already removed: the veth seen from the pod's namespace
    // is still this container's, and goes.
    let (code, o) = h.ds.calicoctl(&[
        "delete",
        "workloadendpoint",
        "node--a-k8s-api-eth0",
        "-n",
        "default",
    ]);
    assert_eq!(code, 0, "{o}");
    assert_eq!(h.call("DEL", &newer, &conf).code, 0);
    // The normal DEL still removes everything.
    assert_eq!(h.call("DEL", &new, &conf).code, 0);
    h.assert_clean();
}

/// A DEL that cannot tell whose the host end is (no endpoint, no
/// `CNI_NETNS`) leaves it — a new sandbox of the pod may own it — but not
/// the host routes through it to the addresses it just released: nothing
/// holds them any more, and a route left there would make the next ADD
/// given one of them fail. The kernel deletes the veth pair when the
/// pod's namespace goes.
fn del_without_netns_or_endpoint(h: Host) {
    pools(&h);
    let conf = h.conf(
        "1.0.0",
        json!({"ipam": {"type": "calico-ipam", "assign_ipv6": "true"}}),
    );
    let p = pod("web", "blind");
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let veth = out.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let ips: Vec<String> = addresses(&out)
        .iter()
        .map(|a| bare(a).to_string())
        .collect();
    let (code, o) = h.ds.calicoctl(&[
        "delete",
        "workloadendpoint",
        "node--a-k8s-blind-eth0",
        "-n",
        "web",
    ]);
    assert_eq!(code, 0, "{o}");
    let d = h.call_raw("DEL", &p.id, String::new(), &p.args, &conf);
    assert_eq!(d.code, 0, "{}", d.raw);
    assert!(
        h.links().contains(&veth),
        "nothing showed {veth} was this container's"
    );
    let routes = h.sh(&format!(
        "ip route show dev {veth}; ip -6 route show dev {veth}"
    ));
    for ip in &ips {
        assert!(
            !routes.contains(ip.as_str()),
            "route to released {ip} left:\n{routes}"
        );
    }
    let check = h.ipam_in_use();
    assert!(check.contains("Found 0 IPs allocated in IPAM."), "{check}");
    // The pod's namespace goes: the kernel takes the pair with it (its
    // namespace cleanup runs in the background: allowed 5 s).
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.links().contains(&veth) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    h.assert_clean();
}

/// Issue 19 point 12: a `CNI_NETNS` that is not a network namespace is a
/// clear error at once (a FIFO used to block the plugin for ever), on ADD,
/// CHECK and DEL, and nothing is made.
fn bad_netns(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    let mut chk = conf.clone();
    chk["prevResult"] = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.70.0.1/32"}]});
    let dir = h.ds.dir.path();
    let fifo = dir.join("fifo");
    let file = dir.join("file");
    std::fs::write(&file, "not a namespace").unwrap();
    h.sh(&format!("mkfifo {}", fifo.display()));
    let cases = [
        (fifo.display().to_string(), "a fifo"),
        (file.display().to_string(), "a regular file"),
        (dir.display().to_string(), "a directory"),
        (
            "/proc/self/ns/mnt".to_string(),
            "a namespace of another kind",
        ),
    ];
    let p = pod("web", "badns");
    for (path, what) in &cases {
        for (command, c) in [("ADD", &conf), ("CHECK", &chk), ("DEL", &conf)] {
            let out = h
                .call_within(
                    command,
                    &p.id,
                    path.clone(),
                    &p.args,
                    c,
                    Some(Duration::from_secs(30)),
                )
                .unwrap_or_else(|| panic!("{command} with CNI_NETNS {path} hung"));
            assert_eq!(out.json["code"], 4, "{command} {path}: {}", out.raw);
            let want = format!("CNI_NETNS {path} is not a network namespace: it is {what}");
            assert!(msg(&out).contains(&want), "{command} {path}: {}", out.raw);
        }
        h.assert_clean();
    }
    // A namespace that is gone is still fine for DEL (the spec's rule).
    let gone = h.call_raw(
        "DEL",
        &p.id,
        "/run/netns/calico-rs-gone".into(),
        &p.args,
        &conf,
    );
    assert_eq!(gone.code, 0, "{}", gone.raw);
}

/// A Kubernetes API server stand-in on the host namespace's loopback: it
/// serves one pod and its namespace as the real API shapes them.
fn concurrent_adds(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    let pods: Vec<Pod> = (0..50).map(|i| pod("load", &format!("p{i}"))).collect();
    let took = std::sync::Mutex::new(Vec::new());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for p in &pods {
            let (h, conf, took, results) = (&h, &conf, &took, &results);
            s.spawn(move || {
                let t = Instant::now();
                let out = h.call("ADD", p, conf);
                took.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(t.elapsed());
                results.lock().unwrap_or_else(|e| e.into_inner()).push(out);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut all = BTreeSet::new();
    for out in &results {
        assert_eq!(out.code, 0, "{}", out.raw);
        all.insert(addresses(out)[0].clone());
    }
    assert_eq!(all.len(), 50, "addresses are not unique");
    assert_eq!(h.endpoints().len(), 50);
    let mut took = took.into_inner().unwrap_or_else(|e| e.into_inner());
    took.sort();
    println!(
        "50 concurrent ADDs: p50 {:?}, p99 {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );
    std::thread::scope(|s| {
        for p in &pods {
            let (h, conf) = (&h, &conf);
            s.spawn(move || assert_eq!(h.call("DEL", p, conf).code, 0));
        }
    });
    h.assert_clean();
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use calico_testutil::require_root;

            #[test]
            fn dataplane_endpoint_and_every_version() {
                require_root!();
                super::dataplane_endpoint_and_every_version(super::Host::new(super::$backend));
            }
            #[test]
            fn pods_reach_each_other() {
                require_root!();
                super::pods_reach_each_other(super::Host::new(super::$backend));
            }
            #[test]
            fn check_names_what_is_missing() {
                require_root!();
                super::check_names_what_is_missing(super::Host::new(super::$backend));
            }
            #[test]
            fn failures_undo_everything() {
                require_root!();
                super::failures_undo_everything(super::Host::new(super::$backend));
            }
            #[test]
            fn readd_right_after_del() {
                require_root!();
                super::readd_right_after_del(super::Host::new(super::$backend));
            }
            #[test]
            fn late_del_of_an_old_sandbox() {
                require_root!();
                super::late_del_of_an_old_sandbox(super::Host::new(super::$backend));
            }
            #[test]
            fn concurrent_adds() {
                require_root!();
                super::concurrent_adds(super::Host::new(super::$backend));
            }
        }
    };
}

suite!(local_host);
suite!(etcd_host);

#[test]
fn del_without_netns_or_endpoint_drops_routes_to_released_addresses() {
    require_root!();
    del_without_netns_or_endpoint(Host::new(local_host));
}

#[test]
fn netns_that_is_not_a_network_namespace() {
    require_root!();
    bad_netns(Host::new(local_host));
}

#[test]
fn delegates_to_other_ipam_plugins() {
    require_root!();
    if !std::path::Path::new("/usr/lib/cni/host-local").exists() {
        eprintln!("skipped: /usr/lib/cni/host-local missing (containernetworking-plugins)");
        return;
    }
    let h = Host::new(local_host);
    let data = h.ds.dir.path().join("host-local");
    let mut conf = h.conf("1.0.0", json!({}));
    conf["ipam"] = json!({"type": "host-local", "ranges": [[{"subnet": "10.73.0.0/24"}]],
        "dataDir": data.display().to_string()});
    let p = pod("web", "hl");
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let ip = addresses(&out)[0].clone();
    assert!(ip.starts_with("10.73.0.") && ip.ends_with("/32"), "{ip}");
    assert!(
        data.join("k8s-pod-network").join(bare(&ip)).exists(),
        "host-local recorded nothing"
    );
    assert_eq!(h.call("DEL", &p, &conf).code, 0);
    assert!(
        !data.join("k8s-pod-network").join(bare(&ip)).exists(),
        "host-local kept the lease"
    );
    h.assert_clean();
}
