//! FelixConfiguration: the dataplane agent's settings, global (`default`) or
//! per node (`node.<name>`). Generated field list follows Calico's spec names;
//! list-valued and structured fields are kept as given.

use serde::{Deserialize, Serialize};

use super::config_name;
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// Spec of a FelixConfiguration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FelixConfigurationSpec {
    /// Felix `useInternalDataplaneDriver`.
    #[serde(
        default,
        rename = "useInternalDataplaneDriver",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_internal_dataplane_driver: Option<bool>,
    /// Felix `dataplaneDriver`.
    #[serde(
        default,
        rename = "dataplaneDriver",
        skip_serializing_if = "Option::is_none"
    )]
    pub dataplane_driver: Option<String>,
    /// Felix `dataplaneWatchdogTimeout`.
    #[serde(
        default,
        rename = "dataplaneWatchdogTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub dataplane_watchdog_timeout: Option<String>,
    /// Felix `ipv6Support`.
    #[serde(
        default,
        rename = "ipv6Support",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_support: Option<bool>,
    /// Felix `routeRefreshInterval`.
    #[serde(
        default,
        rename = "routeRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_refresh_interval: Option<String>,
    /// Felix `interfaceRefreshInterval`.
    #[serde(
        default,
        rename = "interfaceRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_refresh_interval: Option<String>,
    /// Felix `iptablesRefreshInterval`.
    #[serde(
        default,
        rename = "iptablesRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_refresh_interval: Option<String>,
    /// Felix `iptablesPostWriteCheckInterval`.
    #[serde(
        default,
        rename = "iptablesPostWriteCheckInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_post_write_check_interval: Option<String>,
    /// Felix `iptablesLockTimeout`.
    #[serde(
        default,
        rename = "iptablesLockTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_lock_timeout: Option<String>,
    /// Felix `iptablesLockProbeInterval`.
    #[serde(
        default,
        rename = "iptablesLockProbeInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_lock_probe_interval: Option<String>,
    /// Felix `featureDetectOverride`.
    #[serde(
        default,
        rename = "featureDetectOverride",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_detect_override: Option<String>,
    /// Felix `featureGates`.
    #[serde(
        default,
        rename = "featureGates",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_gates: Option<String>,
    /// Felix `ipsetsRefreshInterval`.
    #[serde(
        default,
        rename = "ipsetsRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipsets_refresh_interval: Option<String>,
    /// Felix `maxIpsetSize`.
    #[serde(
        default,
        rename = "maxIpsetSize",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_ipset_size: Option<i64>,
    /// Felix `iptablesBackend`.
    #[serde(
        default,
        rename = "iptablesBackend",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_backend: Option<String>,
    /// Felix `xdpRefreshInterval`.
    #[serde(
        default,
        rename = "xdpRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub xdp_refresh_interval: Option<String>,
    /// Felix `netlinkTimeout`.
    #[serde(
        default,
        rename = "netlinkTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub netlink_timeout: Option<String>,
    /// Felix `metadataAddr`.
    #[serde(
        default,
        rename = "metadataAddr",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_addr: Option<String>,
    /// Felix `metadataPort`.
    #[serde(
        default,
        rename = "metadataPort",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_port: Option<i64>,
    /// Felix `openstackRegion`.
    #[serde(
        default,
        rename = "openstackRegion",
        skip_serializing_if = "Option::is_none"
    )]
    pub openstack_region: Option<String>,
    /// Felix `interfacePrefix`.
    #[serde(
        default,
        rename = "interfacePrefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_prefix: Option<String>,
    /// Felix `interfaceExclude`.
    #[serde(
        default,
        rename = "interfaceExclude",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_exclude: Option<String>,
    /// Felix `chainInsertMode`.
    #[serde(
        default,
        rename = "chainInsertMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub chain_insert_mode: Option<String>,
    /// Felix `defaultEndpointToHostAction`.
    #[serde(
        default,
        rename = "defaultEndpointToHostAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_endpoint_to_host_action: Option<String>,
    /// Felix `iptablesFilterAllowAction`.
    #[serde(
        default,
        rename = "iptablesFilterAllowAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_filter_allow_action: Option<String>,
    /// Felix `iptablesMangleAllowAction`.
    #[serde(
        default,
        rename = "iptablesMangleAllowAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_mangle_allow_action: Option<String>,
    /// Felix `iptablesFilterDenyAction`.
    #[serde(
        default,
        rename = "iptablesFilterDenyAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_filter_deny_action: Option<String>,
    /// Felix `logPrefix`.
    #[serde(default, rename = "logPrefix", skip_serializing_if = "Option::is_none")]
    pub log_prefix: Option<String>,
    /// Felix `logFilePath`.
    #[serde(
        default,
        rename = "logFilePath",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_file_path: Option<String>,
    /// Felix `logSeverityFile`.
    #[serde(
        default,
        rename = "logSeverityFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_severity_file: Option<String>,
    /// Felix `logSeverityScreen`.
    #[serde(
        default,
        rename = "logSeverityScreen",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_severity_screen: Option<String>,
    /// Felix `logSeveritySys`.
    #[serde(
        default,
        rename = "logSeveritySys",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_severity_sys: Option<String>,
    /// Felix `logDebugFilenameRegex`.
    #[serde(
        default,
        rename = "logDebugFilenameRegex",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_debug_filename_regex: Option<String>,
    /// Felix `ipipEnabled`.
    #[serde(
        default,
        rename = "ipipEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipip_enabled: Option<bool>,
    /// Felix `ipipMTU`.
    #[serde(default, rename = "ipipMTU", skip_serializing_if = "Option::is_none")]
    pub ipip_mtu: Option<i64>,
    /// Felix `vxlanEnabled`.
    #[serde(
        default,
        rename = "vxlanEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_enabled: Option<bool>,
    /// Felix `vxlanMTU`.
    #[serde(default, rename = "vxlanMTU", skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu: Option<i64>,
    /// Felix `vxlanMTUV6`.
    #[serde(
        default,
        rename = "vxlanMTUV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub vxlan_mtuv6: Option<i64>,
    /// Felix `vxlanPort`.
    #[serde(default, rename = "vxlanPort", skip_serializing_if = "Option::is_none")]
    pub vxlan_port: Option<u16>,
    /// Felix `vxlanVNI`.
    #[serde(default, rename = "vxlanVNI", skip_serializing_if = "Option::is_none")]
    pub vxlan_vni: Option<i64>,
    /// Felix `allowVXLANPacketsFromWorkloads`.
    #[serde(
        default,
        rename = "allowVXLANPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_vxlan_packets_from_workloads: Option<bool>,
    /// Felix `allowIPIPPacketsFromWorkloads`.
    #[serde(
        default,
        rename = "allowIPIPPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_ipip_packets_from_workloads: Option<bool>,
    /// Felix `reportingInterval`.
    #[serde(
        default,
        rename = "reportingInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub reporting_interval: Option<String>,
    /// Felix `reportingTTL`.
    #[serde(
        default,
        rename = "reportingTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub reporting_ttl: Option<String>,
    /// Felix `endpointReportingEnabled`.
    #[serde(
        default,
        rename = "endpointReportingEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_reporting_enabled: Option<bool>,
    /// Felix `endpointReportingDelay`.
    #[serde(
        default,
        rename = "endpointReportingDelay",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_reporting_delay: Option<String>,
    /// Felix `endpointStatusPathPrefix`.
    #[serde(
        default,
        rename = "endpointStatusPathPrefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_status_path_prefix: Option<String>,
    /// Felix `iptablesMarkMask`.
    #[serde(
        default,
        rename = "iptablesMarkMask",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_mark_mask: Option<i64>,
    /// Felix `disableConntrackInvalidCheck`.
    #[serde(
        default,
        rename = "disableConntrackInvalidCheck",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_conntrack_invalid_check: Option<bool>,
    /// Felix `healthEnabled`.
    #[serde(
        default,
        rename = "healthEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_enabled: Option<bool>,
    /// Felix `healthHost`.
    #[serde(
        default,
        rename = "healthHost",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_host: Option<String>,
    /// Felix `healthPort`.
    #[serde(
        default,
        rename = "healthPort",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_port: Option<u16>,
    /// Felix `healthTimeoutOverrides`.
    #[serde(
        default,
        rename = "healthTimeoutOverrides",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_timeout_overrides: Option<serde_json::Value>,
    /// Felix `prometheusMetricsEnabled`.
    #[serde(
        default,
        rename = "prometheusMetricsEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_metrics_enabled: Option<bool>,
    /// Felix `prometheusMetricsHost`.
    #[serde(
        default,
        rename = "prometheusMetricsHost",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_metrics_host: Option<String>,
    /// Felix `prometheusMetricsPort`.
    #[serde(
        default,
        rename = "prometheusMetricsPort",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_metrics_port: Option<u16>,
    /// Felix `prometheusGoMetricsEnabled`.
    #[serde(
        default,
        rename = "prometheusGoMetricsEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_go_metrics_enabled: Option<bool>,
    /// Felix `prometheusProcessMetricsEnabled`.
    #[serde(
        default,
        rename = "prometheusProcessMetricsEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_process_metrics_enabled: Option<bool>,
    /// Felix `prometheusWireGuardMetricsEnabled`.
    #[serde(
        default,
        rename = "prometheusWireGuardMetricsEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_wire_guard_metrics_enabled: Option<bool>,
    /// Felix `failsafeInboundHostPorts`.
    #[serde(
        default,
        rename = "failsafeInboundHostPorts",
        skip_serializing_if = "Option::is_none"
    )]
    pub failsafe_inbound_host_ports: Option<serde_json::Value>,
    /// Felix `failsafeOutboundHostPorts`.
    #[serde(
        default,
        rename = "failsafeOutboundHostPorts",
        skip_serializing_if = "Option::is_none"
    )]
    pub failsafe_outbound_host_ports: Option<serde_json::Value>,
    /// Felix `kubeNodePortRanges`.
    #[serde(
        default,
        rename = "kubeNodePortRanges",
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_node_port_ranges: Option<serde_json::Value>,
    /// Felix `usageReportingEnabled`.
    #[serde(
        default,
        rename = "usageReportingEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_reporting_enabled: Option<bool>,
    /// Felix `usageReportingInitialDelay`.
    #[serde(
        default,
        rename = "usageReportingInitialDelay",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_reporting_initial_delay: Option<String>,
    /// Felix `usageReportingInterval`.
    #[serde(
        default,
        rename = "usageReportingInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage_reporting_interval: Option<String>,
    /// Felix `natPortRange`.
    #[serde(
        default,
        rename = "natPortRange",
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_port_range: Option<String>,
    /// Felix `natOutgoingAddress`.
    #[serde(
        default,
        rename = "natOutgoingAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_outgoing_address: Option<String>,
    /// Felix `natOutgoingExclusions`.
    #[serde(
        default,
        rename = "natOutgoingExclusions",
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_outgoing_exclusions: Option<String>,
    /// Felix `deviceRouteSourceAddress`.
    #[serde(
        default,
        rename = "deviceRouteSourceAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_route_source_address: Option<String>,
    /// Felix `deviceRouteSourceAddressIPv6`.
    #[serde(
        default,
        rename = "deviceRouteSourceAddressIPv6",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_route_source_address_i_pv6: Option<String>,
    /// Felix `deviceRouteProtocol`.
    #[serde(
        default,
        rename = "deviceRouteProtocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_route_protocol: Option<i64>,
    /// Felix `removeExternalRoutes`.
    #[serde(
        default,
        rename = "removeExternalRoutes",
        skip_serializing_if = "Option::is_none"
    )]
    pub remove_external_routes: Option<bool>,
    /// Felix `externalNodesCIDRList`.
    #[serde(
        default,
        rename = "externalNodesCIDRList",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_nodes_cidr_list: Option<serde_json::Value>,
    /// Felix `iptablesNATOutgoingInterfaceFilter`.
    #[serde(
        default,
        rename = "iptablesNATOutgoingInterfaceFilter",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_nat_outgoing_interface_filter: Option<String>,
    /// Felix `debugMemoryProfilePath`.
    #[serde(
        default,
        rename = "debugMemoryProfilePath",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_memory_profile_path: Option<String>,
    /// Felix `debugDisableLogDropping`.
    #[serde(
        default,
        rename = "debugDisableLogDropping",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_disable_log_dropping: Option<bool>,
    /// Felix `xdpEnabled`.
    #[serde(
        default,
        rename = "xdpEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub xdp_enabled: Option<bool>,
    /// Felix `genericXDPEnabled`.
    #[serde(
        default,
        rename = "genericXDPEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub generic_xdp_enabled: Option<bool>,
    /// Felix `bpfEnabled`.
    #[serde(
        default,
        rename = "bpfEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_enabled: Option<bool>,
    /// Felix `bpfDisableUnprivileged`.
    #[serde(
        default,
        rename = "bpfDisableUnprivileged",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_disable_unprivileged: Option<bool>,
    /// Felix `bpfLogLevel`.
    #[serde(
        default,
        rename = "bpfLogLevel",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_log_level: Option<String>,
    /// Felix `bpfDataIfacePattern`.
    #[serde(
        default,
        rename = "bpfDataIfacePattern",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_data_iface_pattern: Option<String>,
    /// Felix `bpfConnectTimeLoadBalancingEnabled`.
    #[serde(
        default,
        rename = "bpfConnectTimeLoadBalancingEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_connect_time_load_balancing_enabled: Option<bool>,
    /// Felix `bpfConnectTimeLoadBalancing`.
    #[serde(
        default,
        rename = "bpfConnectTimeLoadBalancing",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_connect_time_load_balancing: Option<String>,
    /// Felix `bpfExternalServiceMode`.
    #[serde(
        default,
        rename = "bpfExternalServiceMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_external_service_mode: Option<String>,
    /// Felix `bpfKubeProxyIptablesCleanupEnabled`.
    #[serde(
        default,
        rename = "bpfKubeProxyIptablesCleanupEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_kube_proxy_iptables_cleanup_enabled: Option<bool>,
    /// Felix `bpfKubeProxyMinSyncPeriod`.
    #[serde(
        default,
        rename = "bpfKubeProxyMinSyncPeriod",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_kube_proxy_min_sync_period: Option<String>,
    /// Felix `bpfExtToServiceConnmark`.
    #[serde(
        default,
        rename = "bpfExtToServiceConnmark",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_ext_to_service_connmark: Option<i64>,
    /// Felix `routeSource`.
    #[serde(
        default,
        rename = "routeSource",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_source: Option<String>,
    /// Felix `routeTableRange`.
    #[serde(
        default,
        rename = "routeTableRange",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_table_range: Option<serde_json::Value>,
    /// Felix `routeTableRanges`.
    #[serde(
        default,
        rename = "routeTableRanges",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_table_ranges: Option<serde_json::Value>,
    /// Felix `routeSyncDisabled`.
    #[serde(
        default,
        rename = "routeSyncDisabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub route_sync_disabled: Option<bool>,
    /// Felix `wireguardEnabled`.
    #[serde(
        default,
        rename = "wireguardEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_enabled: Option<bool>,
    /// Felix `wireguardEnabledV6`.
    #[serde(
        default,
        rename = "wireguardEnabledV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_enabled_v6: Option<bool>,
    /// Felix `wireguardListeningPort`.
    #[serde(
        default,
        rename = "wireguardListeningPort",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_listening_port: Option<u16>,
    /// Felix `wireguardListeningPortV6`.
    #[serde(
        default,
        rename = "wireguardListeningPortV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_listening_port_v6: Option<u16>,
    /// Felix `wireguardRoutingRulePriority`.
    #[serde(
        default,
        rename = "wireguardRoutingRulePriority",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_routing_rule_priority: Option<i64>,
    /// Felix `wireguardInterfaceName`.
    #[serde(
        default,
        rename = "wireguardInterfaceName",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_interface_name: Option<String>,
    /// Felix `wireguardInterfaceNameV6`.
    #[serde(
        default,
        rename = "wireguardInterfaceNameV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_interface_name_v6: Option<String>,
    /// Felix `wireguardMTU`.
    #[serde(
        default,
        rename = "wireguardMTU",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_mtu: Option<i64>,
    /// Felix `wireguardMTUV6`.
    #[serde(
        default,
        rename = "wireguardMTUV6",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_mtuv6: Option<i64>,
    /// Felix `wireguardHostEncryptionEnabled`.
    #[serde(
        default,
        rename = "wireguardHostEncryptionEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_host_encryption_enabled: Option<bool>,
    /// Felix `wireguardKeepAlive`.
    #[serde(
        default,
        rename = "wireguardKeepAlive",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_keep_alive: Option<String>,
    /// Felix `awsSrcDstCheck`.
    #[serde(
        default,
        rename = "awsSrcDstCheck",
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_src_dst_check: Option<String>,
    /// Felix `serviceLoopPrevention`.
    #[serde(
        default,
        rename = "serviceLoopPrevention",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_loop_prevention: Option<String>,
    /// Felix `workloadSourceSpoofing`.
    #[serde(
        default,
        rename = "workloadSourceSpoofing",
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_source_spoofing: Option<String>,
    /// Felix `mtuIfacePattern`.
    #[serde(
        default,
        rename = "mtuIfacePattern",
        skip_serializing_if = "Option::is_none"
    )]
    pub mtu_iface_pattern: Option<String>,
    /// Felix `floatingIPs`.
    #[serde(
        default,
        rename = "floatingIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub floating_i_ps: Option<String>,
    /// Felix `nftablesMode`.
    #[serde(
        default,
        rename = "nftablesMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_mode: Option<String>,
    /// Felix `nftablesRefreshInterval`.
    #[serde(
        default,
        rename = "nftablesRefreshInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_refresh_interval: Option<String>,
    /// Felix `ipForwarding`.
    #[serde(
        default,
        rename = "ipForwarding",
        skip_serializing_if = "Option::is_none"
    )]
    pub ip_forwarding: Option<String>,
    /// Felix `sidecarAccelerationEnabled`.
    #[serde(
        default,
        rename = "sidecarAccelerationEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub sidecar_acceleration_enabled: Option<bool>,
}

/// FelixConfiguration's enumerated fields and their values as Calico
/// spells them: what `calicoctl` accepts, and what Felix maps any other
/// case of the same word to ([`felix_canonical`]).
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
];

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
    }
}
