//! calicoctl output and names as Calico's calicoctl (issue 18 point 7):
//! every name its `resourcemgr` tables take, its table headings per kind
//! (NAMESPACE with `-n` as with `-A`), `get -f`, `-f DIR` and `-R`, and the
//! `custom-columns` / `go-template` subsets; and IPPool defaults as
//! Calico's client writes them (`assignmentMode: Automatic`, no
//! `natOutgoing: false`). Each runs on both backends through `suite!`.

use super::{Ds, FIXTURE};

/// Every name Calico 3.31's calicoctl takes for a kind calico-rs keeps
/// (`calicoctl/calicoctl/resourcemgr/*.go`).
const CALICO_NAMES: &[&str] = &[
    "bgpconfiguration",
    "bgpconfigurations",
    "bgpconfig",
    "bgpconfigs",
    "bgpfilter",
    "bgpfilters",
    "bgpf",
    "bgpfs",
    "bf",
    "bfs",
    "bgppeer",
    "bgppeers",
    "bgpp",
    "bgpps",
    "bp",
    "bps",
    "clusterinformation",
    "clusterinformations",
    "clusterinfo",
    "clusterinfos",
    "felixconfiguration",
    "felixconfigurations",
    "felixconfig",
    "felixconfigs",
    "globalnetworkpolicy",
    "globalnetworkpolicies",
    "gnp",
    "gnps",
    "globalnetworkset",
    "globalnetworksets",
    "gnetsets",
    "hostendpoint",
    "hostendpoints",
    "hep",
    "heps",
    "ipamconfiguration",
    "ipamconfigurations",
    "ipamconfig",
    "ipamconfigs",
    "ippool",
    "ippools",
    "ipp",
    "ipps",
    "pool",
    "pools",
    "ipreservation",
    "ipreservations",
    "reservation",
    "reservations",
    "kubecontrollersconfiguration",
    "kubecontrollersconfigurations",
    "kubecontrollersconfig",
    "kubecontrollersconfigs",
    "networkpolicy",
    "networkpolicies",
    "policy",
    "np",
    "policies",
    "pol",
    "pols",
    "networkset",
    "networksets",
    "netsets",
    "node",
    "nodes",
    "no",
    "nos",
    "profile",
    "profiles",
    "pro",
    "pros",
    "stagedglobalnetworkpolicy",
    "stagedglobalnetworkpolicies",
    "sgnp",
    "sgnps",
    "stagedkubernetesnetworkpolicy",
    "stagedkubernetesnetworkpolicies",
    "stagedkubernetespolicy",
    "sknp",
    "stagedkubernetespolicies",
    "skpol",
    "skpols",
    "stagednetworkpolicy",
    "stagednetworkpolicies",
    "stagedpolicy",
    "snp",
    "stagedpolicies",
    "spol",
    "spols",
    "tier",
    "tiers",
    "workloadendpoint",
    "workloadendpoints",
    "wep",
    "weps",
];

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: plain}\nspec: {cidr: 10.9.0.0/16}\n";

fn pool(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: {cidr}}}\n"
    )
}

pub fn calico_names(ds: Ds) {
    for name in CALICO_NAMES {
        let r = ds.run(&["get", name]);
        assert_eq!(r.code, 0, "calicoctl get {name}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("NAME") || r.stdout.starts_with("WORKLOAD"),
            "{name}: {}",
            r.stdout
        );
    }
    // Calico's CalicoNodeStatus is not kept: said plainly.
    let e = ds.fails(&["get", "caliconodestatus"]);
    assert!(e.contains("calicoctl node status"), "{e}");
}

