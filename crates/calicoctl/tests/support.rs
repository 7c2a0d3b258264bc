//! The support commands, end to end with the real binary: `datastore
//! migrate export|import|lock|unlock` (a real etcd started by the harness,
//! a real SQLite file), `node checksystem` against this kernel, and `node
//! diags` inside a test network namespace.

use std::collections::BTreeMap;
use std::process::Command;

use calico_api::Kind;
use calico_testutil::{TestNetns, require_root};

mod common;
use common::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/all-kinds.yaml"
);

const KNP: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-ingress
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - podSelector: {}
    ports:
    - port: 80
      protocol: TCP
";

/// What these tests need of a datastore besides the shared harness.
impl Ds {
    fn ipam(&self) -> calico_ipam::Ipam {
        let env: BTreeMap<String, String> = self.env.iter().cloned().collect();
        let store = calico_datastore::config::Settings::from_lookup(|k| env.get(k).cloned())
            .resolve()
            .unwrap_or_else(|e| panic!("{e}"))
            .connect()
            .unwrap_or_else(|e| panic!("{e}"));
        calico_ipam::Ipam::new(store)
    }

    /// Every answer a user sees: `get <kind> -o yaml` for every kind, `ipam show`.
    fn answers(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for k in Kind::ALL {
            let mut args = vec!["get", k.plural(), "-o", "yaml"];
            if k.namespaced() {
                args.push("-A");
            }
            let text = self.ok(&args);
            // What a store sets itself: Calico's export leaves these out too.
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    !(t.starts_with("resourceVersion:")
                        || t.starts_with("uid:")
                        || t.starts_with("creationTimestamp:"))
                })
                .collect();
            out.insert(format!("get {}", k.plural()), kept.join("\n"));
        }
        for args in [
            &["ipam", "show"][..],
            &["ipam", "show", "--show-blocks"],
            &["ipam", "show", "--show-configuration"],
        ] {
            out.insert(args.join(" "), self.ok(args));
        }
        out
    }
}

fn assign(ipam: &calico_ipam::Ipam, handle: &str, node: &str, v4: usize, v6: usize) {
    let args = calico_ipam::AssignArgs {
        handle: handle.into(),
        node: node.into(),
        num_v4: v4,
        num_v6: v6,
        v4_pools: vec![],
        v6_pools: vec![],
        attrs: BTreeMap::from([
            ("node".to_string(), node.to_string()),
            ("pod".to_string(), handle.to_string()),
        ]),
        use_: calico_ipam::Use::Workload,
    };
    let got = ipam
        .auto_assign(&args)
        .unwrap_or_else(|e| panic!("assign {handle}: {e}"));
    assert_eq!((got.v4.len(), got.v6.len()), (v4, v6), "{handle}");
}

/// An etcd store with every kind, a Kubernetes policy and IPAM allocations.
fn populated_etcd() -> Ds {
    let src = etcd();
    src.ok(&["apply", "-f", FIXTURE]);
    let knp = src.file("knp.yaml", KNP);
    src.ok(&["apply", "-f", &knp]);
    let ipam = src.ipam();
    assign(&ipam, "k8s-pod-network.aaa", "node-1", 2, 1);
    assign(&ipam, "k8s-pod-network.bbb", "node-1", 1, 0);
    assign(&ipam, "k8s-pod-network.ccc", "node-2", 1, 0);
    src
}

