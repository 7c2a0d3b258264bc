//! The real `calico` binary, run as a runtime runs it, inside a "host"
//! network namespace made by the test, against pods that are namespaces
//! made by the test; on a real SQLite file and on a real etcd. Traffic goes
//! only between those namespaces.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use calico_testutil::{TestNetns, require_root};
use serde_json::{Value, json};

mod common;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_calico");
const NODE: &str = "node-a";

/// A host: its own namespace with forwarding on and an uplink (a veth to
/// a "world" namespace carrying the default route, as a real host has —
/// proxy ARP answers only for destinations routed elsewhere), and its
/// datastore (etcd runs inside the host namespace, on its loopback).
struct Host {
    ds: Ds,
    ns: TestNetns,
    _world: TestNetns,
}

struct Pod {
    ns: TestNetns,
    id: String,
    args: String,
}

impl Host {
    fn new(store: fn(&str) -> Ds) -> Host {
        let ns = TestNetns::new("host");
        let world = TestNetns::new("world");
        ns.exec(&[
            "sh",
            "-c",
            &format!(
                "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; \
                 ip link add up0 type veth peer name up1 netns {w}; \
                 ip addr add 192.0.2.1/24 dev up0; ip link set up0 up; \
                 ip netns exec {w} ip addr add 192.0.2.2/24 dev up1; ip netns exec {w} ip link set up1 up; \
                 ip route add default via 192.0.2.2",
                w = world.name()
            ),
        ]);
        let ds = store(ns.name());
        Host {
            ds,
            ns,
            _world: world,
        }
    }

    fn conf(&self, version: &str, extra: Value) -> Value {
        let mut c = self.ds.conf(version, NODE, json!({"type": "calico-ipam"}));
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        c
    }

    fn call(&self, command: &str, pod: &Pod, conf: &Value) -> Out {
        self.call_raw(
            command,
            &pod.id,
            pod.ns.path().display().to_string(),
            &pod.args,
            conf,
        )
    }

    fn call_raw(&self, command: &str, id: &str, netns: String, args: &str, conf: &Value) -> Out {
        Call {
            bin: BIN,
            host_netns: Some(self.ns.name()),
            command,
            container: id,
            netns,
            ifname: "eth0",
            args,
            path: "/usr/lib/cni:/opt/cni/bin",
        }
        .run(&conf.to_string())
    }

    fn sh(&self, cmd: &str) -> String {
        self.ns.exec(&["sh", "-c", cmd])
    }

    /// Every link in the host namespace but loopback.
    fn links(&self) -> String {
        self.sh("ip -o link show | grep -v ': lo:' || true")
    }

    fn calicoctl_json(&self, args: &[&str]) -> Value {
        let (code, out) = self.ds.calicoctl(args);
        assert_eq!(code, 0, "calicoctl {args:?}: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn endpoints(&self) -> Vec<Value> {
        let v = self.calicoctl_json(&["get", "workloadendpoints", "-A", "-o", "json"]);
        v["items"].as_array().cloned().unwrap_or_default()
    }

    fn ipam_in_use(&self) -> String {
        let (code, out) = self.ds.calicoctl(&["ipam", "check", "--show-problem-ips"]);
        let _ = code;
        out
    }

    /// Nothing left behind: no veth, no endpoint, no allocation.
    fn assert_clean(&self) {
        // Routes go synchronously; DEL leaves the veth's deletion (tens of
        // milliseconds of kernel time) to a detached process: allow it 5 s.
        let routes = self.sh("ip route show; ip -6 route show");
        assert!(!routes.contains("cali"), "leaked route:\n{routes}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut links = self.links();
        while links.contains("cali") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            links = self.links();
        }
        assert!(!links.contains("cali"), "leaked veth:\n{links}");
        assert!(links.contains("up0"), "the uplink went missing:\n{links}");
        assert!(
            self.endpoints().is_empty(),
            "leaked endpoint: {:?}",
            self.endpoints()
        );
        let check = self.ipam_in_use();
        assert!(
            check.contains("Found 0 IPs allocated in IPAM."),
            "leaked address:\n{check}"
        );
    }
}

fn pod(ns_name: &str, name: &str) -> Pod {
    let ns = TestNetns::new("pod");
    let id = format!("ctr-{}-{name}", ns.name());
    Pod {
        args: format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={ns_name};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={id}"
        ),
        ns,
        id,
    }
}

