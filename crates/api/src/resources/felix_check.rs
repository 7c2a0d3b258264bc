//! FelixConfiguration validation as Calico's: enumerated fields, durations,
//! ports and ranges; structured fields against Calico's schema.

use super::FelixConfigurationSpec;
use super::config_name;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// FelixConfiguration's enumerated fields and their values as Calico
/// spells them: what `calicoctl` accepts, and what Felix maps any other
/// case of the same word to ([`felix_canonical`]).
/// The fields that are durations (`90s`, `1m30s`); as `FELIX_*` variables
/// Felix reads a bare number in them as seconds.
pub const FELIX_DURATIONS: &[&str] = &[
    "dataplaneWatchdogTimeout",
    "routeRefreshInterval",
    "interfaceRefreshInterval",
    "iptablesRefreshInterval",
    "iptablesPostWriteCheckInterval",
    "iptablesLockTimeout",
    "iptablesLockProbeInterval",
    "ipsetsRefreshInterval",
    "xdpRefreshInterval",
    "netlinkTimeout",
    "reportingInterval",
    "reportingTTL",
    "endpointReportingDelay",
    "usageReportingInitialDelay",
    "usageReportingInterval",
    "bpfKubeProxyMinSyncPeriod",
    "wireguardKeepAlive",
    "nftablesRefreshInterval",
];

pub const FELIX_ENUMERATED: &[(&str, &[&str])] = &[
    ("iptablesBackend", &["Legacy", "NFT", "Auto"]),
    ("chainInsertMode", &["Insert", "Append"]),
    ("defaultEndpointToHostAction", &["Drop", "Return", "Accept"]),
    ("iptablesFilterAllowAction", &["Accept", "Return"]),
    ("iptablesMangleAllowAction", &["Accept", "Return"]),
    ("iptablesFilterDenyAction", &["Drop", "Reject"]),
    (
        "logSeverityFile",
        &["Trace", "Debug", "Info", "Warning", "Error", "Fatal"],
    ),
    (
        "logSeverityScreen",
        &["Trace", "Debug", "Info", "Warning", "Error", "Fatal"],
    ),
    (
        "logSeveritySys",
        &[
            "Trace", "Debug", "Info", "Warning", "Error", "Fatal", "None",
        ],
    ),
    (
        "natOutgoingExclusions",
        &["IPPoolsOnly", "IPPoolsAndHostIPs"],
    ),
    ("bpfLogLevel", &["Off", "Info", "Debug"]),
    (
        "bpfConnectTimeLoadBalancing",
        &["TCP", "Enabled", "Disabled"],
    ),
    ("bpfExternalServiceMode", &["Tunnel", "DSR"]),
    ("routeSource", &["WorkloadIPs", "CalicoIPAM"]),
    ("awsSrcDstCheck", &["DoNothing", "Enable", "Disable"]),
    ("serviceLoopPrevention", &["Drop", "Reject", "Disabled"]),
    ("workloadSourceSpoofing", &["Disabled", "Any"]),
    ("floatingIPs", &["Enabled", "Disabled"]),
    ("nftablesMode", &["Enabled", "Disabled", "Auto"]),
    ("ipForwarding", &["Enabled", "Disabled"]),
    ("bpfAttachType", &["TC", "TCX"]),
    ("bpfConntrackLogLevel", &["Off", "Debug"]),
    ("bpfConntrackMode", &["Auto", "Userspace", "BPFProgram"]),
    ("bpfHostNetworkedNATWithoutCTLB", &["Enabled", "Disabled"]),
    ("bpfJITHardening", &["Auto", "Strict"]),
    ("bpfProfiling", &["Enabled", "Disabled"]),
    ("bpfRedirectToPeer", &["Enabled", "Disabled", "L2Only"]),
    ("flowLogsLocalReporter", &["Disabled", "Enabled"]),
    ("flowLogsPolicyEvaluationMode", &["None", "Continuous"]),
    ("programClusterRoutes", &["Enabled", "Disabled"]),
    ("windowsManageFirewallRules", &["Enabled", "Disabled"]),
    ("nftablesFilterAllowAction", &["Accept", "Return"]),
    ("nftablesMangleAllowAction", &["Accept", "Return"]),
    ("nftablesFilterDenyAction", &["Drop", "Reject"]),
];

