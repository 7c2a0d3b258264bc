//! The real `calico-ipam` binary, run as a container runtime runs it, against
//! a real SQLite file and a real etcd; `calicoctl ipam` checks what it left.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use serde_json::{Value, json};

mod common;
use common::*;

trait RunIpam {
    fn plugin(&self, command: &str, container: &str, args: &str, conf: &Value) -> Out;
}

impl RunIpam for Ds {
    fn plugin(&self, command: &str, container: &str, args: &str, conf: &Value) -> Out {
        run_plugin(command, container, args, &conf.to_string())
    }
}

fn run_plugin(command: &str, container: &str, args: &str, stdin: &str) -> Out {
    Call {
        bin: env!("CARGO_BIN_EXE_calico-ipam"),
        host_netns: None,
        command,
        container,
        netns: format!("/var/run/netns/{container}"),
        ifname: "eth0",
        args,
        path: "/opt/cni/bin",
    }
    .run(stdin)
}

const K8S: &str =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=nginx;K8S_POD_INFRA_CONTAINER_ID=c1";

fn add_del_check_in_every_version(ds: Ds) {
    ds.apply(&pool_yaml("p4", "10.60.0.0/24", 28));
    for (i, v) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let c = format!("c{i}");
        let conf = ds.conf(v, "node-a", ipam_v4());
        let out = ds.plugin("ADD", &c, K8S, &conf);
        assert_eq!(out.code, 0, "{v}: {}", out.raw);
        assert_eq!(out.json["cniVersion"], *v);
        let addrs = addresses(&out);
        assert_eq!(addrs.len(), 1, "{v}: {}", out.raw);
        assert!(
            addrs[0].ends_with("/32") && addrs[0].starts_with("10.60.0."),
            "{}",
            addrs[0]
        );
        let has_version = out.json["ips"][0].get("version").is_some();
        assert_eq!(has_version, v.starts_with("0."), "{v}: {}", out.raw);
        // ADD again is idempotent.
        let again = ds.plugin("ADD", &c, K8S, &conf);
        assert_eq!(addresses(&again), addrs);
        if *v != "0.3.0" && *v != "0.3.1" {
            let mut with_prev = conf.clone();
            with_prev["prevResult"] = out.json.clone();
            assert_eq!(ds.plugin("CHECK", &c, K8S, &with_prev).code, 0);
        }
        let (code, text) =
            ds.calicoctl(&["ipam", "show", "--ip", addrs[0].trim_end_matches("/32")]);
        assert_eq!(code, 0);
        assert!(
            text.contains("is in use")
                && text.contains(&format!("k8s-pod-network.{c}"))
                && text.contains("pod: nginx"),
            "{text}"
        );
        assert_eq!(ds.plugin("DEL", &c, K8S, &conf).code, 0);
        assert_eq!(
            ds.plugin("DEL", &c, K8S, &conf).code,
            0,
            "DEL must be idempotent"
        );
        if *v == "1.1.0" {
            let chk = ds.plugin("CHECK", &c, K8S, &conf);
            assert_ne!(chk.code, 0);
            assert!(
                chk.json["msg"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no addresses"),
                "{}",
                chk.raw
            );
        }
    }
    // node-a has no Node resource: its block is reported as orphaned.
    let (code, text) = ds.calicoctl(&["ipam", "check", "--show-problem-ips"]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("block 10.60.0.0/28 is affine to missing node node-a (0 in use)"),
        "{text}"
    );
    ds.apply("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-a}\n");
    let (code, text) = ds.calicoctl(&["ipam", "check"]);
    assert_eq!(code, 0, "{text}");
}

