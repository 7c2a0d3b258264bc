//! The datastore lock as Calico's `calico` plugin honours it: while the
//! ClusterInformation has `datastoreReady: false` (`calicoctl datastore
//! migrate lock`), ADD and DEL are refused (CNI code 11, "try again later")
//! before anything is made or removed; once unlocked they work again.

mod common;

use calico_testutil::require_root;
use common::host::*;
use common::*;
use serde_json::json;

fn local_host(_ns: &str) -> Ds {
    local()
}

fn set_ready(h: &Host, ready: bool) {
    h.ds.apply(&format!(
        "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {{name: default}}\nspec: {{clusterGUID: 0123456789abcdef0123456789abcdef, datastoreReady: {ready}}}\n"
    ));
}

fn assert_refused(out: &Out, when: &str) {
    assert_ne!(out.code, 0, "{when}: should have been refused: {}", out.raw);
    assert_eq!(out.json["code"], json!(11), "{when}: {}", out.raw);
    assert!(
        msg(out).contains("not ready to process requests"),
        "{when}: {}",
        out.raw
    );
}

#[test]
fn a_locked_datastore_refuses_add_and_del() {
    require_root!();
    let h = Host::new(local_host);
    pools(&h);
    let conf = h.conf("1.0.0", json!({}));
    let p = pod("web", "locked");

    set_ready(&h, false);
    let out = h.call("ADD", &p, &conf);
    assert_refused(&out, "ADD while locked");
    h.assert_clean();
    let pod_links = p.ns.exec(&["ip", "-o", "link", "show"]);
    assert!(!pod_links.contains("eth0"), "{pod_links}");

    set_ready(&h, true);
    let out = h.call("ADD", &p, &conf);
    assert_eq!(out.code, 0, "ADD after unlock: {}", out.raw);
    assert_eq!(h.endpoints().len(), 1);

    set_ready(&h, false);
    let out = h.call("DEL", &p, &conf);
    assert_refused(&out, "DEL while locked");
    assert_eq!(
        h.endpoints().len(),
        1,
        "DEL while locked removed the endpoint"
    );

    set_ready(&h, true);
    let out = h.call("DEL", &p, &conf);
    assert_eq!(out.code, 0, "DEL after unlock: {}", out.raw);
    h.assert_clean();
}
