//! The pod annotations the `calico` plugin acts on, parsed and checked
//! before anything is allocated or created.
//!
//! - `cni.projectcalico.org/ipAddrs`: JSON list, at most one address per
//!   family, assigned through IPAM;
//! - `cni.projectcalico.org/ipAddrsNoIpam`: the same, bypassing IPAM; needs
//!   `feature_control.ip_addrs_no_ipam`; not together with `ipAddrs`;
//! - `cni.projectcalico.org/floatingIPs`: JSON list, needs
//!   `feature_control.floating_ips`; each maps to the pod address of its
//!   family (recorded as `ipNATs`);
//! - `cni.projectcalico.org/ipv4pools` / `ipv6pools`: pools to use;
//! - `cni.projectcalico.org/ipFamilies`: JSON list of `IPv4` / `IPv6`, the
//!   families to assign (instead of `assign_ipv4` / `assign_ipv6`);
//! - `cni.projectcalico.org/hwAddr`: the container interface's MAC.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cni_spec::config::FeatureControl;
use cni_spec::error::CniError;

pub const IP_ADDRS: &str = "cni.projectcalico.org/ipAddrs";
pub const IP_ADDRS_NO_IPAM: &str = "cni.projectcalico.org/ipAddrsNoIpam";
pub const FLOATING_IPS: &str = "cni.projectcalico.org/floatingIPs";
pub const IP_FAMILIES: &str = "cni.projectcalico.org/ipFamilies";
pub const HW_ADDR: &str = "cni.projectcalico.org/hwAddr";

/// What the annotations ask for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodRequest {
    /// `ipAddrs`: specific addresses through IPAM.
    pub ip_addrs: Option<Vec<IpAddr>>,
    /// `ipAddrsNoIpam`: addresses used as given, IPAM bypassed.
    pub ip_addrs_no_ipam: Option<Vec<IpAddr>>,
    /// `floatingIPs`.
    pub floating_ips: Vec<IpAddr>,
    /// `ipv4pools`.
    pub v4_pools: Option<Vec<String>>,
    /// `ipv6pools`.
    pub v6_pools: Option<Vec<String>>,
    /// `ipFamilies`: (IPv4, IPv6).
    pub families: Option<(bool, bool)>,
    /// `hwAddr`.
    pub mac: Option<[u8; 6]>,
}

fn bad(key: &str, why: impl std::fmt::Display) -> CniError {
    CniError::new(100, format!("annotation {key}: {why}"), "")
}