#[test]
fn export_of_etcd_imports_into_an_empty_local_store_with_every_answer_the_same() {
    let src = populated_etcd();
    // Calico's export needs a locked source.
    let e = src.fails(&["datastore", "migrate", "export"]);
    assert!(e.contains("datastore is not locked"), "{e}");
    assert!(
        src.ok(&["datastore", "migrate", "lock"])
            .contains("Datastore locked.")
    );
    let export = src.ok(&["datastore", "migrate", "export"]);

    // The format: resources, ===, ClusterInformation JSON, ===, IPAM JSON.
    let sections: Vec<&str> = export.split("===\n").collect();
    assert_eq!(sections.len(), 3, "{export}");
    let lists: Vec<&str> = sections[0]
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .filter(|k| k.ends_with("List"))
        .collect();
    assert_eq!(
        &lists[..4],
        [
            "IPPoolList",
            "BGPPeerList",
            "TierList",
            "GlobalNetworkPolicyList"
        ],
        "{lists:?}"
    );
    assert!(lists.contains(&"WorkloadEndpointList") && lists.contains(&"NetworkPolicyList"));
    assert!(sections[0].ends_with("---\n"));
    let ci: serde_json::Value =
        serde_json::from_str(sections[1]).unwrap_or_else(|e| panic!("{e}: {}", sections[1]));
    assert_eq!(ci["kind"], "ClusterInformation");
    assert_eq!(ci["spec"]["datastoreReady"], false);
    let ipam: serde_json::Value =
        serde_json::from_str(sections[2]).unwrap_or_else(|e| panic!("{e}: {}", sections[2]));
    let keys: Vec<&String> = ipam
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["block_affinities", "blocks", "handles", "config"]);
    assert!(
        ipam["blocks"][0]["Key"]
            .as_str()
            .is_some_and(|k| k.starts_with("/calico/ipam/v2/assignment/ipv4/block/")),
        "{ipam}"
    );
    assert_eq!(ipam["handles"].as_array().map(Vec::len), Some(3));
    assert_eq!(ipam["config"]["Key"], "/calico/ipam/v2/config");
    // As Calico's --export: the resources carry nothing a store sets itself.
    for f in ["resourceVersion", "uid:", "creationTimestamp"] {
        assert!(!sections[0].contains(f), "{f} in the resources section");
    }

    let dst = local();
    let file = dst.file("export.txt", &export);
    let out = dst.ok(&["datastore", "migrate", "import", "-f", &file]);
    assert!(out.contains("successfully imported"), "{out}");

    let (a, b) = (src.answers(), dst.answers());
    for (what, text) in &a {
        assert_eq!(
            Some(text),
            b.get(what),
            "`calicoctl {what}` differs after the migration"
        );
    }
    // The answers are not vacuous: every kind of the fixture, and the allocations.
    for k in Kind::ALL {
        let t = &a[&format!("get {}", k.plural())];
        assert!(
            t.contains("name:"),
            "{} is empty in the source:\n{t}",
            k.plural()
        );
    }
    assert!(
        a["ipam show"].contains("| IP Pool  | 10.244.0.0/16"),
        "{}",
        a["ipam show"]
    );
    assert!(
        a["ipam show --show-blocks"].contains("| Block    | 10.244."),
        "{}",
        a["ipam show --show-blocks"]
    );
    assert!(a["get networkpolicies"].contains("knp.default.web-ingress"));

    // Exported again, the target gives the same resources and IPAM state.
    let again = dst.ok(&["datastore", "migrate", "export"]);
    let again: Vec<&str> = again.split("===\n").collect();
    assert_eq!(again.len(), 3);
    assert_eq!(
        again[0], sections[0],
        "resources differ when exported again"
    );
    assert_eq!(
        again[2], sections[2],
        "IPAM state differs when exported again"
    );

    // The target stays locked until unlocked.
    assert!(b["get clusterinformations"].contains("datastoreReady: false"));
    dst.ok(&["datastore", "migrate", "unlock"]);
    assert!(
        dst.ok(&["get", "clusterinformations", "-o", "yaml"])
            .contains("datastoreReady: true")
    );
}

#[test]
fn import_refuses_a_store_that_is_not_empty_and_a_broken_file() {
    let src = local();
    src.ok(&["apply", "-f", FIXTURE]);
    src.ok(&["datastore", "migrate", "lock"]);
    let export = src.ok(&["datastore", "migrate", "export"]);

    // Into a store with one pool: refused, and the pool is all there is.
    let dst = local();
    let pool = dst.file(
        "pool.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.9.0.0/16}\n",
    );
    dst.ok(&["apply", "-f", &pool]);
    let file = dst.file("export.txt", &export);
    let e = dst.fails(&["datastore", "migrate", "import", "-f", &file]);
    assert!(e.contains("already has calico data"), "{e}");
    assert!(e.contains("ippools/p"), "{e}");
    assert!(!dst.ok(&["get", "nodes"]).contains("node-1"));
    assert!(
        !dst.ok(&["get", "clusterinformations", "-o", "yaml"])
            .contains("datastoreReady")
    );

    // Into the source itself: refused too.
    let own = src.file("export.txt", &export);
    let e = src.fails(&["datastore", "migrate", "import", "-f", &own]);
    assert!(e.contains("already has calico data"), "{e}");

    // A file that is not an export, and one with an invalid resource:
    // refused, and the empty store stays empty (not even locked).
    let empty = local();
    let bad = empty.file("bad.txt", "apiVersion: projectcalico.org/v3\n");
    let e = empty.fails(&["datastore", "migrate", "import", "-f", &bad]);
    assert!(e.contains("3 sections"), "{e}");
    let broken = export.replacen("cidr: 10.244.0.0/16", "cidr: 10.244.0.0/99", 1);
    assert_ne!(broken, export);
    let bad = empty.file("broken.txt", &broken);
    let e = empty.fails(&["datastore", "migrate", "import", "-f", &bad]);
    assert!(e.contains("nothing was imported"), "{e}");
    assert!(!empty.ok(&["get", "ippools"]).contains("pool-v4"));
    let bad_key = export.replacen(
        "\"Key\": \"/calico/ipam/v2/config\"",
        "\"Key\": \"/calico/ipam/v9/config\"",
        1,
    );
    assert_ne!(bad_key, export);
    let bad = empty.file("bad-key.txt", &bad_key);
    let e = empty.fails(&["datastore", "migrate", "import", "-f", &bad]);
    assert!(e.contains("/calico/ipam/v9/config"), "{e}");
    assert!(!empty.ok(&["get", "ippools"]).contains("pool-v4"));
    assert!(
        !empty
            .ok(&["get", "clusterinformations", "-o", "yaml"])
            .contains("datastoreReady")
    );
}