fn bare(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

fn msg(out: &Out) -> String {
    out.json["msg"].as_str().unwrap_or("").to_string()
}

fn ping(from: &Pod, to: &str) -> bool {
    let six = if to.contains(':') { "-6" } else { "-4" };
    from.ns
        .try_exec(&["ping", six, "-c", "1", "-W", "2", to])
        .is_ok()
}

fn pools(h: &Host) {
    h.ds.apply(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v4}\nspec: {cidr: '10.70.0.0/16', blockSize: 26}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00:70::/64', blockSize: 122}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: other}\nspec: {cidr: '10.71.0.0/24', blockSize: 28, nodeSelector: '!all()'}\n",
    );
}

fn local_host(_ns: &str) -> Ds {
    local()
}

fn etcd_host(ns: &str) -> Ds {
    etcd_in(Some(ns))
}

// ---- the scenarios, run on both stores ----

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
    // Through the host: proxy ARP for 169.254.1.1, host routes per pod.
    assert!(ping(&a, bare(&ib[0])), "a cannot reach b over IPv4");
    assert!(ping(&b, bare(&ia[0])), "b cannot reach a over IPv4");
    assert!(ping(&a, bare(&ib[1])), "a cannot reach b over IPv6");
    // The host end answered ARP for the gateway with its own MAC.
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

