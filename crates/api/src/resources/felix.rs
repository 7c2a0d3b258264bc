//! FelixConfiguration: the dataplane agent's settings, global (`default`) or
//! per node (`node.<name>`). Every field of Calico v3.31's FelixConfiguration
//! (`tests/fixtures/calico-3.31/fields.txt`), with Calico's spec names;
//! list-valued and structured fields are kept as given (and checked against
//! Calico's schema). Validation is in `felix_check.rs`.

use serde::{Deserialize, Serialize};

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
    pub nat_port_range: Option<serde_json::Value>,
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
    /// Felix `bpfAttachType`.
    #[serde(
        default,
        rename = "bpfAttachType",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_attach_type: Option<String>,
    /// Felix `bpfCTLBLogFilter`.
    #[serde(
        default,
        rename = "bpfCTLBLogFilter",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_ctlb_log_filter: Option<String>,
    /// Felix `bpfConntrackLogLevel`.
    #[serde(
        default,
        rename = "bpfConntrackLogLevel",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_conntrack_log_level: Option<String>,
    /// Felix `bpfConntrackMode`.
    #[serde(
        default,
        rename = "bpfConntrackMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_conntrack_mode: Option<String>,
    /// Felix `bpfConntrackTimeouts`.
    #[serde(
        default,
        rename = "bpfConntrackTimeouts",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_conntrack_timeouts: Option<serde_json::Value>,
    /// Felix `bpfDSROptoutCIDRs`.
    #[serde(
        default,
        rename = "bpfDSROptoutCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_dsr_optout_cidrs: Option<serde_json::Value>,
    /// Felix `bpfDisableGROForIfaces`.
    #[serde(
        default,
        rename = "bpfDisableGROForIfaces",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_disable_gro_for_ifaces: Option<String>,
    /// Felix `bpfEnforceRPF`.
    #[serde(
        default,
        rename = "bpfEnforceRPF",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_enforce_rpf: Option<String>,
    /// Felix `bpfExcludeCIDRsFromNAT`.
    #[serde(
        default,
        rename = "bpfExcludeCIDRsFromNAT",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_exclude_cidrs_from_nat: Option<serde_json::Value>,
    /// Felix `bpfExportBufferSizeMB`.
    #[serde(
        default,
        rename = "bpfExportBufferSizeMB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_export_buffer_size_mb: Option<i64>,
    /// Felix `bpfForceTrackPacketsFromIfaces`.
    #[serde(
        default,
        rename = "bpfForceTrackPacketsFromIfaces",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_force_track_packets_from_ifaces: Option<serde_json::Value>,
    /// Felix `bpfHostConntrackBypass`.
    #[serde(
        default,
        rename = "bpfHostConntrackBypass",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_host_conntrack_bypass: Option<bool>,
    /// Felix `bpfHostNetworkedNATWithoutCTLB`.
    #[serde(
        default,
        rename = "bpfHostNetworkedNATWithoutCTLB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_host_networked_nat_without_ctlb: Option<String>,
    /// Felix `bpfJITHardening`.
    #[serde(
        default,
        rename = "bpfJITHardening",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_jit_hardening: Option<String>,
    /// Felix `bpfKubeProxyEndpointSlicesEnabled`.
    #[serde(
        default,
        rename = "bpfKubeProxyEndpointSlicesEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_kube_proxy_endpoint_slices_enabled: Option<bool>,
    /// Felix `bpfKubeProxyHealthzPort`.
    #[serde(
        default,
        rename = "bpfKubeProxyHealthzPort",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_kube_proxy_healthz_port: Option<i64>,
    /// Felix `bpfL3IfacePattern`.
    #[serde(
        default,
        rename = "bpfL3IfacePattern",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_l3_iface_pattern: Option<String>,
    /// Felix `bpfLogFilters`.
    #[serde(
        default,
        rename = "bpfLogFilters",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_log_filters: Option<serde_json::Value>,
    /// Felix `bpfMapSizeConntrack`.
    #[serde(
        default,
        rename = "bpfMapSizeConntrack",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_conntrack: Option<i64>,
    /// Felix `bpfMapSizeConntrackCleanupQueue`.
    #[serde(
        default,
        rename = "bpfMapSizeConntrackCleanupQueue",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_conntrack_cleanup_queue: Option<i64>,
    /// Felix `bpfMapSizeConntrackScaling`.
    #[serde(
        default,
        rename = "bpfMapSizeConntrackScaling",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_conntrack_scaling: Option<String>,
    /// Felix `bpfMapSizeIPSets`.
    #[serde(
        default,
        rename = "bpfMapSizeIPSets",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_ip_sets: Option<i64>,
    /// Felix `bpfMapSizeIfState`.
    #[serde(
        default,
        rename = "bpfMapSizeIfState",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_if_state: Option<i64>,
    /// Felix `bpfMapSizeNATAffinity`.
    #[serde(
        default,
        rename = "bpfMapSizeNATAffinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_affinity: Option<i64>,
    /// Felix `bpfMapSizeNATBackend`.
    #[serde(
        default,
        rename = "bpfMapSizeNATBackend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_backend: Option<i64>,
    /// Felix `bpfMapSizeNATFrontend`.
    #[serde(
        default,
        rename = "bpfMapSizeNATFrontend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_frontend: Option<i64>,
    /// Felix `bpfMapSizePerCpuConntrack`.
    #[serde(
        default,
        rename = "bpfMapSizePerCpuConntrack",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_per_cpu_conntrack: Option<i64>,
    /// Felix `bpfMapSizeRoute`.
    #[serde(
        default,
        rename = "bpfMapSizeRoute",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_route: Option<i64>,
    /// Felix `bpfPSNATPorts`.
    #[serde(
        default,
        rename = "bpfPSNATPorts",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_psnat_ports: Option<serde_json::Value>,
    /// Felix `bpfPolicyDebugEnabled`.
    #[serde(
        default,
        rename = "bpfPolicyDebugEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_policy_debug_enabled: Option<bool>,
    /// Felix `bpfProfiling`.
    #[serde(
        default,
        rename = "bpfProfiling",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_profiling: Option<String>,
    /// Felix `bpfRedirectToPeer`.
    #[serde(
        default,
        rename = "bpfRedirectToPeer",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_redirect_to_peer: Option<String>,
    /// Felix `cgroupV2Path`.
    #[serde(
        default,
        rename = "cgroupV2Path",
        skip_serializing_if = "Option::is_none"
    )]
    pub cgroup_v2_path: Option<String>,
    /// Felix `debugHost`.
    #[serde(default, rename = "debugHost", skip_serializing_if = "Option::is_none")]
    pub debug_host: Option<String>,
    /// Felix `debugPort`.
    #[serde(default, rename = "debugPort", skip_serializing_if = "Option::is_none")]
    pub debug_port: Option<i64>,
    /// Felix `debugSimulateCalcGraphHangAfter`.
    #[serde(
        default,
        rename = "debugSimulateCalcGraphHangAfter",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_simulate_calc_graph_hang_after: Option<String>,
    /// Felix `debugSimulateDataplaneApplyDelay`.
    #[serde(
        default,
        rename = "debugSimulateDataplaneApplyDelay",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_simulate_dataplane_apply_delay: Option<String>,
    /// Felix `debugSimulateDataplaneHangAfter`.
    #[serde(
        default,
        rename = "debugSimulateDataplaneHangAfter",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_simulate_dataplane_hang_after: Option<String>,
    /// Felix `externalNodesList`.
    #[serde(
        default,
        rename = "externalNodesList",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_nodes_list: Option<serde_json::Value>,
    /// Felix `flowLogsCollectorDebugTrace`.
    #[serde(
        default,
        rename = "flowLogsCollectorDebugTrace",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_logs_collector_debug_trace: Option<bool>,
    /// Felix `flowLogsFlushInterval`.
    #[serde(
        default,
        rename = "flowLogsFlushInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_logs_flush_interval: Option<String>,
    /// Felix `flowLogsGoldmaneServer`.
    #[serde(
        default,
        rename = "flowLogsGoldmaneServer",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_logs_goldmane_server: Option<String>,
    /// Felix `flowLogsLocalReporter`.
    #[serde(
        default,
        rename = "flowLogsLocalReporter",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_logs_local_reporter: Option<String>,
    /// Felix `flowLogsPolicyEvaluationMode`.
    #[serde(
        default,
        rename = "flowLogsPolicyEvaluationMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub flow_logs_policy_evaluation_mode: Option<String>,
    /// Felix `goGCThreshold`.
    #[serde(
        default,
        rename = "goGCThreshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub go_gc_threshold: Option<i64>,
    /// Felix `goMaxProcs`.
    #[serde(
        default,
        rename = "goMaxProcs",
        skip_serializing_if = "Option::is_none"
    )]
    pub go_max_procs: Option<i64>,
    /// Felix `goMemoryLimitMB`.
    #[serde(
        default,
        rename = "goMemoryLimitMB",
        skip_serializing_if = "Option::is_none"
    )]
    pub go_memory_limit_mb: Option<i64>,
    /// Felix `iptablesLockFilePath`.
    #[serde(
        default,
        rename = "iptablesLockFilePath",
        skip_serializing_if = "Option::is_none"
    )]
    pub iptables_lock_file_path: Option<String>,
    /// Felix `logActionRateLimit`.
    #[serde(
        default,
        rename = "logActionRateLimit",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_action_rate_limit: Option<String>,
    /// Felix `logActionRateLimitBurst`.
    #[serde(
        default,
        rename = "logActionRateLimitBurst",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_action_rate_limit_burst: Option<i64>,
    /// Felix `nftablesFilterAllowAction`.
    #[serde(
        default,
        rename = "nftablesFilterAllowAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_filter_allow_action: Option<String>,
    /// Felix `nftablesFilterDenyAction`.
    #[serde(
        default,
        rename = "nftablesFilterDenyAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_filter_deny_action: Option<String>,
    /// Felix `nftablesMangleAllowAction`.
    #[serde(
        default,
        rename = "nftablesMangleAllowAction",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_mangle_allow_action: Option<String>,
    /// Felix `nftablesMarkMask`.
    #[serde(
        default,
        rename = "nftablesMarkMask",
        skip_serializing_if = "Option::is_none"
    )]
    pub nftables_mark_mask: Option<i64>,
    /// Felix `policySyncPathPrefix`.
    #[serde(
        default,
        rename = "policySyncPathPrefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub policy_sync_path_prefix: Option<String>,
    /// Felix `programClusterRoutes`.
    #[serde(
        default,
        rename = "programClusterRoutes",
        skip_serializing_if = "Option::is_none"
    )]
    pub program_cluster_routes: Option<String>,
    /// Felix `requireMTUFile`.
    #[serde(
        default,
        rename = "requireMTUFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub require_mtu_file: Option<bool>,
    /// Felix `windowsManageFirewallRules`.
    #[serde(
        default,
        rename = "windowsManageFirewallRules",
        skip_serializing_if = "Option::is_none"
    )]
    pub windows_manage_firewall_rules: Option<String>,
    /// Felix `wireguardThreadingEnabled`.
    #[serde(
        default,
        rename = "wireguardThreadingEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub wireguard_threading_enabled: Option<bool>,
}