#[test]
fn lock_and_unlock_flip_datastore_ready() {
    let ds = local();
    // No ClusterInformation yet: lock makes one, with a cluster GUID.
    assert!(
        ds.ok(&["datastore", "migrate", "lock"])
            .contains("Datastore locked.")
    );
    let ci = ds.ok(&["get", "clusterinformation", "default", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&ci).unwrap_or_else(|e| panic!("{e}: {ci}"));
    assert_eq!(v["spec"]["datastoreReady"], false, "{ci}");
    let guid = v["spec"]["clusterGUID"].as_str().unwrap_or("").to_string();
    assert_eq!(guid.len(), 32, "{ci}");
    assert!(
        ds.ok(&["datastore", "migrate", "unlock"])
            .contains("Datastore unlocked.")
    );
    let ci = ds.ok(&["get", "clusterinformation", "default", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&ci).unwrap_or_else(|e| panic!("{e}: {ci}"));
    assert_eq!(v["spec"]["datastoreReady"], true, "{ci}");
    assert_eq!(
        v["spec"]["clusterGUID"],
        guid.as_str(),
        "unlock kept the GUID"
    );
}

#[test]
fn checksystem_names_each_feature_and_agrees_with_the_kernel_about_ipip() {
    let ds = local();
    let r = ds.run(&["node", "checksystem"]);
    for f in ["netfilter (nftables)", "VXLAN", "IPIP", "WireGuard", "BPF"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(f))
            .unwrap_or_else(|| panic!("{f} is not reported:\n{}", r.stdout));
        assert!(
            line.contains("present") || line.contains("missing"),
            "{line}"
        );
    }
    let ipip = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("IPIP"))
        .unwrap_or_default();
    let tunl0 = std::path::Path::new("/proc/sys/net/ipv4/conf/tunl0").exists();
    let loadable = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| {
            std::fs::read_to_string(format!("/lib/modules/{}/modules.dep", r.trim())).ok()
        })
        .is_some_and(|d| d.contains("/ipip.ko"));
    if tunl0 {
        assert!(ipip.contains("present"), "tunl0 exists but: {ipip}");
    } else if !loadable {
        assert!(
            ipip.contains("missing"),
            "no tunl0 and no ipip module, but: {ipip}"
        );
    }
    // Only a missing required feature fails the command.
    let nft = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("netfilter"))
        .unwrap_or_default();
    assert_eq!(
        r.code == 0,
        nft.contains("present"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let e = ds.fails(&[
        "node",
        "checksystem",
        "--kernel-config",
        "/nonexistent/config",
    ]);
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn diags_writes_one_archive_with_everything_listed() {
    require_root!();
    let ds = local();
    ds.ok(&["apply", "-f", FIXTURE]);
    assign(&ds.ipam(), "k8s-pod-network.aaa", "node-1", 1, 0);
    let ns = TestNetns::new("diags");
    ns.exec(&["ip", "addr", "add", "192.0.2.7/24", "dev", "lo"]);
    let logs = ds.dir.path().join("logs");
    std::fs::create_dir_all(logs.join("cni")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(logs.join("cni").join("cni.log"), "a log line\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let tmp = ds.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let log_dir = logs.display().to_string();
    let r = ds.run_in(
        Some(ns.name()),
        &[
            "node",
            "diags",
            "--log-dir",
            &log_dir,
            "--nodename",
            "node-1",
        ],
        &[("TMPDIR", &tmp.display().to_string())],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let archive = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Diags saved to "))
        .unwrap_or_else(|| panic!("no archive named:\n{}", r.stdout))
        .to_string();
    assert!(archive.starts_with(&tmp.display().to_string()), "{archive}");
    assert!(archive.ends_with(".tar.gz"), "{archive}");
    let list = Command::new("tar")
        .args(["-tzf", &archive])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(list.status.success());
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    for f in [
        "diagnostics/date",
        "diagnostics/hostname",
        "diagnostics/ipv4_route",
        "diagnostics/ipv6_route",
        "diagnostics/ipv4_addr",
        "diagnostics/ipv6_addr",
        "diagnostics/links",
        "diagnostics/nft_ruleset",
        "diagnostics/bgp_status",
        "diagnostics/logs/cni/cni.log",
        "diagnostics/resources/node.yaml",
        "diagnostics/resources/workloadendpoints.yaml",
        "diagnostics/resources/ipam_blocks.json",
    ] {
        assert!(
            names.lines().any(|l| l == f),
            "{f} missing from the archive:\n{names}"
        );
    }
    // The namespace's own view, and this node's resources.
    let read = |f: &str| {
        let out = Command::new("tar")
            .args(["-xzOf", &archive, f])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(read("diagnostics/ipv4_addr").contains("192.0.2.7/24"));
    assert!(read("diagnostics/resources/node.yaml").contains("name: node-1"));
    assert!(
        read("diagnostics/resources/workloadendpoints.yaml").contains("node--1-k8s-nginx-eth0")
    );
    assert!(read("diagnostics/resources/ipam_blocks.json").contains("host:node-1"));
}