/// A range check of an integer field.
fn in_range(errs: &mut Errors, field: &str, value: Option<i64>, lo: i64, hi: i64) {
    if let Some(v) = value
        && !(lo..=hi).contains(&v)
    {
        errs.add(
            format!("spec.{field}"),
            format!("{v} is not in {lo}..={hi}"),
        );
    }
}

/// A list of CIDRs (Calico's `cidrs`).
fn cidrs(errs: &mut Errors, field: &str, value: &Option<serde_json::Value>) {
    let items = value.as_ref().and_then(serde_json::Value::as_array);
    for (i, c) in items.into_iter().flatten().enumerate() {
        if let Some(c) = c.as_str() {
            errs.check(format!("spec.{field}[{i}]"), validate::cidr(c).map(|_| ()));
        }
    }
}

/// Calico's `numorstring.Port`: a port (1-65535) or a range `a:b`.
fn port_or_range(v: &serde_json::Value) -> Result<(), String> {
    let port = |n: u64| (1..=65535).contains(&n);
    let ok = match v {
        serde_json::Value::Number(n) => n.as_u64().is_some_and(port),
        serde_json::Value::String(s) => match s.split_once(':') {
            Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
                (Ok(a), Ok(b)) => port(a) && port(b) && a <= b,
                _ => false,
            },
            None => s.parse::<u64>().is_ok_and(port),
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{v} is not a port (1 to 65535) or a range \"a:b\""))
    }
}

impl FelixConfigurationSpec {
    /// The checks of the fields Calico v3.31 added after calico-rs's first
    /// FelixConfiguration, and of every structured field against Calico's schema.
    fn check_more(&self, errs: &mut Errors) {
        for (field, v) in [
            ("bpfAttachType", &self.bpf_attach_type),
            ("bpfConntrackLogLevel", &self.bpf_conntrack_log_level),
            ("bpfConntrackMode", &self.bpf_conntrack_mode),
            (
                "bpfHostNetworkedNATWithoutCTLB",
                &self.bpf_host_networked_nat_without_ctlb,
            ),
            ("bpfJITHardening", &self.bpf_jit_hardening),
            ("bpfProfiling", &self.bpf_profiling),
            ("bpfRedirectToPeer", &self.bpf_redirect_to_peer),
            ("flowLogsLocalReporter", &self.flow_logs_local_reporter),
            (
                "flowLogsPolicyEvaluationMode",
                &self.flow_logs_policy_evaluation_mode,
            ),
            ("programClusterRoutes", &self.program_cluster_routes),
            (
                "windowsManageFirewallRules",
                &self.windows_manage_firewall_rules,
            ),
            (
                "nftablesFilterAllowAction",
                &self.nftables_filter_allow_action,
            ),
            (
                "nftablesMangleAllowAction",
                &self.nftables_mangle_allow_action,
            ),
            (
                "nftablesFilterDenyAction",
                &self.nftables_filter_deny_action,
            ),
        ] {
            enumerated(errs, field, v);
        }
        for (field, v) in [
            (
                "debugSimulateCalcGraphHangAfter",
                &self.debug_simulate_calc_graph_hang_after,
            ),
            (
                "debugSimulateDataplaneApplyDelay",
                &self.debug_simulate_dataplane_apply_delay,
            ),
            (
                "debugSimulateDataplaneHangAfter",
                &self.debug_simulate_dataplane_hang_after,
            ),
            ("flowLogsFlushInterval", &self.flow_logs_flush_interval),
        ] {
            if let Some(v) = v {
                errs.check(format!("spec.{field}"), validate::duration(v));
            }
        }
        in_range(
            errs,
            "bpfKubeProxyHealthzPort",
            self.bpf_kube_proxy_healthz_port,
            1,
            65535,
        );
        in_range(errs, "debugPort", self.debug_port, 0, 65535);
        in_range(errs, "goGCThreshold", self.go_gc_threshold, -1, i64::MAX);
        in_range(errs, "goMaxProcs", self.go_max_procs, -1, i64::MAX);
        in_range(
            errs,
            "goMemoryLimitMB",
            self.go_memory_limit_mb,
            -1,
            i64::MAX,
        );
        in_range(
            errs,
            "bpfMapSizeConntrackCleanupQueue",
            self.bpf_map_size_conntrack_cleanup_queue,
            1,
            i64::MAX,
        );
        in_range(
            errs,
            "nftablesMarkMask",
            self.nftables_mark_mask,
            0,
            i64::from(u32::MAX),
        );
        cidrs(errs, "bpfDSROptoutCIDRs", &self.bpf_dsr_optout_cidrs);
        cidrs(
            errs,
            "bpfExcludeCIDRsFromNAT",
            &self.bpf_exclude_cidrs_from_nat,
        );
        cidrs(errs, "externalNodesList", &self.external_nodes_list);
        if let Some(v) = &self.nat_port_range {
            errs.check("spec.natPortRange", port_or_range(v));
        }
        if let Some(v) = &self.bpf_psnat_ports {
            errs.check("spec.bpfPSNATPorts", port_or_range(v));
        }
        // Structured fields: held to Calico's schema.
        if let serde_json::Value::Object(m) = serde_json::to_value(self).unwrap_or_default() {
            for (k, v) in m.iter().filter(|(_, v)| v.is_array() || v.is_object()) {
                super::check_schema(
                    "FelixConfiguration",
                    &format!("spec.{k}"),
                    v,
                    &format!("spec.{k}"),
                    errs,
                );
            }
        }
    }
}

