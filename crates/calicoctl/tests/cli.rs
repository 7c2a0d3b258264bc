//! calicoctl end to end: the real binary against a real SQLite file and a
//! real etcd started by the harness.

use calico_api::{Kind, Resource, decode_documents};
use calico_testutil::EtcdServer;

mod common;
use common::*;

#[path = "cli/big_files.rs"]
mod big_files;
#[path = "cli/output.rs"]
mod output;
#[path = "cli/policy.rs"]
mod policy;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/all-kinds.yaml"
);

fn decode(text: &str) -> Vec<Resource> {
    decode_documents(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}\n{text}")))
        .collect()
}

/// Strips what the datastore adds, to compare with what was written.
fn normalized(mut r: Resource) -> Resource {
    let m = r.metadata_mut();
    m.resource_version = None;
    m.uid = None;
    m.creation_timestamp = None;
    r.set_defaults();
    r
}

fn round_trip_every_kind(ds: Ds) {
    let out = ds.ok(&["apply", "-f", FIXTURE]);
    assert_eq!(out.trim(), "Successfully applied 23 resource(s)");
    let wanted: Vec<Resource> = decode(&std::fs::read_to_string(FIXTURE).unwrap_or_default())
        .into_iter()
        .map(|mut r| {
            r.default_namespace("default");
            normalized(r)
        })
        .collect();
    for kind in Kind::ALL {
        for fmt in ["yaml", "json"] {
            let text = ds.ok(&["get", kind.plural(), "-A", "-o", fmt]);
            let got: Vec<Resource> = decode(&text).into_iter().map(normalized).collect();
            let want: Vec<Resource> = wanted
                .iter()
                .filter(|r| r.kind() == kind)
                .cloned()
                .collect();
            let mut want_sorted = want.clone();
            want_sorted.sort_by_key(|r| r.key());
            assert_eq!(got, want_sorted, "{kind} via -o {fmt}");
            assert!(!got.is_empty(), "{kind} missing");
        }
    }
    // What get prints can be applied back unchanged.
    let yaml = ds.ok(&["get", "ippools", "-o", "yaml"]);
    let f = ds.file("pools.yaml", &yaml);
    assert_eq!(
        ds.ok(&["replace", "-f", &f]).trim(),
        "Successfully replaced 2 'IPPool' resource(s)"
    );
}

fn tables_look_like_calico(ds: Ds) {
    ds.ok(&["apply", "-f", FIXTURE]);
    let t = ds.ok(&["get", "ippools"]);
    let mut lines = t.lines();
    assert_eq!(lines.next(), Some("NAME      CIDR               SELECTOR"));
    assert_eq!(lines.next(), Some("pool-v4   10.244.0.0/16      all()"));
    let wide = ds.ok(&["get", "ipp", "-o", "wide"]);
    assert!(wide.starts_with("NAME      CIDR               NAT     IPIPMODE   VXLANMODE     DISABLED   DISABLEBGPEXPORT   SELECTOR                     ASSIGNMENTMODE\n"), "{wide}");
    assert!(wide.contains("pool-v4   10.244.0.0/16      true    Never      Always        false      false              all()                        Automatic\n"), "{wide}");
    // Namespaced kinds: default namespace, -n, -A.
    assert_eq!(ds.ok(&["get", "networksets"]).trim(), "NAME");
    assert!(
        ds.ok(&["get", "netsets", "-n", "staging"])
            .contains("external-database")
    );
    let all = ds.ok(&["get", "networkset", "-A"]);
    assert!(all.starts_with("NAMESPACE   NAME"), "{all}");
    assert!(
        ds.ok(&["get", "gnp", "-o", "wide"])
            .contains("security.deny-icmp   security   10.5")
    );
    // BGPFilter: rule counts per list, as Calico's calicoctl.
    let filters: Vec<Vec<String>> = ds
        .ok(&["get", "bgpfilters"])
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        filters,
        [
            [
                "NAME",
                "NUMEXPORTV4",
                "NUMIMPORTV4",
                "NUMEXPORTV6",
                "NUMIMPORTV6"
            ],
            ["tor-routes", "0", "2", "1", "0"]
        ]
    );
    assert!(
        ds.ok(&[
            "get",
            "NetworkPolicy",
            "allow-tcp-6379",
            "-n",
            "production",
            "-o",
            "yaml"
        ])
        .contains("kind: NetworkPolicy\n")
    );
}

