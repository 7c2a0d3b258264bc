//! calicoctl's datastore when etcd endpoints are given without a datastore
//! type (environment or `CalicoAPIConfig`): a real etcd, as Calico's
//! calicoctl (default type etcdv3), never the local file.

use std::path::Path;
use std::process::{Command, Stdio};

use calico_testutil::EtcdServer;

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: choice}\nspec: {cidr: 10.65.0.0/24}\n";

/// calicoctl with only `env` of the datastore settings; `DATASTORE_PATH`
/// names a file of the test's, where the local store would be (so a wrong
/// choice shows without touching the host's store).
fn calicoctl(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
    for k in [
        "DATASTORE_TYPE",
        "ETCD_ENDPOINTS",
        "ETCD_KEY_FILE",
        "ETCD_CERT_FILE",
        "ETCD_CA_CERT_FILE",
    ] {
        cmd.env_remove(k).env_remove(format!("CALICO_{k}"));
    }
    cmd.env("DATASTORE_PATH", dir.join("local.db"))
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run calicoctl: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn pool_keys(etcd: &EtcdServer) -> String {
    etcd.etcdctl(&["get", "--prefix", "--keys-only", "/calico/resources/v3/"])
        .unwrap_or_else(|e| panic!("etcdctl: {e}"))
}

#[test]
fn etcd_endpoints_without_a_datastore_type_mean_etcd() {
    let etcd = EtcdServer::start();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pool = dir.path().join("pool.yaml");
    std::fs::write(&pool, POOL).unwrap_or_else(|e| panic!("{e}"));
    let endpoint = etcd.endpoint();

    // The environment, as calico-etcd.yaml gives it: ETCD_ENDPOINTS only.
    let env = [("ETCD_ENDPOINTS", endpoint.as_str())];
    let (ok, out) = calicoctl(dir.path(), &env, &["apply", "-f", "pool.yaml"]);
    assert!(ok, "{out}");
    let keys = pool_keys(&etcd);
    assert!(keys.contains("ippools/choice"), "not in etcd: {keys:?}");
    assert!(
        !dir.path().join("local.db").exists(),
        "calicoctl opened the local store"
    );

    // A CalicoAPIConfig with etcdEndpoints and no datastoreType.
    let cfg = dir.path().join("calicoctl.cfg");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  etcdEndpoints: {endpoint}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (ok, out) = calicoctl(
        dir.path(),
        &[],
        &[
            "get",
            "ippool",
            "choice",
            "-o",
            "yaml",
            "--config",
            "calicoctl.cfg",
        ],
    );
    assert!(ok && out.contains("10.65.0.0/24"), "{out}");
    assert!(!dir.path().join("local.db").exists());

    // An explicit type still wins.
    let (ok, out) = calicoctl(
        dir.path(),
        &[("ETCD_ENDPOINTS", &endpoint), ("DATASTORE_TYPE", "local")],
        &["get", "ippool", "choice"],
    );
    assert!(!ok, "the local store has no such pool: {out}");
}
