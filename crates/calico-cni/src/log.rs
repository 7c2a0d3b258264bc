//! The plugins' log: Calico's line format (`calico_log`) appended to
//! `log_file_path` (default /var/log/calico/cni/cni.log) at the config's
//! `log_level` (default info; `none` for nothing), every line carrying the
//! container, namespace and pod as fields. CNI plugins must never write
//! logs to stdout (it carries the result); lines that cannot be written
//! are dropped.

use cni_spec::config::NetConf;
use cni_spec::env::Env;

/// Calico's default CNI log file.
pub const DEFAULT_LOG_FILE: &str = "/var/log/calico/cni/cni.log";

/// Starts this process's log. A `log_level` that is not a level logs at
/// info, and says so.
pub fn init(conf: &NetConf, plugin: &str, env: &Env) {
    let (level, bad) = match conf.log_level.as_deref() {
        None => (calico_log::LevelFilter::Info, None),
        Some(l) => match calico_log::parse_level(l) {
            Ok(level) => (level, None),
            Err(e) => (calico_log::LevelFilter::Info, Some(e)),
        },
    };
    if level == calico_log::LevelFilter::Off {
        return;
    }
    let path = conf
        .log_file_path
        .clone()
        .unwrap_or_else(|| DEFAULT_LOG_FILE.to_string());
    calico_log::init(level, calico_log::Sink::File(path.into()));
    let k8s = env.k8s_args();
    let mut fields = vec![
        ("Plugin", plugin),
        ("ContainerID", env.container_id.as_str()),
    ];
    if let Some(ns) = k8s.namespace.as_deref() {
        fields.push(("Namespace", ns));
    }
    if let Some(pod) = k8s.pod_name.as_deref() {
        fields.push(("Pod", pod));
    }
    calico_log::set_context(&fields);
    if let Some(e) = bad {
        log::warn!("log_level: {e}; logging at info");
    }
}