fn errors_are_cni_errors(ds: Ds) {
    let conf = ds.conf("1.0.0", "node-a", ipam_v4());
    // No pools at all.
    let out = ds.plugin("ADD", "c1", K8S, &conf);
    assert_eq!(out.code, 1);
    assert_eq!(out.json["code"], 100);
    assert!(
        out.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("no enabled IPv4 pool"),
        "{}",
        out.raw
    );
    // Exhausted pool: the message names it.
    ds.apply(&pool_yaml("tiny", "10.61.0.0/30", 30));
    for c in ["a", "b", "c", "d"] {
        assert_eq!(ds.plugin("ADD", c, K8S, &conf).code, 0);
    }
    let out = ds.plugin("ADD", "e", K8S, &conf);
    assert!(
        out.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("tiny (10.61.0.0/30)"),
        "{}",
        out.raw
    );
    // Requested pool that does not exist: bad config (7).
    let out = ds.plugin(
        "ADD",
        "f",
        K8S,
        &ds.conf(
            "1.0.0",
            "node-a",
            json!({"type": "calico-ipam", "ipv4_pools": ["nope"]}),
        ),
    );
    assert_eq!(out.json["code"], 7, "{}", out.raw);
    // Dual stack without an IPv6 pool: fails and keeps nothing.
    let dual = ds.conf(
        "1.0.0",
        "node-b",
        json!({"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}),
    );
    ds.apply(&pool_yaml("more", "10.62.0.0/24", 26));
    let out = ds.plugin("ADD", "g", K8S, &dual);
    assert_ne!(out.code, 0);
    assert!(
        out.json["msg"].as_str().unwrap_or("").contains("IPv6"),
        "{}",
        out.raw
    );
    let (_, text) = ds.calicoctl(&["ipam", "show", "--show-blocks"]);
    assert!(
        !text.contains("10.62.0.0/26   |        64 | 1"),
        "the IPv4 address of a failed dual-stack ADD leaked:\n{text}"
    );
    // Nothing to assign.
    let none = ds.conf(
        "1.0.0",
        "node-a",
        json!({"type": "calico-ipam", "assign_ipv4": "false"}),
    );
    assert_eq!(ds.plugin("ADD", "h", K8S, &none).json["code"], 7);
    // Bad stdin and bad environment.
    let out = run_plugin("ADD", "x", K8S, "{not json");
    assert_eq!(out.json["code"], 6, "{}", out.raw);
    let out = run_plugin("ADD", "x", K8S, r#"{"cniVersion":"1.0.0","type":"calico"}"#);
    assert_eq!(out.json["code"], 7, "{}", out.raw);
    let out = run_plugin("FROB", "x", K8S, &conf.to_string());
    assert_eq!(out.json["code"], 4, "{}", out.raw);
    let out = run_plugin(
        "ADD",
        "x",
        K8S,
        &ds.conf("9.9.9", "n", ipam_v4()).to_string(),
    );
    assert_eq!(out.json["code"], 1, "{}", out.raw);
}

fn specific_addresses_pools_gc_status(ds: Ds) {
    ds.apply(
        &(pool_yaml("a", "10.63.0.0/24", 26)
            + "---\n"
            + &pool_yaml("b", "10.64.0.0/24", 26)
            + "---\n"
            + &pool_yaml("v6", "fd00:63::/120", 122)),
    );
    let conf = ds.conf("1.0.0", "node-a", ipam_v4());
    let out = ds.plugin("ADD", "s1", &format!("{K8S};IP=10.64.0.200"), &conf);
    assert_eq!(addresses(&out), vec!["10.64.0.200/32"], "{}", out.raw);
    let taken = ds.plugin("ADD", "s2", &format!("{K8S};IP=10.64.0.200"), &conf);
    assert!(
        taken.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("already in use"),
        "{}",
        taken.raw
    );
    let outside = ds.plugin("ADD", "s3", &format!("{K8S};IP=192.0.2.1"), &conf);
    assert!(
        outside.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("not in any enabled IP pool"),
        "{}",
        outside.raw
    );
    // Pools from the pod annotation (by name), then from the config (by CIDR).
    let mut annotated = conf.clone();
    annotated["runtimeConfig"] = json!({"io.kubernetes.cri.pod-annotations": {"cni.projectcalico.org/ipv4pools": "[\"b\"]"}});
    let out = ds.plugin("ADD", "p1", K8S, &annotated);
    assert!(addresses(&out)[0].starts_with("10.64.0."), "{}", out.raw);
    let by_cidr = ds.conf(
        "1.0.0",
        "node-a",
        json!({"type": "calico-ipam", "ipv4_pools": ["10.63.0.0/24"]}),
    );
    let out = ds.plugin("ADD", "p2", K8S, &by_cidr);
    assert!(addresses(&out)[0].starts_with("10.63.0."), "{}", out.raw);
    // Dual stack.
    let dual = ds.conf(
        "1.1.0",
        "node-a",
        json!({"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}),
    );
    let out = ds.plugin("ADD", "d1", K8S, &dual);
    let a = addresses(&out);
    assert!(
        a.len() == 2 && a[1].starts_with("fd00:63::") && a[1].ends_with("/128"),
        "{}",
        out.raw
    );
    // GC keeps d1 and releases the rest of this network's handles.
    let mut gc = ds.conf("1.1.0", "node-a", ipam_v4());
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "d1", "ifname": "eth0"}]);
    let out = ds.plugin("GC", "", "", &gc);
    assert_eq!(out.code, 0, "{}", out.raw);
    let (_, text) = ds.calicoctl(&["ipam", "show", "--ip", "10.64.0.200"]);
    assert!(text.contains("is not assigned"), "{text}");
    let (_, text) = ds.calicoctl(&["ipam", "show", "--ip", a[0].trim_end_matches("/32")]);
    assert!(text.contains("is in use"), "{text}");
    assert_eq!(ds.plugin("STATUS", "", "", &gc).code, 0);
    // VERSION.
    let out = run_plugin("VERSION", "", "", r#"{"cniVersion":"0.4.0"}"#);
    assert_eq!(out.json["cniVersion"], "0.4.0");
    assert_eq!(
        out.json["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

/// 3 nodes × 60 ADDs as separate processes, 24 at a time: all succeed, all
/// unique, each node's inside its own blocks; after DEL of all, `calicoctl
/// ipam check` is clean.
fn concurrent_processes(ds: Ds) {
    ds.apply(&pool_yaml("big", "10.70.0.0/16", 26));
    let ds = Arc::new(ds);
    let jobs: Vec<(String, String)> = (0..180)
        .map(|i| (format!("node-{}", i % 3), format!("cc{i}")))
        .collect();
    let jobs = Arc::new(Mutex::new(jobs));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..24)
        .map(|_| {
            let (ds, jobs, results) = (ds.clone(), jobs.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let Some((node, c)) = jobs.lock().ok().and_then(|mut j| j.pop()) else {
                        return;
                    };
                    let out = ds.plugin("ADD", &c, K8S, &ds.conf("1.0.0", &node, ipam_v4()));
                    assert_eq!(out.code, 0, "{c} on {node}: {}", out.raw);
                    let ip: IpAddr = addresses(&out)[0]
                        .trim_end_matches("/32")
                        .parse()
                        .unwrap_or_else(|e| panic!("{e}"));
                    if let Ok(mut r) = results.lock() {
                        r.push((node, c, ip));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap_or_else(|_| panic!("a worker failed"));
    }
    let results = results.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(results.len(), 180);
    let unique: BTreeSet<IpAddr> = results.iter().map(|r| r.2).collect();
    assert_eq!(unique.len(), 180, "an address was handed out twice");
    // Each node's addresses are inside blocks affine to it.
    let (_, blocks_text) = ds.calicoctl(&["ipam", "show", "--show-blocks"]);
    let blocks: Vec<IpNet> = blocks_text
        .lines()
        .filter(|l| l.contains("| Block"))
        .filter_map(|l| l.split('|').nth(2).and_then(|c| c.trim().parse().ok()))
        .collect();
    let mut owner: BTreeMap<IpNet, String> = BTreeMap::new();
    for (node, _, ip) in &results {
        let b = blocks
            .iter()
            .find(|b| b.contains(ip))
            .unwrap_or_else(|| panic!("{ip} is in no block: {blocks_text}"));
        let prev = owner.insert(*b, node.clone());
        assert!(
            prev.as_ref().is_none_or(|p| p == node),
            "block {b} serves {node} and {prev:?}"
        );
    }
    let (code, text) = ds.calicoctl(&["ipam", "check"]);
    assert_ne!(
        code, 0,
        "180 allocations without workload endpoints must be reported:\n{text}"
    );
    assert!(
        text.contains("Found 180 IPs that are allocated in IPAM but not used"),
        "{text}"
    );
    // DEL all, concurrently.
    let dels: Vec<_> = results
        .chunks(8)
        .map(|chunk| {
            let (ds, chunk) = (ds.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for (node, c, _) in chunk {
                    let out = ds.plugin("DEL", &c, K8S, &ds.conf("1.0.0", &node, ipam_v4()));
                    assert_eq!(out.code, 0, "{}", out.raw);
                }
            })
        })
        .collect();
    for d in dels {
        d.join().unwrap_or_else(|_| panic!("a DEL failed"));
    }
    // Nodes exist now, so their blocks are not orphans.
    for n in 0..3 {
        ds.apply(&format!(
            "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: node-{n}}}\n"
        ));
    }
    let (code, text) = ds.calicoctl(&["ipam", "check"]);
    assert_eq!(code, 0, "ipam check after DEL of all:\n{text}");
    assert!(text.contains("found 0 problems"), "{text}");
}

fn calicoctl_ipam_commands(ds: Ds) {
    ds.apply(&pool_yaml("small", "10.80.0.0/24", 30));
    let (code, text) = ds.calicoctl(&["ipam", "configure", "--max-blocks-per-host=1"]);
    assert_eq!(code, 0, "{text}");
    let (_, text) = ds.calicoctl(&["ipam", "show", "--show-configuration"]);
    assert!(
        text.contains("| MaxBlocksPerHost   |     1 |")
            && text.contains("| StrictAffinity     | false |"),
        "{text}"
    );
    let conf = |node: &str| ds.conf("1.0.0", node, ipam_v4());
    assert_eq!(ds.plugin("ADD", "b0", K8S, &conf("node-b")).code, 0);
    let mut a_ips = Vec::new();
    for i in 0..5 {
        let out = ds.plugin("ADD", &format!("a{i}"), K8S, &conf("node-a"));
        assert_eq!(out.code, 0, "{}", out.raw);
        a_ips.push(addresses(&out)[0].trim_end_matches("/32").to_string());
    }
    // node-a holds one block (4 addresses); the fifth is borrowed from node-b's block.
    let (_, text) = ds.calicoctl(&["ipam", "show", "--show-borrowed"]);
    assert!(
        text.contains("| BORROWING-NODE |")
            && text.contains("| node-a         | 10.80.0.0/30 | node-b      | pod  | web/nginx"),
        "{text}"
    );
    let (_, text) = ds.calicoctl(&["ipam", "show"]);
    assert!(
        text.contains("| IP Pool  | 10.80.0.0/24 |       256 | 6 (2%)     | 250 (97%) |"),
        "{text}"
    );
    let (_, text) = ds.calicoctl(&["ipam", "show", "--show-blocks"]);
    assert!(
        text.contains("| Block    | 10.80.0.4/30 |         4 | 4 (100%)   | 0 (0%)    |"),
        "{text}"
    );
    // Release one address by IP; a second release says it is not assigned.
    let (code, text) = ds.calicoctl(&["ipam", "release", "--ip", &a_ips[0]]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = ds.calicoctl(&["ipam", "release", "--ip", &a_ips[0]]);
    assert!(code != 0 && text.contains("is not assigned"), "{text}");
    // Check writes a report; release --from-report repairs what it found.
    let report = ds.dir.path().join("report.json").display().to_string();
    let (code, text) = ds.calicoctl(&["ipam", "check", "--show-problem-ips", "-o", &report]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("Found 5 IPs that are allocated in IPAM but not used"),
        "{text}"
    );
    assert!(
        text.contains("Found 2 blocks affine to nodes that do not exist"),
        "{text}"
    );
    let (code, text) = ds.calicoctl(&["ipam", "release", "--from-report", &report]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "Released 5 leaked IP addresses, 0 empty handles and 2 empty orphaned blocks"
        ),
        "{text}"
    );
    let (code, text) = ds.calicoctl(&["ipam", "check"]);
    assert_eq!(code, 0, "{text}");
    // Bad input.
    let (code, text) = ds.calicoctl(&["ipam", "release", "--ip", "not-an-ip"]);
    assert!(code != 0 && text.contains("is not an IP address"), "{text}");
    let (code, text) = ds.calicoctl(&["ipam", "configure", "--max-blocks-per-host=-1"]);
    assert!(code != 0 && text.contains("negative"), "{text}");
    let (code, _) = ds.calicoctl(&["ipam", "configure", "--strictaffinity=true"]);
    assert_eq!(code, 0);
    let (_, text) = ds.calicoctl(&["ipam", "show", "--show-configuration"]);
    assert!(text.contains("| StrictAffinity     | true  |"), "{text}");
}

/// calico-ipam processes killed (SIGKILL) at random points leave either
/// nothing or an allocation tied to their handle: after DEL of every
/// container, no address, handle or broken block remains.
fn killed_processes_leave_nothing_behind(ds: Ds) {
    ds.apply(&pool_yaml("kill", "10.85.0.0/24", 28));
    ds.apply("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-k}\n");
    let conf = ds.conf("1.0.0", "node-k", ipam_v4()).to_string();
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    // Kill at random points across the whole run of an ADD: time one first.
    let t = std::time::Instant::now();
    assert_eq!(
        ds.plugin("ADD", "probe", K8S, &ds.conf("1.0.0", "node-k", ipam_v4()))
            .code,
        0
    );
    let span = (t.elapsed().as_micros() as u64 * 5 / 4).max(1);
    assert_eq!(
        ds.plugin("DEL", "probe", K8S, &ds.conf("1.0.0", "node-k", ipam_v4()))
            .code,
        0
    );
    let mut killed = 0;
    for i in 0..60 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_micros((seed >> 33) % span);
        let mut child = Command::new(env!("CARGO_BIN_EXE_calico-ipam"))
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", format!("k{i}"))
            .env("CNI_NETNS", "/var/run/netns/k")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", K8S)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut s) = child.stdin.take() {
            let _ = s.write_all(conf.as_bytes());
        }
        std::thread::sleep(delay);
        if child.try_wait().ok().flatten().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let (_, shown) = ds.calicoctl(&["ipam", "show"]);
    println!("{killed} of 60 ADDs were killed before they finished; before the DELs:\n{shown}");
    // What a runtime does after a failed ADD: DEL.
    for i in 0..60 {
        let out = ds.plugin(
            "DEL",
            &format!("k{i}"),
            K8S,
            &ds.conf("1.0.0", "node-k", ipam_v4()),
        );
        assert_eq!(out.code, 0, "{}", out.raw);
    }
    let (code, text) = ds.calicoctl(&["ipam", "check", "--show-problem-ips"]);
    assert_eq!(code, 0, "after killed ADDs and DELs:\n{text}");
    assert!(text.contains("Found 0 IPs allocated in IPAM."), "{text}");
}

/// Whether `ip` (no prefix) is allocated, per `calicoctl ipam show --ip`.
fn in_use(ds: &Ds, addr: &str) -> bool {
    let (_, text) = ds.calicoctl(&["ipam", "show", "--ip", addr.split('/').next().unwrap_or("")]);
    assert!(
        text.contains("is in use") || text.contains("is not assigned"),
        "{text}"
    );
    text.contains("is in use")
}

/// GC (issue 19, point 1) releases only this node's addresses of exactly
/// this network, and nothing at all without an attachment list.
fn gc_is_per_node_and_per_network(ds: Ds) {
    ds.apply(&pool_yaml("g", "10.65.0.0/24", 28));
    let on = |node: &str, net: &str| {
        let mut c = ds.conf("1.1.0", node, ipam_v4());
        c["name"] = json!(net);
        c
    };
    let add = |conf: &Value, c: &str| {
        let out = ds.plugin("ADD", c, K8S, conf);
        assert_eq!(out.code, 0, "{}", out.raw);
        addresses(&out)[0].clone()
    };
    let (n1, n2) = (on("n1", "k8s-pod-network"), on("n2", "k8s-pod-network"));
    let x1 = add(&n1, "x1");
    let y1 = add(&n2, "y1");
    let y2 = add(&n2, "y2");
    // n2's runtime lists only y1: y2 (n2's, dead) goes; n1's x1 stays.
    let mut gc = n2.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "y1", "ifname": "eth0"}]);
    let out = ds.plugin("GC", "", "", &gc);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert!(in_use(&ds, &x1), "n2's GC released n1's {x1}");
    assert!(in_use(&ds, &y1));
    assert!(!in_use(&ds, &y2), "GC kept the dead container's {y2}");
    // No attachment list: nothing is released.
    let out = ds.plugin("GC", "", "", &n2);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert!(in_use(&ds, &y1), "GC without a list released {y1}");
    // Networks `a` and `a.b` (handles `a.<id>` and `a.b.<id>`), dotted IDs.
    let (a, ab) = (on("n2", "a"), on("n2", "a.b"));
    let dotted = add(&a, "dot.ted");
    let dead = add(&a, "gone");
    let other = add(&ab, "c");
    let mut gc = a.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "dot.ted", "ifname": "eth0"}]);
    let out = ds.plugin("GC", "", "", &gc);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert!(
        in_use(&ds, &dotted),
        "GC released a listed container's {dotted}"
    );
    assert!(!in_use(&ds, &dead), "GC kept network a's dead {dead}");
    assert!(
        in_use(&ds, &other),
        "GC of network a released a.b's {other}"
    );
    assert!(in_use(&ds, &x1) && in_use(&ds, &y1));
}

