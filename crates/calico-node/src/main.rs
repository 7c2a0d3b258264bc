//! `calico-node`: thin wiring over the `calico_node` library.
//!
//! - no flag: the agent (start-up, then the reconcile loop that programs
//!   routes and VXLAN; NAT, policy and BGP come with their issues);
//! - `-startup`: start-up only, then exit (as Calico's `calico-node -startup`);
//! - `-felix-live`, `-felix-ready`, `-bird-live`, `-bird-ready`: the probes
//!   Calico's manifests run; they ask the running agent and exit 0 or 1;
//! - `install-cni` (or `-install-cni`): install the CNI plugins and conflist.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use calico_datastore::{Client, ClientError, StoreError};
use calico_node::config::NodeConfig;
use calico_node::{health, install, startup};

/// The log level from the environment: `FELIX_LOGSEVERITYSCREEN`, else
/// `CALICO_LOG_LEVEL`, else `LOG_LEVEL`, else `info` (a
/// FelixConfiguration's `logSeverityScreen` applies once read). A value
/// that is not a level is reported and `info` kept.
fn log_level() -> (calico_log::LevelFilter, Option<String>) {
    for var in ["FELIX_LOGSEVERITYSCREEN", "CALICO_LOG_LEVEL", "LOG_LEVEL"] {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return match calico_log::parse_level(&v) {
                Ok(l) => (l, None),
                Err(e) => (
                    calico_log::LevelFilter::Info,
                    Some(format!("{var}: {e}; using info")),
                ),
            };
        }
    }
    (calico_log::LevelFilter::Info, None)
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn health_addr() -> (String, u16) {
    let host = env("FELIX_HEALTHHOST")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = env("FELIX_HEALTHPORT")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(health::DEFAULT_PORT);
    (host, port)
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_default();
    match arg.as_str() {
        "-felix-live" | "-felix-ready" | "-bird-live" | "-bird-ready" | "-bird6-live"
        | "-bird6-ready" => probes(&std::env::args().skip(1).collect::<Vec<_>>()),
        "install-cni" | "-install-cni" => {
            let cfg = match NodeConfig::from_lookup(env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("calico-node: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let from = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.to_path_buf()))
                .unwrap_or_default();
            match install::install(&from, env, &cfg.nodename) {
                Ok(i) => {
                    for w in &i.warnings {
                        eprintln!("calico-node install-cni: warning: {w}");
                    }
                    for b in &i.binaries {
                        println!("installed {}", b.display());
                    }
                    for f in i.tls.iter().chain(&i.kubeconfig) {
                        println!("wrote {}", f.display());
                    }
                    println!("wrote {}", i.conflist.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("calico-node install-cni: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "" | "-startup" => agent(arg == "-startup"),
        other => {
            eprintln!(
                "calico-node: unknown argument {other:?} (use -startup, -felix-live, -felix-ready, -bird-live, -bird-ready or install-cni)"
            );
            ExitCode::FAILURE
        }
    }
}

/// The probes Calico's manifests run (`-felix-ready -bird-ready`): every
/// flag given is asked of the agent's control socket; the probe fails if
/// any fails, and says which.
fn probes(flags: &[String]) -> ExitCode {
    let socket = calico_node::control::path(env("CALICO_STATE_DIR").as_deref());
    let mut ok = true;
    for flag in flags {
        let path = match flag.as_str() {
            "-felix-live" => "/liveness",
            "-felix-ready" => "/readiness",
            "-bird-live" | "-bird6-live" => "/bgp-liveness",
            "-bird-ready" | "-bird6-ready" => "/bgp-readiness",
            other => {
                eprintln!(
                    "calico-node: unknown probe flag {other:?} (use -felix-live, -felix-ready, -bird-live or -bird-ready)"
                );
                return ExitCode::FAILURE;
            }
        };
        match calico_node::control::ask(&socket, path) {
            Ok(body) => println!("{flag}: {body}"),
            Err(e) => {
                eprintln!("calico-node {flag}: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Raises the soft limit of open files to the hard limit, as the Go runtime
/// does for Calico's calico-node: every socket (BGP sessions, the IPAM
/// service's and control socket's clients, health and metrics) is a file.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            log::warn!("cannot raise the open files limit: {e}");
        }
    }
}

fn agent(startup_only: bool) -> ExitCode {
    let (level, bad_level) = log_level();
    calico_log::init(level, calico_log::Sink::Stderr);
    if let Some(e) = bad_level {
        log::warn!("{e}");
    }
    raise_open_files_limit();
    let cfg = match NodeConfig::from_lookup(env) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let health = health::Health::new();
    if !startup_only {
        let socket = calico_node::control::path(env("CALICO_STATE_DIR").as_deref());
        match calico_node::control::serve(health.clone(), &socket) {
            Ok(()) => log::info!("control socket {}", socket.display()),
            Err(e) => log::warn!("no control socket at {}: {e}", socket.display()),
        }
    }
    let health_on = cfg
        .felix_env
        .get("healthEnabled")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if health_on && !startup_only {
        let (host, port) = health_addr();
        match health::serve(health.clone(), &host, port) {
            Ok(p) => log::info!("health on {host}:{p}"),
            Err(e) => {
                log::error!("cannot serve health on {host}:{port}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ds = match cfg.datastore.clone().resolve() {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Start-up, retried with back-off while the datastore is unreachable:
    // live all along, ready only once registered.
    let mut delay = Duration::from_millis(500);
    let registered = loop {
        let attempt = ds
            .connect()
            .map_err(|e| startup::StartupError::Datastore(ClientError::Store(e)))
            .and_then(|store| startup::run(&cfg, &Client::new(Arc::clone(&store))));
        match attempt {
            Ok(r) => break r,
            Err(startup::StartupError::Datastore(ClientError::Store(
                StoreError::Unavailable { .. },
            ))) if !startup_only => {
                let msg = "datastore unreachable; retrying";
                log::warn!("{msg}");
                health.set_ready(false, msg);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                log::error!("start-up failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    log::info!(
        node = cfg.nodename.as_str();
        "registered node {}: IPv4 {:?}, IPv6 {:?}, VXLAN tunnel {:?}, MTU {}, created pools {:?}",
        cfg.nodename,
        registered.ipv4,
        registered.ipv6,
        registered.vxlan_tunnel,
        registered.mtu,
        registered.created_pools
    );
    if startup_only {
        return ExitCode::SUCCESS;
    }
    // Felix's job from here on: the reconcile loop sets readiness.
    let store = match ds.connect_long_lived() {
        Ok(s) => s,
        Err(e) => {
            log::error!("datastore: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The IPAM service for this host's CNI plugins.
    let sock = env("CALICO_IPAM_SOCKET")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| calico_node::ipam_server::DEFAULT_SOCKET.into());
    if sock != "none" {
        match calico_node::ipam_server::serve(
            std::path::Path::new(&sock),
            store.clone(),
            ds.identity(),
        ) {
            Ok(()) => log::info!("IPAM service on {sock}"),
            Err(e) => log::warn!("no IPAM service on {sock}: {e}"),
        }
    }
    // Health and metrics settings may also come from FelixConfiguration
    // (`default`, `node.<name>`), below the environment.
    let client = Client::new(store.clone());
    let eff = calico_node::felix::settings::read(&client, &cfg.nodename, &cfg.felix_env)
        .map(|(eff, _)| eff)
        .unwrap_or_else(|_| {
            calico_node::felix::settings::merge(&[cfg
                .felix_env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()])
        });
    let felix = &eff.0;
    if !health_on && felix.health_enabled == Some(true) {
        let host = felix
            .health_host
            .as_deref()
            .unwrap_or("127.0.0.1")
            .to_string();
        let port = felix.health_port.unwrap_or(health::DEFAULT_PORT);
        match health::serve(health.clone(), &host, port) {
            Ok(p) => log::info!("health on {host}:{p}"),
            Err(e) => log::error!("cannot serve health on {host}:{port}: {e}"),
        }
    }
    let metrics = Arc::new(calico_node::metrics::Metrics::new(&cfg.nodename));
    if felix.prometheus_metrics_enabled == Some(true) {
        let port = felix
            .prometheus_metrics_port
            .unwrap_or(calico_node::metrics::DEFAULT_PORT);
        let host = env("FELIX_PROMETHEUSMETRICSHOST")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "0.0.0.0".into());
        match health::serve_metrics(metrics.clone(), &host, port) {
            Ok(p) => log::info!("metrics on {host}:{p}/metrics"),
            Err(e) => {
                log::error!("cannot serve metrics on {host}:{port}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let bgp = cfg.backend == calico_node::config::Backend::Bird;
    let mut bgp_views = None;
    if bgp {
        let shared = Arc::new(calico_node::bgp::speaker::Shared::default());
        health.set_bgp(shared.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        bgp_views = Some(tx);
        let me = cfg.nodename.clone();
        let ready = health.clone();
        let spawned = std::thread::Builder::new()
            .name("bgp".into())
            .spawn(move || {
                // Sessions start once Felix's first pass has loaded the
                // nftables tables: a connection made before connection tracking
                // runs in this namespace has its later FIN or RST judged
                // "invalid" and dropped, and would hang half-open.
                let t = std::time::Instant::now();
                while !ready.is_ready() && t.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                calico_node::bgp::run(rx, me, shared)
            });
        if let Err(e) = spawned {
            log::error!("cannot start the BGP speaker: {e}");
        }
    }
    calico_node::engine::run(
        client,
        cfg.nodename.clone(),
        cfg.felix_env.clone(),
        health,
        metrics,
        bgp,
        bgp_views,
    );
    ExitCode::SUCCESS
}