pub fn headings_per_kind(ds: Ds) {
    ds.ok(&["apply", "-f", FIXTURE]);
    let lines = |args: &[&str]| -> Vec<String> {
        ds.ok(args)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        lines(&["get", "gnp"]),
        ["NAME TIER", "security.deny-icmp security"]
    );
    assert_eq!(
        lines(&["get", "gnp", "-o", "wide"])[0],
        "NAME TIER ORDER SELECTOR"
    );
    let ci = lines(&["get", "clusterinfo"]);
    assert_eq!(
        ci[0],
        "NAME CLUSTERGUID CLUSTERTYPE CALICOVERSION DATASTOREREADY"
    );
    assert!(ci[1].ends_with(" true"), "{ci:?}");
    assert!(lines(&["get", "ipp", "-o", "wide"])[0].ends_with(" SELECTOR ASSIGNMENTMODE"));
    assert_eq!(
        lines(&["get", "ipamconfig"])[0],
        "NAME STRICTAFFINITY AUTOALLOCATEBLOCKS"
    );
    assert_eq!(lines(&["get", "reservations"]), ["NAME", "reserved"]);
    assert_eq!(
        lines(&["get", "reservations", "-o", "wide"])[0],
        "NAME CIDRS"
    );
    // NAMESPACE with -n as with -A (namespaced kinds only).
    assert_eq!(
        lines(&["get", "netsets", "-n", "staging"]),
        ["NAMESPACE NAME", "staging external-database"]
    );
    assert_eq!(
        lines(&["get", "ipp", "-n", "staging"])[0],
        "NAME CIDR SELECTOR"
    );
    assert_eq!(
        lines(&["get", "netsets", "-n", "nowhere"]),
        ["NAMESPACE NAME"]
    );
    // Nodes' ASN (wide): its own, else the cluster's (BGPConfiguration
    // default: 64513 in the fixture) in brackets, nothing without BGP.
    let f = ds.file(
        "nodes.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-2}\n\
         spec: {bgp: {ipv4Address: 10.0.0.2/24}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-3}\nspec: {}\n",
    );
    ds.ok(&["apply", "-f", &f]);
    let nodes = lines(&["get", "nodes", "-o", "wide"]);
    assert_eq!(nodes[0], "NAME ASN IPV4 IPV6", "{nodes:?}");
    assert!(nodes[1].starts_with("node-1 64514 "), "{nodes:?}");
    assert_eq!(nodes[2], "node-2 (64513) 10.0.0.2/24", "{nodes:?}");
    assert_eq!(nodes[3], "node-3", "{nodes:?}");
}

pub fn pool_defaults_as_calico(ds: Ds) {
    let f = ds.file("pool.yaml", POOL);
    ds.ok(&["create", "-f", &f]);
    let y = ds.ok(&["get", "ippool", "plain", "-o", "yaml"]);
    assert!(y.contains("assignmentMode: Automatic\n"), "{y}");
    assert!(
        !y.contains("natOutgoing"),
        "natOutgoing: false is omitted: {y}"
    );
    let j = ds.ok(&["get", "ippool", "plain", "-o", "json"]);
    assert!(!j.contains("natOutgoing"), "{j}");
    // natOutgoing: true is shown.
    let f = ds.file(
        "nat.yaml",
        &POOL.replace("cidr: 10.9.0.0/16", "cidr: 10.9.0.0/16, natOutgoing: true"),
    );
    ds.ok(&["apply", "-f", &f]);
    assert!(
        ds.ok(&["get", "ippool", "plain", "-o", "yaml"])
            .contains("natOutgoing: true\n")
    );
    // Manual stays Manual.
    let f = ds.file(
        "manual.yaml",
        &POOL.replace(
            "cidr: 10.9.0.0/16",
            "cidr: 10.9.0.0/16, assignmentMode: Manual",
        ),
    );
    ds.ok(&["apply", "-f", &f]);
    assert!(
        ds.ok(&["get", "ippool", "plain", "-o", "yaml"])
            .contains("assignmentMode: Manual\n")
    );
}

