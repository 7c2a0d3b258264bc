//! IPPool, IPReservation and IPAMConfiguration.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::common::{check_selector, is_false};
use crate::meta::{ObjectMeta, SpecImpl};
use crate::validate::{self, Errors};

/// Encapsulation mode of a pool (`ipipMode`, `vxlanMode`), as spelt.
pub const ENCAP_MODES: &[&str] = &["Never", "Always", "CrossSubnet"];

/// Encapsulation mode of a pool (`ipipMode`, `vxlanMode`): whether traffic
/// to the pool's addresses on other nodes goes through the tunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EncapMode {
    /// Never (the default).
    #[default]
    Never,
    /// To every other node.
    Always,
    /// Only to nodes outside this node's subnet.
    CrossSubnet,
}

impl EncapMode {
    /// Calico's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EncapMode::Never => "Never",
            EncapMode::Always => "Always",
            EncapMode::CrossSubnet => "CrossSubnet",
        }
    }

    /// Whether the tunnel is used at all (not `Never`).
    pub fn enabled(self) -> bool {
        self != EncapMode::Never
    }
}

impl std::fmt::Display for EncapMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an [`EncapMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encapsulation mode {0:?} is not one of Never, Always, CrossSubnet")]
pub struct BadEncapMode(pub String);

impl std::str::FromStr for EncapMode {
    type Err = BadEncapMode;

    /// Calico's spellings only (`Never`, `Always`, `CrossSubnet`).
    fn from_str(s: &str) -> Result<EncapMode, BadEncapMode> {
        match s {
            "Never" => Ok(EncapMode::Never),
            "Always" => Ok(EncapMode::Always),
            "CrossSubnet" => Ok(EncapMode::CrossSubnet),
            other => Err(BadEncapMode(other.to_string())),
        }
    }
}

/// A pool's tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encap {
    /// IP-in-IP (`ipipMode`).
    Ipip,
    /// VXLAN (`vxlanMode`).
    Vxlan,
}
/// Uses a pool may allow.
pub const ALLOWED_USES: &[&str] = &["Workload", "Tunnel", "LoadBalancer"];

/// Spec of an IPPool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    /// The pool's CIDR (required).
    pub cidr: String,
    /// VXLAN encapsulation: Never (default), Always, CrossSubnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_mode: Option<String>,
    /// IP-in-IP encapsulation: Never (default), Always, CrossSubnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<String>,
    /// Masquerade traffic from the pool to outside all pools (omitted
    /// when false, as Calico omits it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    /// A disabled pool hands out no new addresses.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Keep the pool's routes out of BGP.
    #[serde(default, rename = "disableBGPExport", skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    /// Prefix length of the blocks carved out of the pool (26 / 122 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    /// Which nodes may allocate from the pool (`all()` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// Workload, Tunnel (both by default) or LoadBalancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_uses: Option<Vec<String>>,
    /// Automatic (default) or Manual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<String>,
    /// Which namespaces' pods may allocate from the pool (Calico 3.31).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// Calico's deprecated v1 `ipip` block: refused as Calico refuses it
    /// (it must be absent; use `ipipMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip: Option<serde_json::Value>,
    /// Calico's deprecated v1 `nat-outgoing`: only `false` is valid (use `natOutgoing`).
    #[serde(
        default,
        rename = "nat-outgoing",
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_outgoing_v1: Option<bool>,
}

impl IPPoolSpec {
    /// The pool's network, if its CIDR is valid.
    pub fn net(&self) -> Option<IpNet> {
        self.cidr.parse().ok()
    }

    /// The block size, defaulted by family.
    pub fn block_size(&self) -> u8 {
        self.block_size.unwrap_or(match self.net() {
            Some(IpNet::V6(_)) => 122,
            _ => 26,
        })
    }

    /// The IP-in-IP mode: `Never` when unset, or not one of Calico's
    /// spellings (which validation refuses, naming the value).
    pub fn ipip_mode(&self) -> EncapMode {
        mode(self.ipip_mode.as_deref())
    }

    /// The VXLAN mode: `Never` when unset, or not one of Calico's
    /// spellings (which validation refuses, naming the value).
    pub fn vxlan_mode(&self) -> EncapMode {
        mode(self.vxlan_mode.as_deref())
    }

