//! calicoctl and policy: Tiers, Kubernetes NetworkPolicies mixed with Calico
//! resources (shown as Calico shows them, `knp.default.<name>`), and labels
//! on WorkloadEndpoints. Each runs on both backends through `suite!`.

use super::{Ds, FIXTURE, decode};

const TIER: &str =
    "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\nspec: {order: 50}\n";

fn gnp(name: &str, tier: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {{tier: {tier}, selector: all()}}\n"
    )
}

pub fn tiers(ds: Ds) {
    // A policy naming a tier that does not exist changes nothing.
    let f = ds.file("orphan.yaml", &gnp("platform.allow", "platform"));
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("GlobalNetworkPolicy(platform.allow): spec.tier: resource does not exist: Tier(platform)")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(ds.ok(&["get", "gnp"]).trim(), "NAME   TIER");
    // The tier and its policy in one file: the tier is checked within the batch.
    let f = ds.file(
        "tiered.yaml",
        &format!("{TIER}---\n{}", gnp("platform.allow", "platform")),
    );
    assert_eq!(
        ds.ok(&["create", "-f", &f]).trim(),
        "Successfully created 2 resource(s)"
    );
    let default = ds.file(
        "default.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\n",
    );
    ds.ok(&["apply", "-f", &default]);
    // Tables as Calico's (`calicoctl get tier`: NAME, ORDER; Go's float format).
    let t = ds.ok(&["get", "tiers"]);
    assert_eq!(
        t, "NAME       ORDER\nplatform   50\ndefault    1e+06\n",
        "{t}"
    );
    assert_eq!(ds.ok(&["get", "tier", "-o", "wide"]), t);
    let y = ds.ok(&["get", "Tier", "default", "-o", "yaml"]);
    assert!(
        y.contains("kind: Tier\n")
            && y.contains("defaultAction: Deny")
            && y.contains("order: 1000000"),
        "{y}"
    );
    let e = ds.fails(&["delete", "tier", "platform"]);
    assert!(
        e.contains("cannot delete a non-empty tier: GlobalNetworkPolicy(platform.allow)"),
        "{e}"
    );
    let e = ds.fails(&["delete", "tier", "default"]);
    assert!(e.contains("the default tier cannot be deleted"), "{e}");
    // Bad tiers: a dotted name, the default tier's order.
    let f = ds.file(
        "bad-tier.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: a.b}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\nspec: {order: 1}\n",
    );
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("document 1: Tier(a.b)")
            && e.contains("metadata.name")
            && e.contains("document 2: Tier(default)")
            && e.contains("order must be 1000000"),
        "{e}"
    );
    ds.ok(&["delete", "gnp", "platform.allow"]);
    ds.ok(&["delete", "tier", "platform"]);
    assert_eq!(
        ds.ok(&["get", "tiers"]),
        "NAME      ORDER\ndefault   1e+06\n"
    );
}

const KNP: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
spec:
  podSelector:
    matchLabels: {app: web}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: blue}}
    ports:
    - {port: 80, endPort: 81}
";

const CALICO_NP: &str = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-dns}
spec:
  order: 10
  selector: all()
  types: [Egress]
  egress:
  - action: Allow
    protocol: UDP
    destination: {ports: [53]}
";