pub fn custom_columns_and_templates(ds: Ds) {
    ds.ok(&["apply", "-f", FIXTURE]);
    let t = ds.ok(&["get", "ippools", "-o", "custom-columns=NAME,CIDR"]);
    assert_eq!(
        t,
        "NAME      CIDR\npool-v4   10.244.0.0/16\npool-v6   fd00:10:244::/48\n"
    );
    let t = ds.ok(&[
        "get",
        "ippools",
        "-o",
        "custom-columns=POOL:.metadata.name,.spec.vxlanMode",
    ]);
    assert_eq!(
        t,
        "POOL      VXLANMODE\npool-v4   Always\npool-v6   CrossSubnet\n"
    );
    // Calico's headings only for the kind; the valid ones are named.
    let e = ds.fails(&["get", "ippools", "-o", "custom-columns=NAME,TIER"]);
    assert!(
        e.contains("unknown heading TIER") && e.contains("ASSIGNMENTMODE"),
        "{e}"
    );
    let t = ds.ok(&[
        "get",
        "ippools",
        "-o",
        "go-template={{range .items}}{{.metadata.name}}={{.spec.cidr}}\\n{{end}}",
    ]);
    assert_eq!(t, "pool-v4=10.244.0.0/16\npool-v6=fd00:10:244::/48\n");
    // One name: the resource itself; Go's field names work too.
    let t = ds.ok(&[
        "get",
        "ippool",
        "pool-v4",
        "-o",
        "go-template={{.Spec.CIDR}} {{.Name}}",
    ]);
    assert_eq!(t, "10.244.0.0/16 pool-v4");
    for bad in [
        "go-template={{if .items}}x{{end}}",
        "go-template={{range .items}}",
        "go-template={{.metadata.name | printf}}",
        "go-template=",
        "custom-columns=",
        "jsonpath={.items}",
    ] {
        let r = ds.run(&["get", "ippools", "-o", bad]);
        assert_ne!(r.code, 0, "{bad}: {}", r.stdout);
        assert!(r.stdout.is_empty(), "{bad}: nothing printed: {}", r.stdout);
        assert!(
            !r.stderr.trim().is_empty() && r.stderr.len() < 400,
            "{bad}: {}",
            r.stderr
        );
    }
}

pub fn files_and_directories(ds: Ds) {
    let dir = ds.dir.path().join("manifests");
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap_or_else(|e| panic!("{e}"));
    let put =
        |p: &str, text: &str| std::fs::write(dir.join(p), text).unwrap_or_else(|e| panic!("{e}"));
    put("a.yaml", &pool("a", "10.61.0.0/16"));
    put(
        "b.JSON",
        r#"{"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "b"}, "spec": {"cidr": "10.62.0.0/16"}}"#,
    );
    put("notes.txt", "not a manifest");
    put("sub/c.yml", &pool("c", "10.63.0.0/16"));
    put("sub/deeper/d.yaml", &pool("d", "10.64.0.0/16"));
    let d = dir.display().to_string();
    let names = |out: String| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect()
    };

    // Without -R: the directory's own manifests only, as Calico.
    ds.ok(&["create", "-f", &d]);
    assert_eq!(names(ds.ok(&["get", "ippools"])), ["a", "b"]);
    assert_eq!(names(ds.ok(&["get", "-f", &d])), ["a", "b"]);
    // -R: subdirectories too, depth first.
    ds.ok(&["apply", "-f", &d, "-R"]);
    assert_eq!(names(ds.ok(&["get", "-R", "-f", &d])), ["a", "b", "c", "d"]);
    let t = ds.ok(&["get", "-f", &d, "-R", "-o", "custom-columns=NAME,CIDR"]);
    assert!(t.contains("d      10.64.0.0/16"), "{t}");
    ds.ok(&["replace", "-f", &d, "-R"]);
    ds.ok(&["validate", "-f", &d, "-R"]);
    // get -f FILE: the resources it names, as stored.
    let one = dir.join("sub/c.yml").display().to_string();
    let y = ds.ok(&["get", "-f", &one, "-o", "yaml"]);
    assert!(
        y.contains("name: c\n") && y.contains("assignmentMode: Automatic"),
        "{y}"
    );
    let e = ds.fails(&["get", "-f", &one, "ippool"]);
    assert!(e.contains("not both"), "{e}");
    // A bad document anywhere in the tree: nothing is written, the file named.
    put(
        "sub/deeper/bad.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: e}\nspec: {cidr: nonsense}\n",
    );
    put("sub/e.yaml", &pool("e2", "10.65.0.0/16"));
    let e = ds.fails(&["apply", "-f", &d, "-R"]);
    assert!(
        e.contains("bad.yaml: document 1") && e.contains("nothing was changed"),
        "{e}"
    );
    assert!(
        ds.run(&["get", "ippool", "e2"]).code != 0,
        "nothing half-made"
    );
    std::fs::remove_file(dir.join("sub/deeper/bad.yaml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(dir.join("sub/e.yaml")).unwrap_or_else(|e| panic!("{e}"));
    ds.ok(&["delete", "-f", &d, "-R"]);
    assert_eq!(names(ds.ok(&["get", "ippools"])), Vec::<String>::new());
    // A directory with no manifests.
    let empty = ds.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let e = ds.fails(&["apply", "-f", &empty.display().to_string()]);
    assert!(e.contains("holds no .yaml, .yml or .json files"), "{e}");
}
