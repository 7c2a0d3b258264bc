//! `calico-kube-controllers`: wiring only. Reads the settings
//! (`ENABLED_CONTROLLERS`, `LOG_LEVEL`, the datastore's `DATASTORE_TYPE` /
//! `ETCD_*`, the Kubernetes client's `KUBECONFIG` or in-cluster service
//! account, `K8S_API_ENDPOINT` to override the server URL), checks that the
//! Kubernetes API answers with these credentials (a wrong CA, a refused
//! token, missing RBAC: the process exits naming the cause, before it
//! connects to the datastore), takes the Lease `calico-kube-controllers`
//! (in `POD_NAMESPACE`, as `HOSTNAME`) before any write, writes the status
//! file `/status/status.json` (`check-status -r`/`-l`), then runs one
//! list/watch loop per enabled controller and the node controller's
//! periodic pass.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use calico_datastore::{Client, DatastoreConfig};
use calico_kube_controllers::config::{Config, Controller};
use calico_kube_controllers::controllers;
use calico_kube_controllers::controllers::{PolicyController, ProfileController, ProfileSource};
use calico_kube_controllers::kube;
use calico_kube_controllers::kube::client::KubeClient;
use calico_kube_controllers::kube::connect::{self, SERVICE_ACCOUNT_DIR};
use calico_kube_controllers::kube::{Collection, LeaseApi};
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
fn lead(api: &KubeClient, ns: String) -> anyhow::Result<()> {
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

/// Waits until the Kubernetes API answers (a read of the Lease): a
/// permanent error (settings, TLS, 401, 403) ends the process at once,
/// others are retried with back-off.
fn reach(api: &KubeClient, ns: &str) -> anyhow::Result<()> {
    let mut wait = Duration::from_secs(1);
    loop {
        match api.get_lease(ns, LEASE_NAME) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_permanent() => {
                return Err(e).context("cannot use the kubernetes api server; not starting");
            }
            Err(e) => log::warn!("kubernetes api server not reachable yet: {e}"),
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

fn main() -> anyhow::Result<()> {
    let cfg = Config::from_lookup(|k| std::env::var(k).ok())?;
    let level = calico_log::parse_level(&cfg.log_level).map_err(anyhow::Error::msg)?;
    calico_log::init(level, calico_log::Sink::Stderr);
    let kube_config = connect::load(
        &|k| std::env::var(k).ok(),
        std::path::Path::new(SERVICE_ACCOUNT_DIR),
    )?;
    let api = KubeClient::new(kube_config)?;
    let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "kube-system".into());
    reach(&api, &ns)?;
    let store = DatastoreConfig::from_env()
        .context("datastore settings")?
        .connect_long_lived()
        .context("connecting to the datastore")?;
    let client = Client::new(store);
    let status_path = std::path::PathBuf::from(DEFAULT_STATUS_FILE);
    let mut status = Status::default();
    status.set(status::DATASTORE, true, "");
    status.set(status::KUBE_API, false, "waiting for the lease");
    write_status(&status, &status_path);
    lead(&api, ns)?;
    status.set(status::KUBE_API, true, "");
    write_status(&status, &status_path);
    let never = || false;
    let mut threads = Vec::new();
    let spawn = |c: Collection, mut f: OnChange| {
        let api = api.clone();
        std::thread::spawn(move || kube::run(&api, c, 500, &never, &mut *f))
    };
    let report = |what: &str, r: Result<sync::Stats, calico_datastore::ClientError>| match r {
        Ok(s) if s.wrote() => log::info!("{what}: {s:?}"),
        Ok(_) => {}
        Err(e) => log::error!("{what}: {e}"),
    };
    for &c in &cfg.enabled {
        let client = client.clone();
        match c {
            Controller::Namespace | Controller::ServiceAccount => {
                let (source, coll) = match c {
                    Controller::Namespace => (ProfileSource::Namespace, Collection::Namespaces),
                    _ => (ProfileSource::ServiceAccount, Collection::ServiceAccounts),
                };
                let mut ctl = ProfileController::new(source);
                threads.push(spawn(
                    coll,
                    Box::new(move |r, ch| {
                        report(c.name(), ctl.on_change(&client, r.cache(), ch));
                    }),
                ))
            }
            Controller::Policy => {
                let mut ctl = PolicyController::default();
                threads.push(spawn(
                    Collection::NetworkPolicies,
                    Box::new(move |r, ch| {
                        report("policy", ctl.on_change(&client, r.cache(), ch));
                    }),
                ))
            }
            Controller::WorkloadEndpoint => threads.push(spawn(
                Collection::Pods,
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
                for (coll, set) in [
                    (Collection::Nodes, nodes.clone()),
                    (Collection::Pods, pods.clone()),
                ] {
                    threads.push(spawn(
                        coll,
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