fn invalid_batch_changes_nothing(ds: Ds) {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: good}\nspec: {cidr: 10.10.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.11.0.0/16, blockSize: 40}\n";
    let f = ds.file("batch.yaml", text);
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("batch.yaml: document 2: IPPool(bad)")
            && e.contains("spec.blockSize")
            && e.contains("between 20 and 32"),
        "{e}"
    );
    assert!(e.contains("nothing was changed"), "{e}");
    assert_eq!(ds.ok(&["get", "ippools"]).trim(), "NAME   CIDR   SELECTOR");
    // A decode error (unknown field) in the second document: also nothing written.
    let f = ds.file("b2.yaml", &text.replace("blockSize: 40", "colour: red"));
    let e = ds.fails(&["create", "-f", &f]);
    assert!(
        e.contains("document 2") && e.contains("unknown field `colour`"),
        "{e}"
    );
    assert_eq!(ds.ok(&["get", "ippools"]).trim(), "NAME   CIDR   SELECTOR");
    // Pools overlapping each other within one batch.
    let f = ds.file(
        "b3.yaml",
        &text.replace("10.11.0.0/16, blockSize: 40", "10.10.128.0/24"),
    );
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(e.contains("overlaps"), "{e}");
    assert_eq!(ds.ok(&["get", "ippools"]).trim(), "NAME   CIDR   SELECTOR");
}

fn optimistic_concurrency(ds: Ds) {
    ds.ok(&["create", "-f", FIXTURE]);
    let old = ds.ok(&["get", "ippool", "pool-v4", "-o", "yaml"]);
    ds.ok(&[
        "patch",
        "ippool",
        "pool-v4",
        "-p",
        r#"{"spec":{"natOutgoing":false}}"#,
    ]);
    let f = ds.file("stale.yaml", &old);
    let e = ds.fails(&["replace", "-f", &f]);
    assert!(
        e.contains("update conflict") && e.contains("resourceVersion"),
        "{e}"
    );
    // Without a resourceVersion, replace overwrites.
    let fresh: String = old
        .lines()
        .filter(|l| !l.contains("resourceVersion"))
        .map(|l| format!("{l}\n"))
        .collect();
    let f = ds.file("fresh.yaml", &fresh);
    ds.ok(&["replace", "-f", &f]);
    assert!(
        ds.ok(&["get", "ippool", "pool-v4", "-o", "wide"])
            .contains("true")
    );
    // Create of an existing resource fails, unless skipped.
    let e = ds.fails(&["create", "-f", FIXTURE]);
    assert!(
        e.contains("all-kinds.yaml: document 1: resource already exists: IPPool(pool-v4)"),
        "{e}"
    );
    assert!(
        ds.ok(&["create", "-f", FIXTURE, "--skip-exists"])
            .contains("Successfully created 23")
    );
    // Replace of a missing resource fails.
    let f = ds.file(
        "missing.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: nope}\n",
    );
    assert!(
        ds.fails(&["replace", "-f", &f])
            .contains("resource does not exist: Profile(nope)")
    );
}