/// Pools' `allowedUses` apply to requested pools and to specific addresses
/// (issue 19, point 10), as in Calico.
fn allowed_uses_bind_requested_pools_and_ip_addrs(ds: Ds) {
    ds.apply(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: tun}\nspec: {cidr: 10.67.0.0/24, blockSize: 28, allowedUses: [Tunnel]}\n",
    );
    ds.apply(&pool_yaml("work", "10.66.0.0/24", 28));
    let conf = ds.conf("1.0.0", "node-a", ipam_v4());
    let mut requested = conf.clone();
    requested["ipam"]["ipv4_pools"] = json!(["tun"]);
    let out = ds.plugin("ADD", "u1", K8S, &requested);
    assert_ne!(
        out.code, 0,
        "a Tunnel-only pool gave a pod address: {}",
        out.raw
    );
    assert!(msg_of(&out).contains("allowedUses"), "{}", out.raw);
    let out = ds.plugin("ADD", "u2", &format!("{K8S};IP=10.67.0.5"), &conf);
    assert_ne!(
        out.code, 0,
        "ipAddrs took a Tunnel-only address: {}",
        out.raw
    );
    assert!(msg_of(&out).contains("allowedUses"), "{}", out.raw);
    assert!(!in_use(&ds, "10.67.0.5"));
    let out = ds.plugin("ADD", "u3", &format!("{K8S};IP=10.66.0.5"), &conf);
    assert_eq!(addresses(&out), vec!["10.66.0.5/32"], "{}", out.raw);
}