pub fn kubernetes_network_policies(ds: Ds) {
    // Kubernetes and Calico policies in one file, with a Kubernetes policy in another namespace.
    let text = format!(
        "{CALICO_NP}---\n{KNP}---\n{}",
        KNP.replace("name: web", "name: db\n  namespace: shop")
    );
    let f = ds.file("mixed.yaml", &text);
    assert_eq!(
        ds.ok(&["apply", "-f", &f]).trim(),
        "Successfully applied 3 resource(s)"
    );
    // `get networkpolicy` shows the converted policy beside the Calico one.
    let t = ds.ok(&["get", "networkpolicy"]);
    assert_eq!(
        t, "NAME              TIER\nallow-dns         default\nknp.default.web   default\n",
        "{t}"
    );
    let all = ds.ok(&["get", "policies", "-A", "-o", "wide"]);
    assert!(
        all.starts_with("NAMESPACE   NAME              TIER      ORDER   SELECTOR\n")
            && all.contains("shop        knp.default.db    default   1000    projectcalico.org/orchestrator == 'k8s' && app == 'web'"),
        "{all}"
    );
    let y = ds.ok(&[
        "get",
        "networkpolicy",
        "knp.default.db",
        "-n",
        "shop",
        "-o",
        "yaml",
    ]);
    let got = decode(&y);
    assert_eq!(got.len(), 1, "{y}");
    let v = got[0].to_json();
    assert_eq!(v["kind"], "NetworkPolicy");
    assert_eq!(v["metadata"]["namespace"], "shop");
    assert!(v["metadata"]["resourceVersion"].is_string(), "{y}");
    assert_eq!(
        v["spec"]["ingress"][0]["source"]["namespaceSelector"],
        "team == 'blue'"
    );
    assert_eq!(v["spec"]["ingress"][0]["destination"]["ports"][0], "80:81");
    let e = ds.fails(&["get", "networkpolicy", "knp.default.nope"]);
    assert!(
        e.contains("resource does not exist: NetworkPolicy(default/knp.default.nope)"),
        "{e}"
    );

    // The converted policy is read-only through the Calico kind.
    for args in [
        vec!["delete", "networkpolicy", "knp.default.web"],
        vec!["label", "networkpolicy", "knp.default.web", "a=b"],
        vec!["patch", "networkpolicy", "knp.default.web", "-p", "{}"],
    ] {
        let e = ds.fails(&args);
        assert!(
            e.contains("kubernetes network policies must be managed through the kubernetes API")
                && e.contains("networking.k8s.io/v1 NetworkPolicy \"web\""),
            "{args:?}: {e}"
        );
    }
    let converted = ds.file(
        "converted.yaml",
        &ds.ok(&["get", "np", "knp.default.web", "-o", "yaml"]),
    );
    let e = ds.fails(&["apply", "-f", &converted]);
    assert!(
        e.contains("operation apply is not supported on NetworkPolicy(default/knp.default.web)")
            && e.contains("nothing was changed"),
        "{e}"
    );

    // Strict decoding and validation, nothing half-written.
    let bad = ds.file(
        "bad.yaml",
        &format!(
            "{}---\n{}",
            gnp("new-gnp", "default"),
            KNP.replace("podSelector:\n", "podSelectr:\n")
        ),
    );
    let e = ds.fails(&["apply", "-f", &bad]);
    assert!(e.contains("document 2") && e.contains("podSelectr"), "{e}");
    let bad = ds.file("bad2.yaml", &KNP.replace("endPort: 81", "endPort: 79"));
    let e = ds.fails(&["create", "-f", &bad, "--skip-exists"]);
    assert!(
        e.contains("NetworkPolicy.networking.k8s.io(default/web)") && e.contains("endPort"),
        "{e}"
    );
    let other = ds.file(
        "ingress.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n",
    );
    assert!(
        ds.fails(&["apply", "-f", &other])
            .contains("only NetworkPolicy is")
    );
    assert_eq!(ds.ok(&["get", "gnp"]).trim(), "NAME   TIER");
    let e = ds.fails(&["apply", "-f", &f, "-n", "other"]);
    assert!(e.contains("--namespace \"other\" was given"), "{e}");
    // Create and replace see Kubernetes policies as Calico resources are seen.
    let e = ds.fails(&["create", "-f", &f]);
    assert!(
        e.contains("resource already exists: NetworkPolicy.networking.k8s.io(default/web)"),
        "{e}"
    );
    let moved = ds.file(
        "moved.yaml",
        &KNP.replace("name: web", "name: web\n  namespace: elsewhere"),
    );
    let e = ds.fails(&["replace", "-f", &moved]);
    assert!(
        e.contains("resource does not exist: NetworkPolicy.networking.k8s.io(elsewhere/web)"),
        "{e}"
    );
    assert_eq!(
        ds.ok(&["replace", "-f", &f]).trim(),
        "Successfully replaced 3 resource(s)"
    );

    // Deleting by file removes the Kubernetes policies (and their converted form).
    let knps = ds.file(
        "knps.yaml",
        &text.replace(CALICO_NP, "").replacen("---\n", "", 1),
    );
    assert_eq!(
        ds.ok(&["delete", "-f", &knps]).trim(),
        "Successfully deleted 2 'NetworkPolicy.networking.k8s.io' resource(s)"
    );
    assert_eq!(
        ds.ok(&["get", "np", "-A"]),
        "NAMESPACE   NAME        TIER\ndefault     allow-dns   default\n"
    );
    let e = ds.fails(&["delete", "-f", &knps]);
    assert!(
        e.contains("resource does not exist: NetworkPolicy.networking.k8s.io(default/web)"),
        "{e}"
    );
    ds.ok(&["delete", "-f", &knps, "--skip-not-exists"]);
}

