//! The kube-rs client over TLS with a bearer token, against the fake API
//! server serving HTTPS (a test CA from `calico_testutil::make_pki`):
//! - a kubeconfig with `certificate-authority-data` or
//!   `certificate-authority` and a token → namespaces become `kns.`
//!   profiles in a real etcd;
//! - a wrong CA → a TLS error naming the CA; the binary exits with it and
//!   writes nothing to etcd;
//! - a wrong token → 401, named as refused credentials, also by the binary;
//! - the in-cluster loader reads `token` and `ca.crt` from a directory and
//!   `KUBERNETES_SERVICE_HOST`/`_PORT`, and talks to the HTTPS server.

mod etcd;
mod fake_api;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use calico_api::Kind;
use calico_datastore::Client;
use calico_kube_controllers::controllers::{ProfileController, ProfileSource};
use calico_kube_controllers::kube::client::KubeClient;
use calico_kube_controllers::kube::{self, Collection, KubeApi, KubeError, connect};
use calico_testutil::{TlsFiles, make_pki};
use etcd::etcd_client;
use fake_api::{Ca, FakeApi, Options, kube_client};
use serde_json::json;

const TOKEN: &str = "s3cr3t-service-account-token";

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn https_api(server: &TlsFiles) -> FakeApi {
    let api = FakeApi::start_with(Options {
        tls: Some((server.cert.clone(), server.key.clone())),
        token: Some(TOKEN.into()),
    });
    for (i, team) in ["red", "blue", "green"].iter().enumerate() {
        api.put(
            "/api/v1/namespaces",
            json!({"kind": "Namespace", "apiVersion": "v1",
                   "metadata": {"name": format!("ns{i}"), "labels": {"team": team}}}),
        );
    }
    api
}

fn profile_names(c: &Client) -> BTreeSet<String> {
    ok(c.list(Kind::Profile, None))
        .0
        .iter()
        .map(|r| r.metadata().name.clone())
        .collect()
}

/// Runs the namespace controller over `http` until the three profiles are
/// in etcd.
fn namespaces_synced(http: KubeClient, c: &Client) {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut ctl = ProfileController::new(ProfileSource::Namespace);
            kube::run(
                &http,
                Collection::Namespaces,
                2,
                &|| stop.load(Ordering::Relaxed),
                &mut |r, ch| {
                    ok(ctl.on_change(&c, r.cache(), ch));
                },
            )
        })
    };
    let want: BTreeSet<String> = ["kns.ns0", "kns.ns1", "kns.ns2"].map(String::from).into();
    let end = Instant::now() + Duration::from_secs(15);
    while profile_names(c) != want {
        assert!(Instant::now() < end, "profiles: {:?}", profile_names(c));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = worker.join();
}

#[test]
fn kubeconfig_with_ca_and_token_syncs_namespaces() {
    let dir = ok(tempfile::tempdir());
    let (server, _) = make_pki(dir.path());
    let api = https_api(&server);
    for (i, ca) in [Ca::Data(&server.ca), Ca::File(&server.ca)]
        .into_iter()
        .enumerate()
    {
        let (_etcd, c) = etcd_client();
        let kc = api.write_kubeconfig(&dir.path().join(format!("kc{i}")), ca, Some(TOKEN));
        namespaces_synced(kube_client(&kc), &c);
    }
    assert_eq!(api.hits("401"), 0);
}

/// Runs the binary with `kubeconfig` and a real etcd: its exit status,
/// stderr, and the number of keys then in etcd.
fn run_binary(kubeconfig: &Path) -> (bool, String, usize) {
    let (etcd, c) = etcd_client();
    let mut child = ok(Command::new(env!("CARGO_BIN_EXE_calico-kube-controllers"))
        .env("KUBECONFIG", kubeconfig)
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", etcd.endpoint())
        .env("ENABLED_CONTROLLERS", "namespace")
        .env("LOG_LEVEL", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn());
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = ok(child.try_wait()) {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the binary did not exit on a permanent error");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let keys = ok(c.store().list("/")).0.len();
    (status.success(), err, keys)
}

#[test]
fn wrong_ca_is_a_tls_error_and_nothing_is_written() {
    let dir = ok(tempfile::tempdir());
    let other = ok(tempfile::tempdir());
    let (server, _) = make_pki(dir.path());
    let (wrong, _) = make_pki(other.path());
    let api = https_api(&server);
    let kc = api.write_kubeconfig(&dir.path().join("kc"), Ca::Data(&wrong.ca), Some(TOKEN));
    match kube_client(&kc).list(Collection::Namespaces, 10, None) {
        Err(KubeError::Tls(m)) => assert!(m.contains("certificate") && m.contains("CA"), "{m}"),
        other => panic!("not a TLS error: {other:?}"),
    }
    let (success, err, keys) = run_binary(&kc);
    assert!(!success);
    assert!(err.contains("TLS") && err.contains("certificate"), "{err}");
    assert_eq!(keys, 0, "written to etcd");
}

#[test]
fn wrong_token_is_401_named() {
    let dir = ok(tempfile::tempdir());
    let (server, _) = make_pki(dir.path());
    let api = https_api(&server);
    let kc = api.write_kubeconfig(&dir.path().join("kc"), Ca::File(&server.ca), Some("wrong"));
    match kube_client(&kc).list(Collection::Namespaces, 10, None) {
        Err(KubeError::Unauthorized(m)) => assert!(m.contains("token"), "{m}"),
        other => panic!("not a 401: {other:?}"),
    }
    let (success, err, keys) = run_binary(&kc);
    assert!(!success);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert_eq!(keys, 0, "written to etcd");
    assert!(api.hits("401") >= 2);
}

#[test]
fn in_cluster_service_account_from_a_directory() {
    let dir = ok(tempfile::tempdir());
    let (server, _) = make_pki(dir.path());
    let api = https_api(&server);
    let sa = ok(tempfile::tempdir());
    ok(std::fs::write(
        sa.path().join("token"),
        format!("{TOKEN}\n"),
    ));
    ok(std::fs::copy(&server.ca, sa.path().join("ca.crt")));
    let port = api.addr.rsplit(':').next().unwrap_or("").to_string();
    let env = |k: &str| match k {
        "KUBERNETES_SERVICE_HOST" => Some("127.0.0.1".to_string()),
        "KUBERNETES_SERVICE_PORT" => Some(port.clone()),
        _ => None,
    };
    // No KUBECONFIG: the loader falls back to the service account.
    let cfg = ok(connect::load(&env, sa.path()));
    assert_eq!(cfg.cluster_url.to_string(), format!("{}/", api.url()));
    let (_etcd, c) = etcd_client();
    namespaces_synced(ok(KubeClient::new(cfg)), &c);
    // A token file without white space is handed to kube-rs as a file
    // (re-read as it is rotated).
    ok(std::fs::write(sa.path().join("token"), TOKEN));
    let http = ok(KubeClient::new(ok(connect::load(&env, sa.path()))));
    match ok(http.list(Collection::Namespaces, 10, None)) {
        calico_kube_controllers::reflector::Event::Page { items, .. } => assert_eq!(items.len(), 3),
        e => panic!("{e:?}"),
    }
    assert_eq!(api.hits("401"), 0);
}
