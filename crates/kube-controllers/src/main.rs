//! `calico-kube-controllers`: wiring only. Reads the settings
//! (`ENABLED_CONTROLLERS`, `LOG_LEVEL`, the datastore's `DATASTORE_TYPE` /
//! `ETCD_*`, and `K8S_API_ENDPOINT`, a plain `http://host:port` of the
//! Kubernetes API), takes the Lease `calico-kube-controllers` (in
//! `POD_NAMESPACE`, as `HOSTNAME`) before any write, writes the status file
//! `/status/status.json` (`check-status -r`/`-l`), then runs one list/watch
//! loop per enabled controller and the node controller's periodic pass.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use calico_datastore::{Client, DatastoreConfig};
use calico_kube_controllers::config::{Config, Controller};
use calico_kube_controllers::controllers;
use calico_kube_controllers::kube::{self, HttpApi};
use calico_kube_controllers::node::NodeController;
use calico_kube_controllers::reflector::{Change, Reflector};
use calico_kube_controllers::status::{self, DEFAULT_STATUS_FILE, Status};
use calico_kube_controllers::sync;

type Set = Arc<Mutex<BTreeSet<(String, String)>>>;

/// What a controller does with its reflector after a change.
type OnChange = Box<dyn FnMut(&Reflector, &[Change]) + Send>;

fn write_status(s: &Status, path: &std::path::Path) {
    if let Err(e) = s.write(path) {
        log::warn!("status file {}: {e}", path.display());
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Waits until this replica holds the Lease `<POD_NAMESPACE>/calico-kube-controllers`,
/// then renews it in the background; losing it ends the process (a restart
/// resyncs from scratch), so two replicas never write at once.
fn lead(api: &HttpApi) -> anyhow::Result<()> {
    let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "kube-system".into());
    let me = std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid-{}", std::process::id()));
    let d = LEASE_DURATION;
    loop {
        match kube::elect(api, &ns, LEASE_NAME, &me, d, now_secs()) {
            Ok(true) => break,
            Ok(false) => log::info!("another replica holds the lease; waiting"),
            Err(e) => log::warn!("lease: {e}"),
        }
        std::thread::sleep(d / 3);
    }
    log::info!("leading as {me}");
    let api = api.clone();
    std::thread::spawn(move || {
        let mut last = Instant::now();
        loop {
            std::thread::sleep(d / 3);
            match kube::elect(&api, &ns, LEASE_NAME, &me, d, now_secs()) {
                Ok(true) => last = Instant::now(),
                Ok(false) => {
                    log::error!("lost the lease; exiting");
                    std::process::exit(1);
                }
                Err(e) if last.elapsed() < d * 2 / 3 => log::warn!("lease renewal: {e}"),
                Err(e) => {
                    log::error!("lease not renewed in time ({e}); exiting");
                    std::process::exit(1);
                }
            }
        }
    });
    Ok(())
}

const LEASE_NAME: &str = "calico-kube-controllers";
const LEASE_DURATION: Duration = Duration::from_secs(15);

fn main() -> anyhow::Result<()> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok())?;
    let level = calico_log::parse_level(&cfg.log_level).map_err(anyhow::Error::msg)?;
    calico_log::init(level, calico_log::Sink::Stderr);
    let store = DatastoreConfig::from_env()
        .context("datastore settings")?
        .connect_long_lived()
        .context("connecting to the datastore")?;
    let client = Client::new(store);
    let endpoint = std::env::var("K8S_API_ENDPOINT").unwrap_or_default();
    let Some(addr) = endpoint.strip_prefix("http://") else {
        bail!("K8S_API_ENDPOINT must be http://host:port (this build has no TLS client)");
    };
    let api = HttpApi {
        addr: addr.trim_end_matches('/').to_string(),
    };
    let status_path = std::path::PathBuf::from(DEFAULT_STATUS_FILE);
    let mut status = Status::default();
    status.set(status::DATASTORE, true, "");
    status.set(status::KUBE_API, false, "waiting for the lease");
    write_status(&status, &status_path);
    lead(&api)?;
    status.set(status::KUBE_API, true, "");
    write_status(&status, &status_path);
    let never = || false;
    let mut threads = Vec::new();
    let spawn = |path: &'static str, mut f: OnChange| {
        let api = api.clone();
        std::thread::spawn(move || kube::run(&api, path, 500, &never, &mut *f))
    };
    let report = |what: &str, r: Result<sync::Stats, calico_datastore::ClientError>| match r {
        Ok(s) if s.wrote() => log::info!("{what}: {s:?}"),
        Ok(_) => {}
        Err(e) => log::error!("{what}: {e}"),
    };
    for c in &cfg.enabled {
        let client = client.clone();
        match c {
            Controller::Namespace => threads.push(spawn(
                "/api/v1/namespaces",
                Box::new(move |r, _| {
                    let d = controllers::namespace_profiles(r.cache());
                    report("namespace", sync::sync_profiles(&client, "kns.", d));
                }),
            )),
            Controller::ServiceAccount => threads.push(spawn(
                "/api/v1/serviceaccounts",
                Box::new(move |r, _| {
                    let d = controllers::service_account_profiles(r.cache());
                    report("serviceaccount", sync::sync_profiles(&client, "ksa.", d));
                }),
            )),
            Controller::Policy => threads.push(spawn(
                "/apis/networking.k8s.io/v1/networkpolicies",
                Box::new(move |r, _| {
                    let (good, bad) = controllers::network_policies(r.cache());
                    for e in bad {
                        log::warn!("{e}");
                    }
                    report("policy", sync::sync_network_policies(&client, good));
                }),
            )),
            Controller::WorkloadEndpoint => threads.push(spawn(
                "/api/v1/pods",
                Box::new(move |r, ch| {
                    report(
                        "workloadendpoint",
                        controllers::endpoint_pass(&client, r.cache(), ch),
                    );
                }),
            )),
            Controller::Node => {
                let nodes: Set = Arc::default();
                let pods: Set = Arc::default();
                for (path, set) in [
                    ("/api/v1/nodes", nodes.clone()),
                    ("/api/v1/pods", pods.clone()),
                ] {
                    threads.push(spawn(
                        path,
                        Box::new(move |r, _| {
                            *set.lock().unwrap_or_else(|e| e.into_inner()) =
                                r.cache().keys().cloned().collect();
                        }),
                    ));
                }
                threads.push(std::thread::spawn(move || {
                    let mut ctl = NodeController::new(Duration::from_secs(15 * 60));
                    let mut first = true;
                    loop {
                        std::thread::sleep(Duration::from_secs(if first { 30 } else { 300 }));
                        let n: BTreeSet<String> = nodes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .iter()
                            .map(|(_, name)| name.clone())
                            .collect();
                        let p = pods.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if n.is_empty() {
                            continue; // not synced yet: never clean against nothing
                        }
                        match ctl.pass(&client, &n, &p, Instant::now(), first) {
                            Ok(r) => log::info!("node pass (dry run {first}): {r:?}"),
                            Err(e) => log::error!("node pass: {e}"),
                        }
                        first = false;
                    }
                }));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