    /// The pool's tunnel and its mode, if it has one (VXLAN first: a valid
    /// pool has at most one).
    pub fn encapsulation(&self) -> Option<(Encap, EncapMode)> {
        [
            (Encap::Vxlan, self.vxlan_mode()),
            (Encap::Ipip, self.ipip_mode()),
        ]
        .into_iter()
        .find(|(_, m)| m.enabled())
    }

    /// The node selector, `all()` when unset.
    pub fn node_selector(&self) -> &str {
        self.node_selector.as_deref().unwrap_or("all()")
    }
}

fn mode(s: Option<&str>) -> EncapMode {
    s.and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// For validation: a mode is set to something other than `Never` (a bad
/// value counts: it is reported, and so is what it conflicts with).
fn set(s: &Option<String>) -> bool {
    s.as_deref()
        .is_some_and(|m| m.parse() != Ok(EncapMode::Never))
}

impl SpecImpl for IPPoolSpec {
    fn defaults(&mut self) {
        if let Some(net) = self.net() {
            self.cidr = net.trunc().to_string();
        }
        self.block_size = Some(self.block_size());
        self.ipip_mode
            .get_or_insert_with(|| EncapMode::Never.to_string());
        self.vxlan_mode
            .get_or_insert_with(|| EncapMode::Never.to_string());
        self.node_selector.get_or_insert_with(|| "all()".into());
        self.allowed_uses
            .get_or_insert_with(|| vec!["Workload".into(), "Tunnel".into()]);
        // Written on create and update, as Calico's client does.
        self.assignment_mode
            .get_or_insert_with(|| "Automatic".into());
    }

    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        check_selector(errs, "spec.namespaceSelector", &self.namespace_selector);
        // Calico's v1 fields: `ipip` must be absent, `nat-outgoing` false.
        if self.ipip.is_some() {
            errs.add(
                "spec.ipip",
                "the v1 ipip field must not be set: use ipipMode",
            );
        }
        if self.nat_outgoing_v1 == Some(true) {
            errs.add(
                "spec.nat-outgoing",
                "the v1 nat-outgoing field must be false: use natOutgoing",
            );
        }
        let net = match validate::cidr(&self.cidr) {
            Ok(n) => Some(n),
            Err(e) => {
                errs.add(
                    "spec.cidr",
                    if self.cidr.is_empty() {
                        "a CIDR is required".into()
                    } else {
                        e
                    },
                );
                None
            }
        };
        errs.check(
            "spec.ipipMode",
            validate::one_of(self.ipip_mode.as_deref().unwrap_or("Never"), ENCAP_MODES),
        );
        errs.check(
            "spec.vxlanMode",
            validate::one_of(self.vxlan_mode.as_deref().unwrap_or("Never"), ENCAP_MODES),
        );
        if set(&self.ipip_mode) && set(&self.vxlan_mode) {
            errs.add(
                "spec",
                "ipipMode and vxlanMode cannot both be enabled on one pool",
            );
        }
        check_selector(errs, "spec.nodeSelector", &self.node_selector);
        if let Some(uses) = &self.allowed_uses {
            for (i, u) in uses.iter().enumerate() {
                errs.check(
                    format!("spec.allowedUses[{i}]"),
                    validate::one_of(u, ALLOWED_USES),
                );
            }
            if uses.iter().any(|u| u == "LoadBalancer") && uses.len() > 1 {
                errs.add(
                    "spec.allowedUses",
                    "LoadBalancer cannot be combined with other uses",
                );
            }
        }
        if let Some(m) = &self.assignment_mode {
            errs.check(
                "spec.assignmentMode",
                validate::one_of(m, &["Automatic", "Manual"]),
            );
        }
        let Some(net) = net else { return };
        let bs = self.block_size();
        match net {
            IpNet::V4(_) => {
                if !(20..=32).contains(&bs) {
                    errs.add(
                        "spec.blockSize",
                        format!(
                            "block size {bs} is not valid for IPv4: it must be between 20 and 32"
                        ),
                    );
                }
                if let Ok(ll) = "169.254.0.0/16".parse::<IpNet>()
                    && overlaps(&net, &ll)
                {
                    errs.add(
                        "spec.cidr",
                        "the pool overlaps the IPv4 link-local range 169.254.0.0/16",
                    );
                }
            }
            IpNet::V6(_) => {
                if !(116..=128).contains(&bs) {
                    errs.add(
                        "spec.blockSize",
                        format!(
                            "block size {bs} is not valid for IPv6: it must be between 116 and 128"
                        ),
                    );
                }
                if set(&self.ipip_mode) {
                    errs.add("spec.ipipMode", "IPIP is not supported on IPv6 pools");
                }
                if let Ok(ll) = "fe80::/10".parse::<IpNet>()
                    && overlaps(&net, &ll)
                {
                    errs.add(
                        "spec.cidr",
                        "the pool overlaps the IPv6 link-local range fe80::/10",
                    );
                }
            }
        }
        if bs < net.prefix_len() {
            errs.add(
                "spec.blockSize",
                format!(
                    "block size /{bs} is larger than the pool {}: it must be at least {}",
                    self.cidr,
                    net.prefix_len()
                ),
            );
        }
    }
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Spec of an IPReservation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPReservationSpec {
    /// CIDRs (or single addresses) IPAM must never hand out.
    #[serde(default, rename = "reservedCIDRs")]
    pub reserved_cidrs: Vec<String>,
}

impl SpecImpl for IPReservationSpec {
    fn check(&self, _meta: &ObjectMeta, errs: &mut Errors) {
        for (i, c) in self.reserved_cidrs.iter().enumerate() {
            if let Err(e) = validate::cidr_or_ip(c) {
                errs.add(format!("spec.reservedCIDRs[{i}]"), e);
            }
        }
    }
}

/// Spec of the IPAMConfiguration (named `default`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfigurationSpec {
    /// When true, never borrow addresses from another node's block.
    #[serde(default)]
    pub strict_affinity: bool,
    /// Most blocks one host may claim; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocks_per_host: Option<i32>,
    /// Whether hosts claim blocks automatically (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_allocate_blocks: Option<bool>,
}