fn annotations(h: Host) {
    pools(&h);
    let with = |ann: Value, extra: Value| {
        let mut c = h.conf("1.0.0", extra);
        c["runtimeConfig"] = json!({"io.kubernetes.cri.pod-annotations": ann});
        c
    };
    // ipAddrs: that address, through IPAM.
    let p = pod("web", "fixed");
    let c = with(
        json!({"cni.projectcalico.org/ipAddrs": "[\"10.70.3.7\"]"}),
        json!({}),
    );
    let out = h.call("ADD", &p, &c);
    assert_eq!(addresses(&out), vec!["10.70.3.7/32"], "{}", out.raw);
    let (_, shown) = h.ds.calicoctl(&["ipam", "show", "--ip", "10.70.3.7"]);
    assert!(shown.contains("is in use"), "{shown}");
    // The same address for another pod: refused, nothing left of the attempt.
    let q = pod("web", "fixed2");
    let out = h.call("ADD", &q, &c);
    assert_ne!(out.code, 0);
    assert!(msg(&out).contains("10.70.3.7"), "{}", out.raw);
    assert_eq!(h.call("DEL", &p, &c).code, 0);
    assert_eq!(h.call("DEL", &q, &c).code, 0);
    h.assert_clean();

    // ipAddrsNoIpam: refused unless enabled; when enabled IPAM is bypassed.
    let ann = json!({"cni.projectcalico.org/ipAddrsNoIpam": "[\"80.90.100.200\"]"});
    let out = h.call("ADD", &p, &with(ann.clone(), json!({})));
    assert_ne!(out.code, 0);
    assert!(
        msg(&out).contains("feature_control.ip_addrs_no_ipam"),
        "{}",
        out.raw
    );
    h.assert_clean();
    let enabled = with(ann, json!({"feature_control": {"ip_addrs_no_ipam": true}}));
    let out = h.call("ADD", &p, &enabled);
    assert_eq!(addresses(&out), vec!["80.90.100.200/32"], "{}", out.raw);
    let check = h.ipam_in_use();
    assert!(
        check.contains("Found 0 IPs allocated in IPAM."),
        "IPAM was not bypassed: {check}"
    );
    assert!(h.sh("ip route show").contains("80.90.100.200 dev cali"));
    assert_eq!(h.call("DEL", &p, &enabled).code, 0);
    h.assert_clean();

    // Both together: an error, nothing made.
    let both = with(
        json!({"cni.projectcalico.org/ipAddrsNoIpam": "[\"80.90.100.200\"]",
               "cni.projectcalico.org/ipAddrs": "[\"10.70.3.7\"]"}),
        json!({"feature_control": {"ip_addrs_no_ipam": true}}),
    );
    let out = h.call("ADD", &p, &both);
    assert!(msg(&out).contains("cannot be used together"), "{}", out.raw);
    h.assert_clean();

    // floatingIPs: recorded as ipNATs; needs the feature.
    let ann = json!({"cni.projectcalico.org/floatingIPs": "[\"172.18.22.113\"]"});
    let out = h.call("ADD", &p, &with(ann.clone(), json!({})));
    assert!(
        msg(&out).contains("feature_control.floating_ips"),
        "{}",
        out.raw
    );
    h.assert_clean();
    let out = h.call(
        "ADD",
        &p,
        &with(ann, json!({"feature_control": {"floating_ips": true}})),
    );
    assert_eq!(out.code, 0, "{}", out.raw);
    let ep = &h.endpoints()[0];
    assert_eq!(
        ep["spec"]["ipNATs"],
        json!([{"internalIP": bare(&addresses(&out)[0]), "externalIP": "172.18.22.113"}])
    );
    assert_eq!(h.call("DEL", &p, &c).code, 0);

    // ipv4pools picks the pool; hwAddr sets the container MAC; ipFamilies.
    let out = h.call(
        "ADD",
        &p,
        &with(
            json!({"cni.projectcalico.org/ipv4pools": "[\"other\"]",
                   "cni.projectcalico.org/hwAddr": "02:42:0a:00:00:09"}),
            json!({}),
        ),
    );
    assert!(addresses(&out)[0].starts_with("10.71.0."), "{}", out.raw);
    assert_eq!(out.json["interfaces"][1]["mac"], "02:42:0a:00:00:09");
    assert!(
        p.ns.exec(&["ip", "link", "show", "eth0"])
            .contains("02:42:0a:00:00:09")
    );
    assert_eq!(h.endpoints()[0]["spec"]["mac"], "02:42:0a:00:00:09");
    assert_eq!(h.call("DEL", &p, &c).code, 0);
    let out = h.call(
        "ADD",
        &p,
        &with(
            json!({"cni.projectcalico.org/ipFamilies": "[\"IPv6\"]"}),
            json!({}),
        ),
    );
    assert_eq!(addresses(&out).len(), 1, "{}", out.raw);
    assert!(addresses(&out)[0].starts_with("fd00:70::"), "{}", out.raw);
    assert_eq!(h.call("DEL", &p, &c).code, 0);

    // runtimeConfig.ips (the CNI "ips" capability), and
    // container_settings.allow_ip_forwarding.
    let mut m = h.conf(
        "1.0.0",
        json!({"container_settings": {"allow_ip_forwarding": true}}),
    );
    m["runtimeConfig"] = json!({"ips": ["10.70.9.9/32"]});
    let out = h.call("ADD", &p, &m);
    assert_eq!(addresses(&out), vec!["10.70.9.9/32"], "{}", out.raw);
    assert_eq!(
        p.ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    assert_eq!(h.call("DEL", &p, &m).code, 0);
    h.assert_clean();

    // runtimeConfig.mac (the CNI "mac" capability).
    let mut m = h.conf("1.0.0", json!({}));
    m["runtimeConfig"] = json!({"mac": "02:00:00:00:aa:01"});
    let out = h.call("ADD", &p, &m);
    assert_eq!(
        out.json["interfaces"][1]["mac"], "02:00:00:00:aa:01",
        "{}",
        out.raw
    );
    assert_eq!(h.call("DEL", &p, &m).code, 0);

    // Malformed annotations: clear errors, nothing made.
    for (ann, want) in [
        (
            json!({"cni.projectcalico.org/ipAddrs": "10.70.3.7"}),
            "JSON list",
        ),
        (
            json!({"cni.projectcalico.org/ipAddrs": "[\"10.70.3.7\",\"10.70.3.8\"]"}),
            "at most one IPv4",
        ),
        (
            json!({"cni.projectcalico.org/ipv4pools": "[\"nope\"]"}),
            "nope",
        ),
        (
            json!({"cni.projectcalico.org/hwAddr": "not-a-mac"}),
            "not a MAC address",
        ),
        (
            json!({"cni.projectcalico.org/ipFamilies": "[\"IPv5\"]"}),
            "IPv5",
        ),
    ] {
        let out = h.call("ADD", &p, &with(ann.clone(), json!({})));
        assert_ne!(out.code, 0, "{ann}");
        assert!(msg(&out).contains(want), "{ann}: {}", out.raw);
        h.assert_clean();
    }
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

fn without_kubernetes(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({"name": "net1"}));
    let p = Pod {
        ns: TestNetns::new("cni"),
        id: "0123456789abcdef".into(),
        args: String::new(),
    };
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let veth = calico_cni::plugin::identity::veth_name("0123456789abcdef");
    assert_eq!(out.json["interfaces"][0]["name"], veth.as_str());
    // No mtu in the config: calico-node's file, else 1500.
    let want_mtu = std::fs::read_to_string(calico_cni::plugin::MTU_FILE)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1500);
    let link = h.sh(&format!("ip link show {veth}"));
    assert!(link.contains(&format!("mtu {want_mtu} ")), "{link}");
    let inside = p.ns.exec(&["ip", "link", "show", "eth0"]);
    assert!(inside.contains(&format!("mtu {want_mtu} ")), "{inside}");
    // IP forwarding in the pod stays off unless allowed.
    assert_eq!(
        p.ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );
    let ep = &h.endpoints()[0];
    assert_eq!(ep["metadata"]["name"], "node--a-cni-0123456789abcdef-eth0");
    assert_eq!(ep["spec"]["orchestrator"], "cni");
    assert_eq!(ep["spec"]["workload"], "0123456789abcdef");
    assert_eq!(ep["spec"]["profiles"], json!(["net1"]));
    let profile = h.calicoctl_json(&["get", "profile", "net1", "-o", "json"]);
    assert_eq!(profile["spec"]["labelsToApply"], json!({"net1": ""}));
    assert_eq!(h.call("DEL", &p, &conf).code, 0);
    h.assert_clean();
}

