//! The Felix settings that shape policy enforcement, with Felix's defaults,
//! read from a FelixConfiguration.
//!
//! Invariant: [`Settings::default`] is what Felix does with an empty
//! FelixConfiguration; [`Settings::from_felix`] never fails as a whole: a bad
//! field keeps its default and is reported.

use calico_api::resources::FelixConfigurationSpec;
use ipnet::IpNet;
use serde_json::Value;

use crate::Problem;
use crate::model::proto;

/// What happens to traffic from a local workload to its own host, after the
/// workload's egress policy allowed it (`defaultEndpointToHostAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointToHostAction {
    /// Dropped (Felix's default).
    #[default]
    Drop,
    /// Accepted.
    Accept,
    /// Left to the host's other rules (accepted as far as this table goes).
    Return,
}

/// A failsafe port: traffic to it is accepted on host endpoints before any policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailsafePort {
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
    /// Destination port.
    pub port: u16,
    /// Restricts the peer: the source for inbound, the destination for outbound.
    pub net: Option<IpNet>,
}

/// The two packet-mark bits the rules use to pass verdicts between chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkBits {
    /// Set when a policy or profile allowed the packet.
    pub accept: u32,
    /// Set when a policy passed the packet to the next tier.
    pub pass: u32,
}

impl MarkBits {
    /// Both bits.
    pub fn all(self) -> u32 {
        self.accept | self.pass
    }

    /// The two lowest bits of `mask`, as Felix allocates them from
    /// `iptablesMarkMask` (accept first, then pass); `None` if the mask has
    /// fewer than two bits.
    pub fn from_mask(mask: u32) -> Option<MarkBits> {
        let accept = lowest_bit(mask)?;
        let pass = lowest_bit(mask & !accept)?;
        Some(MarkBits { accept, pass })
    }
}

fn lowest_bit(m: u32) -> Option<u32> {
    (m != 0).then(|| m & m.wrapping_neg())
}

impl Default for MarkBits {
    /// Felix's bits for its default mask `0xffff0000`.
    fn default() -> Self {
        MarkBits {
            accept: 0x0001_0000,
            pass: 0x0002_0000,
        }
    }
}

/// Everything besides resources that decides how policy is enforced.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `defaultEndpointToHostAction`.
    pub endpoint_to_host: EndpointToHostAction,
    /// `failsafeInboundHostPorts`.
    pub failsafe_inbound: Vec<FailsafePort>,
    /// `failsafeOutboundHostPorts`.
    pub failsafe_outbound: Vec<FailsafePort>,
    /// `interfacePrefix`: traffic on an interface with one of these prefixes
    /// that belongs to no known local workload is dropped.
    pub workload_prefixes: Vec<String>,
    /// `logPrefix`: kernel log lines of `Log` rules start with `<prefix>: `.
    pub log_prefix: String,
    /// Mark bits (from `iptablesMarkMask`).
    pub marks: MarkBits,
    /// `allowVXLANPacketsFromWorkloads`.
    pub allow_vxlan_from_workloads: bool,
    /// `vxlanPort`, dropped from workloads unless allowed.
    pub vxlan_port: u16,
    /// `allowIPIPPacketsFromWorkloads`.
    pub allow_ipip_from_workloads: bool,
    /// Drop packets conntrack considers invalid (`!disableConntrackInvalidCheck`).
    pub drop_invalid: bool,
    /// The cluster's node addresses (Felix's "all hosts" set; not a
    /// FelixConfiguration field: the agent fills it from the Node
    /// resources). VXLAN and IP-in-IP packets between these addresses pass
    /// host endpoints before their policy, so a host endpoint policy cannot
    /// cut the overlay between nodes.
    pub hosts: Vec<std::net::IpAddr>,
}

/// Felix's `failsafeInboundHostPorts` default.
pub const FAILSAFE_INBOUND: &[(u8, u16)] = &[
    (proto::TCP, 22),
    (proto::UDP, 68),
    (proto::TCP, 179),
    (proto::TCP, 2379),
    (proto::TCP, 2380),
    (proto::TCP, 5473),
    (proto::TCP, 6443),
    (proto::TCP, 6666),
    (proto::TCP, 6667),
];

/// Felix's `failsafeOutboundHostPorts` default.
pub const FAILSAFE_OUTBOUND: &[(u8, u16)] = &[
    (proto::UDP, 53),
    (proto::UDP, 67),
    (proto::TCP, 179),
    (proto::TCP, 2379),
    (proto::TCP, 2380),
    (proto::TCP, 5473),
    (proto::TCP, 6443),
    (proto::TCP, 6666),
    (proto::TCP, 6667),
];

fn failsafe(list: &[(u8, u16)]) -> Vec<FailsafePort> {
    list.iter()
        .map(|&(protocol, port)| FailsafePort {
            protocol,
            port,
            net: None,
        })
        .collect()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint_to_host: EndpointToHostAction::Drop,
            failsafe_inbound: failsafe(FAILSAFE_INBOUND),
            failsafe_outbound: failsafe(FAILSAFE_OUTBOUND),
            workload_prefixes: vec!["cali".into()],
            log_prefix: "calico-packet".into(),
            marks: MarkBits::default(),
            allow_vxlan_from_workloads: false,
            vxlan_port: 4789,
            allow_ipip_from_workloads: false,
            drop_invalid: true,
            hosts: Vec::new(),
        }
    }
}