impl SpecImpl for IPAMConfigurationSpec {
    fn defaults(&mut self) {
        self.auto_allocate_blocks.get_or_insert(true);
    }

    fn check(&self, meta: &ObjectMeta, errs: &mut Errors) {
        if !meta.name.is_empty() && meta.name != "default" {
            errs.add(
                "metadata.name",
                "the IPAMConfiguration must be named \"default\"",
            );
        }
        if let Some(n) = self.max_blocks_per_host
            && n < 0
        {
            errs.add(
                "spec.maxBlocksPerHost",
                format!("{n} is negative: use 0 for no limit"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encap_modes_parse_and_print_calicos_spellings_only() {
        for m in [EncapMode::Never, EncapMode::Always, EncapMode::CrossSubnet] {
            assert_eq!(m.to_string().parse(), Ok(m));
        }
        let names: Vec<String> = [EncapMode::Never, EncapMode::Always, EncapMode::CrossSubnet]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ENCAP_MODES);
        let e = "always".parse::<EncapMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "encapsulation mode \"always\" is not one of Never, Always, CrossSubnet"
        );
    }

    #[test]
    fn accessors_default_to_never_and_name_the_tunnel() {
        let mut p = IPPoolSpec::default();
        assert_eq!(
            (p.ipip_mode(), p.vxlan_mode()),
            (EncapMode::Never, EncapMode::Never)
        );
        assert_eq!(p.encapsulation(), None);
        p.ipip_mode = Some("CrossSubnet".into());
        assert_eq!(p.ipip_mode(), EncapMode::CrossSubnet);
        assert_eq!(
            p.encapsulation(),
            Some((Encap::Ipip, EncapMode::CrossSubnet))
        );
        p.vxlan_mode = Some("Always".into());
        p.ipip_mode = None;
        assert_eq!(p.encapsulation(), Some((Encap::Vxlan, EncapMode::Always)));
        // A bad stored value: Never here, named by validation.
        p.vxlan_mode = Some("Sometimes".into());
        assert_eq!(p.vxlan_mode(), EncapMode::Never);
        let mut errs = Errors::default();
        p.cidr = "10.0.0.0/16".into();
        p.check(&ObjectMeta::default(), &mut errs);
        let text = format!("{errs:?}");
        assert!(text.contains("Sometimes"), "{text}");
        // The stored form is unchanged.
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["vxlanMode"], "Sometimes");
    }
}