fn gc_and_status(h: Host) {
    let conf = h.conf("1.1.0", json!({}));
    let p = pod("web", "x");
    let out = h.call("STATUS", &p, &conf);
    assert_eq!(out.json["code"], 50, "no pool yet: {}", out.raw);
    pools(&h);
    assert_eq!(h.call("STATUS", &p, &conf).code, 0);
    let keep = pod("web", "keep");
    let lose = pod("web", "lose");
    assert_eq!(h.call("ADD", &keep, &conf).code, 0);
    assert_eq!(h.call("ADD", &lose, &conf).code, 0);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": keep.id, "ifname": "eth0"}]);
    assert_eq!(h.call("GC", &p, &gc).code, 0);
    let check = h.ipam_in_use();
    assert!(check.contains("Found 1 IPs allocated in IPAM."), "{check}");
    assert_eq!(h.call("DEL", &keep, &conf).code, 0);
    assert_eq!(h.call("DEL", &lose, &conf).code, 0);
    h.assert_clean();
}

/// DEL leaves the veth's deletion to a detached process: a pod of the same
/// name added at once gets a fresh veth, which that process never touches,
/// and the released address is usable at once (its route is gone already).
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

/// A Kubernetes API server stand-in on the host namespace's loopback: it
/// serves one pod and its namespace as the real API shapes them.
fn fake_api(h: &Host, pod_json: Value, ns_json: Value) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let host_ns = calico_dataplane::NetNs::open(h.ns.path()).unwrap();
    // A socket belongs to the namespace it was made in: bind it there.
    let listener = host_ns
        .run(|| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = if path.ends_with("/pods/kpod") {
                ("200 OK", pod_json.to_string())
            } else if path == "/api/v1/namespaces/team" {
                ("200 OK", ns_json.to_string())
            } else {
                (
                    "404 Not Found",
                    json!({"kind": "Status", "code": 404}).to_string(),
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// With `kubernetes.kubeconfig`, the pod and its namespace come from the
/// Kubernetes API: labels, service account, named ports on the endpoint;
/// the namespace's `ipv4pools` annotation picks the pool.
fn kubernetes_api(h: Host) {
    pools(&h);
    let pod_json = json!({"kind": "Pod", "metadata": {"name": "kpod", "namespace": "team",
        "labels": {"app": "shop", "tier": "web"}, "annotations": {"unrelated": "x"}},
        "spec": {"serviceAccountName": "shop-sa", "containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9}]}]}});
    let ns_json = json!({"kind": "Namespace", "metadata": {"name": "team",
        "annotations": {"cni.projectcalico.org/ipv4pools": "[\"other\"]"}}});
    let port = fake_api(&h, pod_json, ns_json);
    let kubeconfig = h.ds.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user: {{token: abc}}\n"
        ),
    )
    .unwrap();
    let conf = h.conf(
        "1.0.0",
        json!({"kubernetes": {"kubeconfig": kubeconfig.display().to_string()}, "policy": {"type": "k8s"}}),
    );
    let p = pod("team", "kpod");
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert!(
        addresses(&out)[0].starts_with("10.71.0."),
        "namespace pool not used: {}",
        out.raw
    );
    let ep = &h.endpoints()[0];
    assert_eq!(ep["metadata"]["labels"]["app"], "shop");
    assert_eq!(
        ep["metadata"]["labels"]["projectcalico.org/serviceaccount"],
        "shop-sa"
    );
    assert_eq!(ep["spec"]["serviceAccountName"], "shop-sa");
    assert_eq!(
        ep["spec"]["profiles"],
        json!(["kns.team", "ksa.team.shop-sa"])
    );
    assert_eq!(
        ep["spec"]["ports"],
        json!([{"name": "http", "protocol": "TCP", "port": 8080}])
    );
    assert_eq!(h.call("DEL", &p, &conf).code, 0);

    // A pod the API does not know: an error naming it, nothing made.
    let q = pod("team", "ghost");
    let out = h.call("ADD", &q, &conf);
    assert_ne!(out.code, 0);
    assert!(msg(&out).contains("team/ghost"), "{}", out.raw);
    // An API server that is down: try again later (11).
    let mut down = conf.clone();
    let dead = h.ds.dir.path().join("dead-kubeconfig");
    std::fs::write(
        &dead,
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .replace(&port.to_string(), "1"),
    )
    .unwrap();
    down["kubernetes"]["kubeconfig"] = json!(dead.display().to_string());
    let out = h.call("ADD", &p, &down);
    assert_eq!(out.json["code"], 11, "{}", out.raw);
    h.assert_clean();
}

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
            fn annotations() {
                require_root!();
                super::annotations(super::Host::new(super::$backend));
            }
            #[test]
            fn failures_undo_everything() {
                require_root!();
                super::failures_undo_everything(super::Host::new(super::$backend));
            }
            #[test]
            fn without_kubernetes() {
                require_root!();
                super::without_kubernetes(super::Host::new(super::$backend));
            }
            #[test]
            fn gc_and_status() {
                require_root!();
                super::gc_and_status(super::Host::new(super::$backend));
            }
            #[test]
            fn readd_right_after_del() {
                require_root!();
                super::readd_right_after_del(super::Host::new(super::$backend));
            }
            #[test]
            fn kubernetes_api() {
                require_root!();
                super::kubernetes_api(super::Host::new(super::$backend));
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

/// Another IPAM plugin (Debian's host-local) is executed from CNI_PATH.
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