/// Felix's reading of `value` for `field`: an enumerated field takes its
/// values in any case (`ACCEPT`, `accept`) and gives back Calico's spelling
/// (`Accept`); `None` when `field` is not enumerated.
pub fn felix_canonical(field: &str, value: &str) -> Option<Result<&'static str, String>> {
    let (_, allowed) = FELIX_ENUMERATED.iter().find(|(f, _)| *f == field)?;
    Some(
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(value.trim()))
            .copied()
            .ok_or_else(|| format!("{value:?} is not one of {}", allowed.join(", "))),
    )
}

/// Checks an enumerated field as `calicoctl` does (Calico's exact spelling).
fn enumerated(errs: &mut Errors, field: &str, value: &Option<String>) {
    if let Some(v) = value
        && let Some((_, allowed)) = FELIX_ENUMERATED.iter().find(|(f, _)| *f == field)
    {
        errs.check(format!("spec.{field}"), validate::one_of(v, allowed));
    }
}

impl SpecImpl for FelixConfigurationSpec {
    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        if !meta.name.is_empty() {
            errs.check("metadata.name", config_name(&meta.name));
        }
        if let Some(v) = self.vxlan_vni
            && !(1..=16_777_215).contains(&v)
        {
            errs.add(
                "spec.vxlanVNI",
                format!("{v} is not a valid VNI (1 to 16777215)"),
            );
        }
        if let Some(v) = &self.dataplane_watchdog_timeout {
            errs.check("spec.dataplaneWatchdogTimeout", validate::duration(v));
        }
        if let Some(v) = &self.route_refresh_interval {
            errs.check("spec.routeRefreshInterval", validate::duration(v));
        }
        if let Some(v) = &self.interface_refresh_interval {
            errs.check("spec.interfaceRefreshInterval", validate::duration(v));
        }
        if let Some(v) = &self.iptables_refresh_interval {
            errs.check("spec.iptablesRefreshInterval", validate::duration(v));
        }
        if let Some(v) = &self.iptables_post_write_check_interval {
            errs.check("spec.iptablesPostWriteCheckInterval", validate::duration(v));
        }
        if let Some(v) = &self.iptables_lock_timeout {
            errs.check("spec.iptablesLockTimeout", validate::duration(v));
        }
        if let Some(v) = &self.iptables_lock_probe_interval {
            errs.check("spec.iptablesLockProbeInterval", validate::duration(v));
        }
        if let Some(v) = &self.ipsets_refresh_interval {
            errs.check("spec.ipsetsRefreshInterval", validate::duration(v));
        }
        enumerated(errs, "iptablesBackend", &self.iptables_backend);
        if let Some(v) = &self.xdp_refresh_interval {
            errs.check("spec.xdpRefreshInterval", validate::duration(v));
        }
        if let Some(v) = &self.netlink_timeout {
            errs.check("spec.netlinkTimeout", validate::duration(v));
        }
        enumerated(errs, "chainInsertMode", &self.chain_insert_mode);
        enumerated(
            errs,
            "defaultEndpointToHostAction",
            &self.default_endpoint_to_host_action,
        );
        enumerated(
            errs,
            "iptablesFilterAllowAction",
            &self.iptables_filter_allow_action,
        );
        enumerated(
            errs,
            "iptablesMangleAllowAction",
            &self.iptables_mangle_allow_action,
        );
        enumerated(
            errs,
            "iptablesFilterDenyAction",
            &self.iptables_filter_deny_action,
        );
        enumerated(errs, "logSeverityFile", &self.log_severity_file);
        enumerated(errs, "logSeverityScreen", &self.log_severity_screen);
        enumerated(errs, "logSeveritySys", &self.log_severity_sys);
        if self.vxlan_port == Some(0) {
            errs.add("spec.vxlanPort", "port 0 is not valid: use 1 to 65535");
        }
        if let Some(v) = &self.reporting_interval {
            errs.check("spec.reportingInterval", validate::duration(v));
        }
        if let Some(v) = &self.reporting_ttl {
            errs.check("spec.reportingTTL", validate::duration(v));
        }
        if let Some(v) = &self.endpoint_reporting_delay {
            errs.check("spec.endpointReportingDelay", validate::duration(v));
        }
        if self.health_port == Some(0) {
            errs.add("spec.healthPort", "port 0 is not valid: use 1 to 65535");
        }
        if self.prometheus_metrics_port == Some(0) {
            errs.add(
                "spec.prometheusMetricsPort",
                "port 0 is not valid: use 1 to 65535",
            );
        }
        if let Some(v) = &self.usage_reporting_initial_delay {
            errs.check("spec.usageReportingInitialDelay", validate::duration(v));
        }
        if let Some(v) = &self.usage_reporting_interval {
            errs.check("spec.usageReportingInterval", validate::duration(v));
        }
        enumerated(errs, "natOutgoingExclusions", &self.nat_outgoing_exclusions);
        enumerated(errs, "bpfLogLevel", &self.bpf_log_level);
        enumerated(
            errs,
            "bpfConnectTimeLoadBalancing",
            &self.bpf_connect_time_load_balancing,
        );
        enumerated(
            errs,
            "bpfExternalServiceMode",
            &self.bpf_external_service_mode,
        );
        if let Some(v) = &self.bpf_kube_proxy_min_sync_period {
            errs.check("spec.bpfKubeProxyMinSyncPeriod", validate::duration(v));
        }
        enumerated(errs, "routeSource", &self.route_source);
        if self.wireguard_listening_port == Some(0) {
            errs.add(
                "spec.wireguardListeningPort",
                "port 0 is not valid: use 1 to 65535",
            );
        }
        if self.wireguard_listening_port_v6 == Some(0) {
            errs.add(
                "spec.wireguardListeningPortV6",
                "port 0 is not valid: use 1 to 65535",
            );
        }
        if let Some(v) = &self.wireguard_keep_alive {
            errs.check("spec.wireguardKeepAlive", validate::duration(v));
        }
        enumerated(errs, "awsSrcDstCheck", &self.aws_src_dst_check);
        enumerated(errs, "serviceLoopPrevention", &self.service_loop_prevention);
        enumerated(
            errs,
            "workloadSourceSpoofing",
            &self.workload_source_spoofing,
        );
        enumerated(errs, "floatingIPs", &self.floating_i_ps);
        enumerated(errs, "nftablesMode", &self.nftables_mode);
        if let Some(v) = &self.nftables_refresh_interval {
            errs.check("spec.nftablesRefreshInterval", validate::duration(v));
        }
        enumerated(errs, "ipForwarding", &self.ip_forwarding);
        self.check_more(errs);
    }
}