fn msg_of(out: &Out) -> String {
    out.json["msg"].as_str().unwrap_or("").to_string()
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn add_del_check_in_every_version() {
                super::add_del_check_in_every_version(super::$backend());
            }
            #[test]
            fn errors_are_cni_errors() {
                super::errors_are_cni_errors(super::$backend());
            }
            #[test]
            fn specific_addresses_pools_gc_status() {
                super::specific_addresses_pools_gc_status(super::$backend());
            }
            #[test]
            fn killed_processes_leave_nothing_behind() {
                super::killed_processes_leave_nothing_behind(super::$backend());
            }
            #[test]
            fn calicoctl_ipam_commands() {
                super::calicoctl_ipam_commands(super::$backend());
            }
            #[test]
            fn concurrent_processes() {
                super::concurrent_processes(super::$backend());
            }
            #[test]
            fn gc_is_per_node_and_per_network() {
                super::gc_is_per_node_and_per_network(super::$backend());
            }
            #[test]
            fn allowed_uses_bind_requested_pools_and_ip_addrs() {
                super::allowed_uses_bind_requested_pools_and_ip_addrs(super::$backend());
            }
        }
    };
}

suite!(local);
suite!(etcd);

/// Allocation waits for the host-wide IPAM lock (`ipam_lock_file`), as
/// Calico's plugins do.
#[test]
fn allocation_waits_for_the_ipam_lock() {
    let ds = local();
    ds.apply(&pool_yaml("p", "10.61.0.0/24", 28));
    let conf = ds.conf("1.0.0", "node-a", ipam_v4());
    let lock_path = conf["ipam_lock_file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("{e}"));
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive)
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let c2 = conf.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(run_plugin("ADD", "locked", K8S, &c2));
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(700))
            .is_err(),
        "ADD finished while another process held the IPAM lock"
    );
    drop(held);
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("ADD did not finish after the lock was released: {e}"));
    assert_eq!(out.code, 0, "{}", out.raw);
    assert_eq!(ds.plugin("DEL", "locked", K8S, &conf).code, 0);
}

