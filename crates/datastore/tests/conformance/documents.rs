//! Conformance of the document-level client on each backend: Tiers and the
//! rules that tie policies to them, and stored Kubernetes NetworkPolicies.

use calico_api::{Document, DocumentKey, Kind, ResourceKey, decode_numbered_documents};
use calico_datastore::client::WriteOp;
use calico_datastore::{Client, ClientError};

use super::{Fixture, resource};

fn document(yaml: &str) -> Document {
    decode_numbered_documents(yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
        .1
        .unwrap_or_else(|e| panic!("{e}"))
}

fn knp(ns: Option<&str>, name: &str) -> Document {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    document(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}{ns}}}\nspec:\n  podSelector: {{matchLabels: {{app: {name}}}}}\n  ingress:\n  - ports: [{{port: 80}}]\n"
    ))
}

fn err(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    r.err().map(|e| e.to_string()).unwrap_or_default()
}

pub fn tiers_and_policy_rules(f: Fixture) {
    let c = Client::new(f.store.clone());
    let policy = |tier: &str| {
        resource(&format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {tier}.p}}\nspec: {{tier: {tier}, selector: all()}}\n"
        ))
    };
    // A policy in a tier that does not exist is refused, and nothing is written.
    let e = err(c.create(policy("security")));
    assert!(
        e.contains(
            "GlobalNetworkPolicy(security.p): spec.tier: resource does not exist: Tier(security)"
        ),
        "{e}"
    );
    assert!(
        c.list(Kind::GlobalNetworkPolicy, None)
            .map(|l| l.0.is_empty())
            .unwrap_or(false)
    );
    // Calico's defaults are stored: order 1 000 000 and Deny.
    let tier = c
        .create(resource(
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let json = tier.to_json();
    assert_eq!(json["spec"]["order"], serde_json::json!(1000000));
    assert_eq!(json["spec"]["defaultAction"], "Deny");
    c.create(policy("security"))
        .unwrap_or_else(|e| panic!("{e}"));
    // A tier that holds a policy cannot be deleted; nor can the default tier.
    let key = tier.key();
    let e = err(c.delete(&key, None));
    assert!(
        e.contains("cannot delete a non-empty tier: GlobalNetworkPolicy(security.p)"),
        "{e}"
    );
    let default = ResourceKey {
        kind: Kind::Tier,
        namespace: None,
        name: "default".into(),
    };
    assert!(err(c.delete(&default, None)).contains("default tier cannot be deleted"));
    c.delete(&policy("security").key(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    c.delete(&key, None).unwrap_or_else(|e| panic!("{e}"));
    // The default tier must keep its order.
    let e = err(c.create(resource(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\nspec: {order: 5}\n",
    )));
    assert!(e.contains("spec.order"), "{e}");
    // A tier and its policy in one batch: the tier is written first.
    let batch: Vec<Document> = vec![
        resource("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: platform}\nspec: {order: 10}\n").into(),
        policy("platform").into(),
    ];
    let calico: Vec<_> = batch
        .iter()
        .filter_map(|d| match d {
            Document::Calico(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    for r in &calico {
        c.check_cluster_rules(r, &calico)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        c.write_prepared(WriteOp::Create, batch)
            .map(|w| w.len())
            .ok(),
        Some(2)
    );
}

pub fn kubernetes_network_policies(f: Fixture) {
    let c = Client::new(f.store.clone());
    let mut written = Vec::new();
    for d in [
        knp(None, "web"),
        knp(Some("shop"), "web"),
        knp(Some("shop"), "db"),
    ] {
        let d = Client::prepare_document(d).unwrap_or_else(|e| panic!("{e}"));
        written.extend(
            c.write_prepared(WriteOp::Apply, vec![d])
                .unwrap_or_else(|(_, e)| panic!("{e}")),
        );
    }
    // Stored under their own root: no Calico NetworkPolicy appears.
    assert!(
        c.list(Kind::NetworkPolicy, None)
            .map(|l| l.0.is_empty())
            .unwrap_or(false)
    );
    let (all, _) = c
        .list_k8s_network_policies(None)
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<(String, String)> = all
        .iter()
        .map(|n| (n.namespace().to_string(), n.metadata.name.clone()))
        .collect();
    assert_eq!(
        names,
        [("default", "web"), ("shop", "db"), ("shop", "web")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(
        all.iter()
            .all(|n| n.metadata.resource_version.is_some() && n.metadata.uid.is_some())
    );
    let (shop, _) = c
        .list_k8s_network_policies(Some("shop"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shop.len(), 2);
    assert_eq!(shop[1].spec.ingress.len(), 1);

    let key = DocumentKey::KubernetesNetworkPolicy {
        namespace: "shop".into(),
        name: "web".into(),
    };
    let got = c.get_document(&key).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.key(), key);
    // Create of an existing policy, a stale resourceVersion and a missing one are refused.
    let again =
        Client::prepare_document(knp(Some("shop"), "web")).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        c.write_prepared(WriteOp::Create, vec![again]),
        Err((0, ClientError::AlreadyExists(_)))
    ));
    let e = err(c.delete_document(&key, Some("1")));
    assert!(
        e.contains("update conflict: NetworkPolicy.networking.k8s.io(shop/web)"),
        "{e}"
    );
    c.delete_document(&key, got.metadata().resource_version.as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    let e = err(c.get_document(&key));
    assert_eq!(
        e,
        "resource does not exist: NetworkPolicy.networking.k8s.io(shop/web)"
    );
    // Invalid policies are refused before any write.
    let mut bad = knp(Some("shop"), "bad");
    if let Document::KubernetesNetworkPolicy(np) = &mut bad {
        np.spec.policy_types = vec!["Sideways".into()];
    }
    assert!(err(Client::prepare_document(bad)).contains("spec.policyTypes[0]"));
}