pub fn label_workload_endpoints(ds: Ds) {
    ds.ok(&["apply", "-f", FIXTURE]);
    let wep = "node--1-k8s-nginx-eth0";
    let get = || ds.ok(&["get", "wep", wep, "-n", "web", "-o", "yaml"]);
    assert_eq!(
        ds.ok(&["label", "workloadendpoints", wep, "-n", "web", "team=blue"])
            .trim(),
        format!("Successfully set label team on workloadendpoints {wep}")
    );
    assert!(get().contains("team: blue"), "{}", get());
    // Setting the same value again needs no --overwrite; another value does.
    assert!(
        ds.ok(&["label", "wep", wep, "-n", "web", "team=blue"])
            .contains("Successfully updated label team")
    );
    let e = ds.fails(&["label", "wep", wep, "-n", "web", "team=red"]);
    assert!(
        e.contains("key team is already present. please use '--overwrite'"),
        "{e}"
    );
    ds.ok(&["label", "wep", wep, "-n", "web", "team=red", "--overwrite"]);
    assert!(get().contains("team: red"));
    // Calico's `key --remove` form.
    assert_eq!(
        ds.ok(&[
            "label",
            "wep",
            wep,
            "team",
            "--remove",
            "--namespace",
            "web"
        ])
        .trim(),
        format!("Successfully removed label team from wep {wep}")
    );
    assert!(!get().contains("team:"));
    let e = ds.fails(&["label", "wep", wep, "-n", "web", "team", "--remove"]);
    assert!(
        e.contains("cannot remove label of wep node--1-k8s-nginx-eth0, key team does not exist"),
        "{e}"
    );
    // Missing endpoints, in the default namespace or another one.
    let e = ds.fails(&["label", "wep", wep, "team=blue"]);
    assert!(
        e.contains("failed to get wep node--1-k8s-nginx-eth0")
            && e.contains(
                "resource does not exist: WorkloadEndpoint(default/node--1-k8s-nginx-eth0)"
            ),
        "{e}"
    );
    let e = ds.fails(&["label", "wep", "nope", "-n", "web", "team=blue"]);
    assert!(
        e.contains("resource does not exist: WorkloadEndpoint(web/nope)"),
        "{e}"
    );
    // Bad input.
    assert!(
        ds.fails(&["label", "wep", wep, "-n", "web", "a=b=c"])
            .contains("invalid label a=b=c")
    );
    assert!(
        ds.fails(&[
            "label",
            "wep",
            wep,
            "-n",
            "web",
            "a=b",
            "--remove",
            "--overwrite"
        ])
        .contains("cannot be used with")
    );
    assert!(
        ds.fails(&["label", "wep", wep, "-n", "web"])
            .contains("give key=value")
    );
    assert!(
        ds.fails(&["label", "wep", wep, "-n", "web", "bad key=v"])
            .contains("label key")
    );
    assert!(
        ds.fails(&["label", "wep", wep, "-n", "Bad_NS", "a=b"])
            .contains("namespace")
    );
    // Nothing else changed on the endpoint.
    let now = decode(&get());
    let before = decode(&std::fs::read_to_string(FIXTURE).unwrap_or_default());
    let want = before
        .into_iter()
        .find(|r| r.metadata().name == wep)
        .map(|r| r.metadata().labels.clone());
    assert_eq!(now.first().map(|r| r.metadata().labels.clone()), want);
}