#[test]
fn unreachable_etcd_is_try_again_later() {
    let port = calico_testutil::free_port();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "calico", "nodename": "a",
        "datastore_type": "etcdv3", "etcd_endpoints": format!("http://127.0.0.1:{port}"),
        "ipam_lock_file": dir.path().join("ipam.lock"), "ipam": {"type": "calico-ipam"}});
    let out = run_plugin("ADD", "c", "", &conf.to_string());
    assert_eq!(out.json["code"], 11, "{}", out.raw);
    assert!(
        out.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.raw
    );
}

/// The lock file is private (0600 under the usual umask 022) and a symlink
/// in its place is refused with an error naming it (issue 19, point 6).
#[test]
fn the_ipam_lock_file_is_private_and_no_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let ds = local();
    ds.apply(&pool_yaml("p", "10.62.0.0/24", 28));
    let mut conf = ds.conf("1.0.0", "node-a", ipam_v4());
    conf["ipam_socket"] = json!("none");
    let lock_path = std::path::PathBuf::from(conf["ipam_lock_file"].as_str().unwrap_or_default());
    let out = ds.plugin("ADD", "priv", K8S, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    let mode = std::fs::metadata(&lock_path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode, 0o600, "lock file mode {mode:o}");
    std::fs::remove_file(&lock_path).unwrap_or_else(|e| panic!("{e}"));
    let target = ds.dir.path().join("planted");
    std::os::unix::fs::symlink(&target, &lock_path).unwrap_or_else(|e| panic!("{e}"));
    let out = ds.plugin("ADD", "sym", K8S, &conf);
    assert_eq!(out.code, 1, "{}", out.raw);
    assert!(
        msg_of(&out).contains("symbolic link")
            && msg_of(&out).contains(&lock_path.display().to_string()),
        "{}",
        out.raw
    );
    assert!(!target.exists(), "the plugin created the link's target");
    assert!(!in_use(&ds, "10.62.0.1"), "allocated without the lock");
}