fn delete_patch_label(ds: Ds) {
    ds.ok(&["apply", "-f", FIXTURE]);
    assert_eq!(
        ds.ok(&["delete", "ippool", "pool-v6"]).trim(),
        "Successfully deleted 1 'IPPool' resource(s)"
    );
    assert!(
        ds.fails(&["delete", "ippool", "pool-v6"])
            .contains("resource does not exist: IPPool(pool-v6)")
    );
    ds.ok(&["delete", "ippool", "pool-v6", "--skip-not-exists"]);
    ds.ok(&["delete", "netset", "external-database", "-n", "staging"]);
    let f = ds.file(
        "del.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: dev-profile}\n",
    );
    ds.ok(&["delete", "-f", &f]);
    assert!(
        ds.fails(&["get", "profile", "dev-profile"])
            .contains("resource does not exist")
    );

    ds.ok(&[
        "patch",
        "bgpconfig",
        "default",
        "-p",
        r#"{"spec":{"asNumber":65000,"logSeverityScreen":null}}"#,
    ]);
    let b = ds.ok(&["get", "bgpconfig", "default", "-o", "yaml"]);
    assert!(
        b.contains("asNumber: 65000") && !b.contains("logSeverityScreen"),
        "{b}"
    );
    let e = ds.fails(&[
        "patch",
        "ippool",
        "pool-v4",
        "-p",
        r#"{"spec":{"blockSize":99}}"#,
    ]);
    assert!(e.contains("blockSize"), "{e}");
    assert!(
        ds.fails(&["patch", "ippool", "pool-v4", "-p", "{not json"])
            .contains("not valid JSON")
    );
    assert!(
        ds.fails(&["patch", "ippool", "nope", "-p", "{}"])
            .contains("resource does not exist")
    );

    assert!(
        ds.ok(&["label", "nodes", "node-1", "zone=a"])
            .contains("Successfully set label zone")
    );
    let e = ds.fails(&["label", "nodes", "node-1", "zone=b"]);
    assert!(e.contains("--overwrite"), "{e}");
    ds.ok(&["label", "nodes", "node-1", "zone=b", "--overwrite"]);
    assert!(
        ds.ok(&["get", "node", "node-1", "-o", "yaml"])
            .contains("zone: b")
    );
    ds.ok(&["label", "nodes", "node-1", "--remove", "zone"]);
    assert!(
        !ds.ok(&["get", "node", "node-1", "-o", "yaml"])
            .contains("zone:")
    );
    assert!(
        ds.fails(&["label", "nodes", "node-1", "bad key=x"])
            .contains("label key")
    );
}

fn bad_input_is_refused_cleanly(ds: Ds) {
    assert!(
        ds.fails(&["apply", "-f", "/nonexistent/file.yaml"])
            .contains("cannot read /nonexistent/file.yaml")
    );
    let f = ds.file("garbage.yaml", "key: [unclosed\n");
    assert!(ds.fails(&["apply", "-f", &f]).contains("invalid YAML"));
    let f = ds.file("empty.yaml", "");
    assert!(
        ds.fails(&["apply", "-f", &f])
            .contains("holds no resources")
    );
    let f = ds.file(
        "ns.yaml",
        "apiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: s, namespace: a}\n",
    );
    let e = ds.fails(&["apply", "-f", &f, "-n", "b"]);
    assert!(e.contains("--namespace \"b\" was given"), "{e}");
    assert!(
        ds.ok(&["apply", "-f", &f, "-n", "a"])
            .contains("Successfully applied 1 'NetworkSet'")
    );
    assert!(
        ds.fails(&["get", "pods"])
            .contains("resource type \"pods\" is not known")
    );
    assert!(
        ds.fails(&["get", "ippools", "-o", "xml"])
            .contains("not supported")
    );
    assert!(
        ds.fails(&["get", "ippool", "Bad_Name"])
            .contains("invalid name")
    );
    assert!(ds.fails(&["delete", "ippool"]).contains("give the name"));
    assert_ne!(ds.run(&["frobnicate"]).code, 0);
    // Stdin input works, and bad stdin input is refused.
    let r = ds.run_with_input(
        &["apply", "-f", "-"],
        Some("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: p-from-stdin}\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ds.run_with_input(&["apply", "-f", "-"], Some("\u{0}\u{1}garbage: ["));
    assert_ne!(r.code, 0);
}

macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn round_trip_every_kind() {
                super::round_trip_every_kind(super::$backend());
            }
            #[test]
            fn tables_look_like_calico() {
                super::tables_look_like_calico(super::$backend());
            }
            #[test]
            fn invalid_batch_changes_nothing() {
                super::invalid_batch_changes_nothing(super::$backend());
            }
            #[test]
            fn optimistic_concurrency() {
                super::optimistic_concurrency(super::$backend());
            }
            #[test]
            fn delete_patch_label() {
                super::delete_patch_label(super::$backend());
            }
            #[test]
            fn bad_input_is_refused_cleanly() {
                super::bad_input_is_refused_cleanly(super::$backend());
            }
            #[test]
            fn tiers() {
                super::policy::tiers(super::$backend());
            }
            #[test]
            fn calico_names() {
                super::output::calico_names(super::$backend());
            }
            #[test]
            fn headings_per_kind() {
                super::output::headings_per_kind(super::$backend());
            }
            #[test]
            fn pool_defaults_as_calico() {
                super::output::pool_defaults_as_calico(super::$backend());
            }
            #[test]
            fn custom_columns_and_templates() {
                super::output::custom_columns_and_templates(super::$backend());
            }
            #[test]
            fn files_and_directories() {
                super::output::files_and_directories(super::$backend());
            }
            #[test]
            fn kubernetes_network_policies() {
                super::policy::kubernetes_network_policies(super::$backend());
            }
            #[test]
            fn label_workload_endpoints() {
                super::policy::label_workload_endpoints(super::$backend());
            }
        }
    };
}