fn json_list(
    annotations: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<Vec<String>>, CniError> {
    crate::ipam::annotation_list(annotations, key, |m| CniError::new(100, m, ""))
}

fn ip_list(
    annotations: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<Vec<IpAddr>>, CniError> {
    let Some(list) = json_list(annotations, key)? else {
        return Ok(None);
    };
    let mut out: Vec<IpAddr> = Vec::new();
    for s in &list {
        let ip: IpAddr = s
            .trim()
            .parse()
            .map_err(|_| bad(key, format!("{s:?} is not an IP address")))?;
        out.push(ip);
    }
    Ok(Some(out))
}

fn one_per_family(key: &str, ips: &[IpAddr]) -> Result<(), CniError> {
    let v4 = ips.iter().filter(|i| i.is_ipv4()).count();
    let v6 = ips.len() - v4;
    if v4 > 1 || v6 > 1 {
        return Err(bad(key, "at most one IPv4 and one IPv6 address"));
    }
    if ips.is_empty() {
        return Err(bad(key, "the list is empty"));
    }
    Ok(())
}

pub use calico_api::validate::parse_mac;

/// Parses and checks the annotations against the feature switches.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    features: &FeatureControl,
) -> Result<PodRequest, CniError> {
    let ip_addrs = ip_list(annotations, IP_ADDRS)?;
    let no_ipam = ip_list(annotations, IP_ADDRS_NO_IPAM)?;
    if ip_addrs.is_some() && no_ipam.is_some() {
        return Err(CniError::new(
            100,
            format!("annotations {IP_ADDRS} and {IP_ADDRS_NO_IPAM} cannot be used together"),
            "",
        ));
    }
    if let Some(ips) = &ip_addrs {
        one_per_family(IP_ADDRS, ips)?;
    }
    if let Some(ips) = &no_ipam {
        if !features.ip_addrs_no_ipam {
            return Err(bad(
                IP_ADDRS_NO_IPAM,
                "not enabled: set feature_control.ip_addrs_no_ipam in the CNI config",
            ));
        }
        one_per_family(IP_ADDRS_NO_IPAM, ips)?;
    }
    let floating_ips = ip_list(annotations, FLOATING_IPS)?.unwrap_or_default();
    if !floating_ips.is_empty() && !features.floating_ips {
        return Err(bad(
            FLOATING_IPS,
            "not enabled: set feature_control.floating_ips in the CNI config",
        ));
    }
    let families = match json_list(annotations, IP_FAMILIES)? {
        None => None,
        Some(list) => {
            let (mut v4, mut v6) = (false, false);
            for f in &list {
                match f.as_str() {
                    "IPv4" => v4 = true,
                    "IPv6" => v6 = true,
                    other => {
                        return Err(bad(
                            IP_FAMILIES,
                            format!("{other:?} is not a family (IPv4, IPv6)"),
                        ));
                    }
                }
            }
            if !v4 && !v6 {
                return Err(bad(IP_FAMILIES, "the list is empty"));
            }
            Some((v4, v6))
        }
    };
    let mac = match annotations.get(HW_ADDR) {
        None => None,
        Some(s) => {
            let mac =
                parse_mac(s).ok_or_else(|| bad(HW_ADDR, format!("{s:?} is not a MAC address")))?;
            if mac[0] & 1 == 1 {
                return Err(bad(HW_ADDR, format!("{s} is a multicast address")));
            }
            Some(mac)
        }
    };
    Ok(PodRequest {
        ip_addrs,
        ip_addrs_no_ipam: no_ipam,
        floating_ips,
        v4_pools: crate::ipam::pools_from_annotation(
            annotations,
            crate::ipam::ANNOTATION_V4_POOLS,
        )?,
        v6_pools: crate::ipam::pools_from_annotation(
            annotations,
            crate::ipam::ANNOTATION_V6_POOLS,
        )?,
        families,
        mac,
    })
}

/// The `ipNATs` for `floating` given the pod's addresses: each floating
/// address maps to the pod address of its family.
pub fn ip_nats(floating: &[IpAddr], pod_ips: &[IpAddr]) -> Result<Vec<(IpAddr, IpAddr)>, CniError> {
    floating
        .iter()
        .map(|f| {
            pod_ips
                .iter()
                .find(|p| p.is_ipv4() == f.is_ipv4())
                .map(|p| (*p, *f))
                .ok_or_else(|| {
                    bad(
                        FLOATING_IPS,
                        format!("{f}: the pod has no address of the same family"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn all() -> FeatureControl {
        FeatureControl {
            ip_addrs_no_ipam: true,
            floating_ips: true,
            ..FeatureControl::default()
        }
    }

    #[test]
    fn no_annotations_ask_for_nothing() {
        assert_eq!(parse(&ann(&[]), &all()).unwrap(), PodRequest::default());
    }

    #[test]
    fn ip_addrs_one_per_family() {
        let r = parse(&ann(&[(IP_ADDRS, r#"["10.0.0.5","fd00::5"]"#)]), &all()).unwrap();
        assert_eq!(r.ip_addrs.unwrap().len(), 2);
        let e = parse(&ann(&[(IP_ADDRS, r#"["10.0.0.5","10.0.0.6"]"#)]), &all()).unwrap_err();
        assert!(e.msg.contains("at most one IPv4"), "{}", e.msg);
        let e = parse(&ann(&[(IP_ADDRS, r#"["nope"]"#)]), &all()).unwrap_err();
        assert!(e.msg.contains("\"nope\" is not an IP address"), "{}", e.msg);
        let e = parse(&ann(&[(IP_ADDRS, "10.0.0.5")]), &all()).unwrap_err();
        assert!(e.msg.contains("JSON list"), "{}", e.msg);
    }

    #[test]
    fn no_ipam_needs_the_feature_and_excludes_ip_addrs() {
        let off = FeatureControl::default();
        let a = ann(&[(IP_ADDRS_NO_IPAM, r#"["80.90.100.200"]"#)]);
        let e = parse(&a, &off).unwrap_err();
        assert!(
            e.msg.contains("feature_control.ip_addrs_no_ipam"),
            "{}",
            e.msg
        );
        assert_eq!(
            parse(&a, &all()).unwrap().ip_addrs_no_ipam,
            Some(vec!["80.90.100.200".parse().unwrap()])
        );
        let both = ann(&[
            (IP_ADDRS_NO_IPAM, r#"["80.90.100.200"]"#),
            (IP_ADDRS, r#"["10.0.0.1"]"#),
        ]);
        assert!(
            parse(&both, &all())
                .unwrap_err()
                .msg
                .contains("cannot be used together")
        );
    }

    #[test]
    fn floating_ips_need_the_feature_and_a_matching_family() {
        let a = ann(&[(FLOATING_IPS, r#"["172.18.22.113"]"#)]);
        assert!(parse(&a, &FeatureControl::default()).is_err());
        let r = parse(&a, &all()).unwrap();
        let pod: Vec<IpAddr> = vec!["10.244.146.203".parse().unwrap()];
        assert_eq!(
            ip_nats(&r.floating_ips, &pod).unwrap(),
            vec![(pod[0], "172.18.22.113".parse().unwrap())]
        );
        let v6only: Vec<IpAddr> = vec!["fd00::1".parse().unwrap()];
        assert!(ip_nats(&r.floating_ips, &v6only).is_err());
    }

    #[test]
    fn families_and_mac() {
        let r = parse(
            &ann(&[(IP_FAMILIES, r#"["IPv6"]"#), (HW_ADDR, "02:42:ac:11:00:02")]),
            &all(),
        )
        .unwrap();
        assert_eq!(r.families, Some((false, true)));
        assert_eq!(r.mac, Some([0x02, 0x42, 0xac, 0x11, 0, 2]));
        assert!(parse(&ann(&[(IP_FAMILIES, r#"["IPv5"]"#)]), &all()).is_err());
        assert!(parse(&ann(&[(HW_ADDR, "zz:42:ac:11:00:02")]), &all()).is_err());
        assert!(parse(&ann(&[(HW_ADDR, "01:00:5e:00:00:01")]), &all()).is_err());
    }

    #[test]
    fn pools() {
        let r = parse(
            &ann(&[(
                crate::ipam::ANNOTATION_V4_POOLS,
                r#"["pool-a","10.9.0.0/16"]"#,
            )]),
            &all(),
        )
        .unwrap();
        assert_eq!(r.v4_pools.unwrap(), vec!["pool-a", "10.9.0.0/16"]);
    }
}