impl Settings {
    /// Felix's defaults overridden by the fields a FelixConfiguration sets.
    /// Fields that cannot be used are reported and keep their default.
    pub fn from_felix(f: &FelixConfigurationSpec) -> (Settings, Vec<Problem>) {
        let mut s = Settings::default();
        let mut problems = Vec::new();
        let mut bad = |field: &str, message: String| {
            problems.push(Problem::new(
                "FelixConfiguration",
                format!("spec.{field}: {message}"),
            ));
        };
        match f.default_endpoint_to_host_action.as_deref() {
            None | Some("Drop") => {}
            Some("Accept") => s.endpoint_to_host = EndpointToHostAction::Accept,
            Some("Return") => s.endpoint_to_host = EndpointToHostAction::Return,
            Some(v) => bad(
                "defaultEndpointToHostAction",
                format!("{v:?} is not Drop, Accept or Return"),
            ),
        }
        for (field, value, target) in [
            (
                "failsafeInboundHostPorts",
                &f.failsafe_inbound_host_ports,
                &mut s.failsafe_inbound,
            ),
            (
                "failsafeOutboundHostPorts",
                &f.failsafe_outbound_host_ports,
                &mut s.failsafe_outbound,
            ),
        ] {
            if let Some(v) = value {
                match parse_failsafe(v) {
                    Ok(list) => *target = list,
                    Err(e) => bad(field, e),
                }
            }
        }
        if let Some(p) = &f.interface_prefix {
            s.workload_prefixes = p
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(p) = &f.log_prefix {
            s.log_prefix = p.clone();
        }
        if let Some(m) = f.iptables_mark_mask {
            match u32::try_from(m).ok().and_then(MarkBits::from_mask) {
                Some(bits) => s.marks = bits,
                None => bad(
                    "iptablesMarkMask",
                    format!("{m:#x} does not leave two mark bits"),
                ),
            }
        }
        s.allow_vxlan_from_workloads = f.allow_vxlan_packets_from_workloads.unwrap_or(false);
        s.allow_ipip_from_workloads = f.allow_ipip_packets_from_workloads.unwrap_or(false);
        if let Some(p) = f.vxlan_port {
            s.vxlan_port = p;
        }
        s.drop_invalid = !f.disable_conntrack_invalid_check.unwrap_or(false);
        (s, problems)
    }
}

/// Reads Felix's port list: `[{protocol: TCP, port: 22, net: 10.0.0.0/8}]`.
fn parse_failsafe(v: &Value) -> Result<Vec<FailsafePort>, String> {
    let Value::Array(items) = v else {
        return Err("a list of {protocol, port, net} is required".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_failsafe_item(item).map_err(|e| format!("[{i}]: {e}")))
        .collect()
}

fn parse_failsafe_item(item: &Value) -> Result<FailsafePort, String> {
    let protocol = match item
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
    {
        p if p.eq_ignore_ascii_case("tcp") => proto::TCP,
        p if p.eq_ignore_ascii_case("udp") => proto::UDP,
        p if p.eq_ignore_ascii_case("sctp") => proto::SCTP,
        p => return Err(format!("protocol {p:?} is not TCP, UDP or SCTP")),
    };
    let port = item
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("port must be a number from 0 to 65535")?;
    let net = match item.get("net").and_then(Value::as_str) {
        None | Some("") => None,
        Some(n) => Some(crate::model::parse_net(n)?),
    };
    Ok(FailsafePort {
        protocol,
        port,
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_felix_defaults() {
        let s = Settings::default();
        assert_eq!(s.endpoint_to_host, EndpointToHostAction::Drop);
        assert_eq!(s.failsafe_inbound.len(), 9);
        assert!(s.failsafe_inbound.contains(&FailsafePort {
            protocol: proto::TCP,
            port: 22,
            net: None
        }));
        assert!(s.failsafe_outbound.contains(&FailsafePort {
            protocol: proto::UDP,
            port: 53,
            net: None
        }));
        assert_eq!(s.marks.accept, 0x10000);
        assert_eq!(s.marks.pass, 0x20000);
        assert_eq!(
            Settings::from_felix(&FelixConfigurationSpec::default()),
            (s, vec![])
        );
    }

    #[test]
    fn reads_felix_configuration() {
        let f = FelixConfigurationSpec {
            default_endpoint_to_host_action: Some("Accept".into()),
            failsafe_inbound_host_ports: Some(serde_json::json!([
                {"protocol": "UDP", "port": 53, "net": "10.0.0.0/8"}
            ])),
            interface_prefix: Some("cali, tap".into()),
            iptables_mark_mask: Some(0xff00),
            log_prefix: Some("x".into()),
            ..Default::default()
        };
        let (s, problems) = Settings::from_felix(&f);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.endpoint_to_host, EndpointToHostAction::Accept);
        assert_eq!(
            s.failsafe_inbound,
            vec![FailsafePort {
                protocol: proto::UDP,
                port: 53,
                net: "10.0.0.0/8".parse().ok()
            }]
        );
        assert_eq!(s.workload_prefixes, vec!["cali", "tap"]);
        assert_eq!(
            s.marks,
            MarkBits {
                accept: 0x100,
                pass: 0x200
            }
        );
        assert_eq!(s.log_prefix, "x");
    }

    #[test]
    fn bad_fields_keep_defaults_and_are_reported() {
        let f = FelixConfigurationSpec {
            default_endpoint_to_host_action: Some("Maybe".into()),
            failsafe_outbound_host_ports: Some(serde_json::json!([{"protocol": "GRE", "port": 1}])),
            iptables_mark_mask: Some(0x8000_0000),
            ..Default::default()
        };
        let (s, problems) = Settings::from_felix(&f);
        assert_eq!(s.endpoint_to_host, EndpointToHostAction::Drop);
        assert_eq!(s.failsafe_outbound.len(), 9);
        assert_eq!(s.marks, MarkBits::default());
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("defaultEndpointToHostAction"));
        assert!(text[1].contains("failsafeOutboundHostPorts: [0]: protocol \"GRE\""));
        assert!(text[2].contains("iptablesMarkMask"));
    }
}
