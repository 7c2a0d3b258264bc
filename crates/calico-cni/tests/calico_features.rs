//! The real `calico` binary in test namespaces (see `calico_plugin.rs`):
//! pod annotations, the Kubernetes API, non-Kubernetes workloads, GC and
//! STATUS, on a real SQLite file and on a real etcd.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use calico_testutil::TestNetns;
use serde_json::{Value, json};

mod common;
use common::host::*;
use common::*;

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

fn without_kubernetes(h: Host) {
    pools(&h);
    let conf = h.conf("1.0.0", json!({"name": "net1"}));
    let p = Pod {
        ns: TestNetns::new("cni"),
        id: "0123456789abcdef".into(),
        args: String::new(),
    };
    // What a new namespace gets: the host's ip_forward under the default
    // net.core.devconf_inherit_init_net (1 on every Kubernetes node).
    let inherited = ip_forward(&p.ns);
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
    // IP forwarding in the pod is left as the namespace had it unless
    // allowed (Calico writes it only to turn it on).
    assert_eq!(ip_forward(&p.ns), inherited);
    let ep = &h.endpoints()[0];
    assert_eq!(ep["metadata"]["name"], "node--a-cni-0123456789abcdef-eth0");
    assert_eq!(ep["spec"]["orchestrator"], "cni");
    assert_eq!(ep["spec"]["workload"], "0123456789abcdef");
    assert_eq!(ep["spec"]["profiles"], json!(["net1"]));
    let profile = h.calicoctl_json(&["get", "profile", "net1", "-o", "json"]);
    assert_eq!(profile["spec"]["labelsToApply"], json!({"net1": ""}));
    assert_eq!(h.call("DEL", &p, &conf).code, 0);
    h.assert_clean();

    // The other starting value too, whatever this host forwards: a pod
    // namespace that starts with it keeps it through ADD.
    let q = Pod {
        ns: TestNetns::new("cni"),
        id: "fedcba9876543210".into(),
        args: String::new(),
    };
    let other = if inherited == "1" { "0" } else { "1" };
    q.ns.exec(&["sysctl", "-qw", &format!("net.ipv4.ip_forward={other}")]);
    assert_eq!(ip_forward(&q.ns), other);
    let out = h.call("ADD", &q, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert_eq!(ip_forward(&q.ns), other);
    assert_eq!(h.call("DEL", &q, &conf).code, 0);
    h.assert_clean();
}

/// `net.ipv4.ip_forward` inside a namespace.
fn ip_forward(ns: &TestNetns) -> String {
    ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
        .trim()
        .to_string()
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
macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            use calico_testutil::require_root;

            #[test]
            fn annotations() {
                require_root!();
                super::annotations(super::Host::new(super::$backend));
            }
            #[test]
            fn kubernetes_api() {
                require_root!();
                super::kubernetes_api(super::Host::new(super::$backend));
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
        }
    };
}

suite!(local_host);
suite!(etcd_host);