suite!(local);
suite!(etcd);

#[test]
fn validate_and_version_need_no_store() {
    let ds = local();
    assert_eq!(
        ds.ok(&["validate", "-f", FIXTURE]).trim(),
        "Successfully validated 23 resource(s)"
    );
    let f = ds.file("bad.yaml", "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 4294967296}\n");
    let e = ds.fails(&["validate", "-f", &f]);
    assert!(
        e.contains("spec.asNumber") && e.contains("out of range"),
        "{e}"
    );
    let v = ds.ok(&["version"]);
    assert!(v.starts_with("Client Version:    v"), "{v}");
    ds.ok(&["apply", "-f", FIXTURE]);
    assert!(ds.ok(&["version"]).contains("Cluster Version:   v3.28.0"));
}

#[test]
fn config_file_selects_the_datastore() {
    let server = EtcdServer::start();
    let ds = local();
    let cfg = ds.file(
        "calicoctl.cfg",
        &format!("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: {}\n", server.endpoint()),
    );
    ds.ok(&["--config", &cfg, "apply", "-f", FIXTURE]);
    // The pools are in etcd, under Calico's key layout, and not in the local file.
    let keys = server
        .etcdctl(&[
            "get",
            "--prefix",
            "--keys-only",
            "/calico/resources/v3/projectcalico.org/ippools/",
        ])
        .unwrap_or_default();
    assert!(
        keys.contains("/calico/resources/v3/projectcalico.org/ippools/pool-v4"),
        "{keys}"
    );
    let wep = server
        .etcdctl(&[
            "get",
            "--prefix",
            "--keys-only",
            "/calico/resources/v3/projectcalico.org/workloadendpoints/",
        ])
        .unwrap_or_default();
    assert!(
        wep.contains("/workloadendpoints/web/node--1-k8s-nginx-eth0"),
        "{wep}"
    );
    assert_eq!(ds.ok(&["get", "ippools"]).trim(), "NAME   CIDR   SELECTOR");
    assert!(ds.ok(&["-c", &cfg, "get", "ippools"]).contains("pool-v4"));
}

#[test]
fn unreachable_etcd_is_a_clear_error() {
    let port = calico_testutil::free_port();
    let ds = Ds {
        env: vec![
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), format!("http://127.0.0.1:{port}")),
        ],
        dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        _etcd: None,
    };
    let e = ds.fails(&["get", "ippools"]);
    assert!(
        e.contains(&format!("127.0.0.1:{port}")) && e.contains("unreachable"),
        "{e}"
    );
    let ds = Ds {
        env: vec![("DATASTORE_TYPE".into(), "kubernetes".into())],
        ..local()
    };
    assert!(
        ds.fails(&["get", "ippools"])
            .contains("\"kubernetes\" is not supported")
    );
}

/// `calicoctl node status` with no calico-node agent on this machine
/// (the running case is tested with the agent in calico-node's tests).
#[test]
fn node_status_without_an_agent() {
    let agent = std::fs::read_dir("/proc").is_ok_and(|d| {
        d.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "calico-node")
        })
    });
    if agent {
        eprintln!("skipped: a calico-node agent runs on this machine");
        return;
    }
    let ds = local();
    let err = ds.fails(&["node", "status"]);
    assert!(err.contains("Calico process is not running."), "{err}");
}