/// A service that answers "expired" (the plugin's deadline passed before it
/// ran the request) is as good as none: the plugin allocates itself. The
/// request carries the plugin's deadline and lock file (issue 19, point 5).
#[test]
fn an_expired_service_answer_falls_back() {
    use std::io::{BufRead, BufReader, Write};
    let ds = local();
    ds.apply(&pool_yaml("p", "10.69.0.0/24", 28));
    let sock = ds.dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut line = String::new();
        BufReader::new(&conn)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = calico_ipam::service::Response::Failed {
            class: calico_ipam::service::FailureClass::Expired,
            message: "late".into(),
        };
        let mut out = serde_json::to_vec(&answer).unwrap_or_default();
        out.push(b'\n');
        (&conn).write_all(&out).unwrap_or_else(|e| panic!("{e}"));
        line
    });
    let mut conf = ds.conf("1.0.0", "node-a", ipam_v4());
    conf["ipam_socket"] = json!(sock);
    let out = ds.plugin("ADD", "fb", K8S, &conf);
    assert_eq!(out.code, 0, "{}", out.raw);
    assert!(addresses(&out)[0].starts_with("10.69.0."), "{}", out.raw);
    let line = server.join().unwrap_or_default();
    let sent: calico_ipam::service::Envelope =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(sent.deadline_ms.is_some(), "{line}");
    assert_eq!(
        sent.lock_file.map(|p| p.display().to_string()),
        conf["ipam_lock_file"].as_str().map(str::to_string),
        "{line}"
    );
}

/// The plugin's log: Calico's line (local time to the millisecond,
/// `[LEVEL][pid]`, file and line) with the container, namespace and pod
/// as fields; a failure at ERROR; `log_level: none` writes nothing.
#[test]
fn log_lines_as_calico_writes_them() {
    let ds = local();
    ds.apply(&pool_yaml("p4", "10.61.0.0/24", 28));
    let conf = ds.conf("1.0.0", "node-a", ipam_v4());
    assert_eq!(ds.plugin("ADD", "logged1", K8S, &conf).code, 0);
    let mut bad = conf.clone();
    bad["ipam"]["ipv4_pools"] = json!(["no-such-pool"]);
    assert_ne!(ds.plugin("ADD", "logged2", K8S, &bad).code, 0);
    let text = std::fs::read_to_string(ds.dir.path().join("cni.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in &lines {
        let shape: String = l
            .chars()
            .take(23)
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99 99:99:99.999", "{l}");
        assert!(
            l.contains(" Plugin=\"calico-ipam\"") && l.contains(" Namespace=\"web\" Pod=\"nginx\""),
            "{l}"
        );
    }
    assert!(
        lines[0].contains("[INFO][") && lines[0].contains(": ADD done"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(" ContainerID=\"logged1\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("[ERROR][") && lines[1].contains("ADD failed"),
        "{}",
        lines[1]
    );
    let mut quiet = conf.clone();
    quiet["log_level"] = json!("none");
    quiet["log_file_path"] = json!(ds.dir.path().join("quiet.log").display().to_string());
    assert_eq!(ds.plugin("ADD", "logged3", K8S, &quiet).code, 0);
    assert!(!ds.dir.path().join("quiet.log").exists());
}
