//! calico-node's start-up configuration, read from the environment exactly
//! as Calico's calico-node reads it. Pure: [`NodeConfig::from_lookup`] takes
//! a lookup function, so every rule is unit-tested without a process.

use std::collections::BTreeMap;

use calico_api::resources::EncapMode;
use calico_datastore::config::Settings;
use ipnet::IpNet;
use serde_json::Value;

/// A configuration error: names the variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn bad(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        reason: reason.into(),
    }
}

/// `IP` / `IP6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrSetting {
    /// Unset: keep the Node's address, else autodetect (IPv4); none (IPv6).
    Unset,
    /// `autodetect`: detect at every start.
    Autodetect,
    /// `none`: no address of this family.
    None,
    /// A fixed `ADDR/LEN` (a bare address gets /32 or /128).
    Fixed(IpNet),
}

/// `IP_AUTODETECTION_METHOD` / `IP6_AUTODETECTION_METHOD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autodetect {
    /// `first-found`: the first usable address of a non-excluded interface.
    FirstFound,
    /// `interface=REGEX[,REGEX...]`: the first interface whose name matches.
    Interface(Vec<String>),
    /// `skip-interface=REGEX[,...]`: first-found, skipping these.
    SkipInterface(Vec<String>),
    /// `can-reach=DEST`: the source address the kernel would use toward DEST.
    CanReach(String),
    /// `cidr=CIDR[,CIDR...]`: the first address inside one of these.
    Cidr(Vec<IpNet>),
}

/// `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `bird`: BGP (Calico's default).
    Bird,
    /// `vxlan`: VXLAN only, no BGP.
    Vxlan,
    /// `none`: policy only.
    None,
}

/// The default pool calico-node creates when the cluster has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPool {
    pub cidr: IpNet,
    pub block_size: u8,
    pub ipip_mode: EncapMode,
    pub vxlan_mode: EncapMode,
    pub nat_outgoing: bool,
    pub node_selector: String,
    pub disable_bgp_export: bool,
}

/// Everything calico-node reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub nodename: String,
    pub datastore: Settings,
    pub ip: AddrSetting,
    pub ip6: AddrSetting,
    pub autodetect_v4: Autodetect,
    pub autodetect_v6: Autodetect,
    pub backend: Backend,
    /// `None` with `NO_DEFAULT_POOLS=true`.
    pub pool_v4: Option<DefaultPool>,
    /// Only when `CALICO_IPV6POOL_CIDR` is set (and pools are wanted).
    pub pool_v6: Option<DefaultPool>,
    /// `FELIX_*` variables, as FelixConfiguration fields (highest priority).
    pub felix_env: BTreeMap<String, Value>,
    /// Where the files for the CNI plugin go (`nodename`, `mtu`); Calico's
    /// `/var/lib/calico`; `CALICO_STATE_DIR` (calico-rs) moves it.
    pub state_dir: String,
    /// `AS`: the node's own AS number, if set.
    pub as_number: Option<u32>,
}

fn truthy(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(bad(var, format!("{other:?} is not a boolean"))),
    }
}

fn addr_setting(var: &str, v: Option<String>, v6: bool) -> Result<AddrSetting, ConfigError> {
    let Some(v) = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(AddrSetting::Unset);
    };
    match v.to_ascii_lowercase().as_str() {
        "autodetect" => return Ok(AddrSetting::Autodetect),
        "none" => return Ok(AddrSetting::None),
        _ => {}
    }
    let net: IpNet = match v.parse() {
        Ok(n) => n,
        Err(_) => v
            .parse::<std::net::IpAddr>()
            .map(IpNet::from)
            .map_err(|_| {
                bad(
                    var,
                    format!("{v:?} is not an address, ADDR/LEN, autodetect or none"),
                )
            })?,
    };
    if net.addr().is_ipv6() != v6 {
        return Err(bad(
            var,
            format!("{v} is not an IPv{} address", if v6 { 6 } else { 4 }),
        ));
    }
    Ok(AddrSetting::Fixed(net))
}

fn autodetect(var: &str, v: Option<String>) -> Result<Autodetect, ConfigError> {
    let Some(v) = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) else {
        return Ok(Autodetect::FirstFound);
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let check_regexes = |l: Vec<String>| -> Result<Vec<String>, ConfigError> {
        for r in &l {
            regex::Regex::new(r)
                .map_err(|e| bad(var, format!("bad regular expression {r:?}: {e}")))?;
        }
        if l.is_empty() {
            return Err(bad(var, "no interface pattern given"));
        }
        Ok(l)
    };
    if v == "first-found" {
        Ok(Autodetect::FirstFound)
    } else if let Some(r) = v.strip_prefix("interface=") {
        Ok(Autodetect::Interface(check_regexes(list(r))?))
    } else if let Some(r) = v.strip_prefix("skip-interface=") {
        Ok(Autodetect::SkipInterface(check_regexes(list(r))?))
    } else if let Some(d) = v.strip_prefix("can-reach=") {
        if d.trim().is_empty() {
            return Err(bad(var, "can-reach needs a destination"));
        }
        Ok(Autodetect::CanReach(d.trim().to_string()))
    } else if let Some(c) = v.strip_prefix("cidr=") {
        let mut nets = Vec::new();
        for p in list(c) {
            nets.push(
                p.parse()
                    .map_err(|_| bad(var, format!("{p:?} is not a CIDR")))?,
            );
        }
        if nets.is_empty() {
            return Err(bad(var, "cidr needs at least one CIDR"));
        }
        Ok(Autodetect::Cidr(nets))
    } else {
        Err(bad(
            var,
            format!(
                "{v:?} is not a method (first-found, interface=REGEX, skip-interface=REGEX, can-reach=DEST, cidr=CIDR)"
            ),
        ))
    }
}

fn encap_mode(var: &str, v: Option<String>) -> Result<EncapMode, ConfigError> {
    let v = v.unwrap_or_default();
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "never" | "off" => Ok(EncapMode::Never),
        "always" => Ok(EncapMode::Always),
        "crosssubnet" | "cross-subnet" => Ok(EncapMode::CrossSubnet),
        other => Err(bad(
            var,
            format!("{other:?} is not Never, Always or CrossSubnet"),
        )),
    }
}

fn pool(
    get: &impl Fn(&str) -> Option<String>,
    fam: &str,
    cidr: IpNet,
    default_block: u8,
) -> Result<DefaultPool, ConfigError> {
    let var = |s: &str| format!("CALICO_{fam}POOL_{s}");
    let block_size = match get(&var("BLOCK_SIZE")).filter(|s| !s.trim().is_empty()) {
        None => default_block,
        Some(b) => b
            .trim()
            .parse()
            .map_err(|_| bad(&var("BLOCK_SIZE"), format!("{b:?} is not a number")))?,
    };
    let ipip_mode = encap_mode(&var("IPIP"), get(&var("IPIP")))?;
    let vxlan_mode = encap_mode(&var("VXLAN"), get(&var("VXLAN")))?;
    if ipip_mode.enabled() && vxlan_mode.enabled() {
        return Err(bad(
            &var("IPIP"),
            "IPIP and VXLAN cannot both be enabled on one pool",
        ));
    }
    let nat_default = fam == "IPV4";
    let nat_outgoing = match get(&var("NAT_OUTGOING")) {
        None => nat_default,
        Some(v) => truthy(&var("NAT_OUTGOING"), &v)?,
    };
    let node_selector = get(&var("NODE_SELECTOR"))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "all()".into());
    calico_api::selector::Selector::parse(&node_selector)
        .map_err(|e| bad(&var("NODE_SELECTOR"), e.to_string()))?;
    let disable_bgp_export = match get(&var("DISABLE_BGP_EXPORT")) {
        None => false,
        Some(v) => truthy(&var("DISABLE_BGP_EXPORT"), &v)?,
    };
    Ok(DefaultPool {
        cidr: cidr.trunc(),
        block_size,
        ipip_mode,
        vxlan_mode,
        nat_outgoing,
        node_selector,
        disable_bgp_export,
    })
}

/// The names of FelixConfiguration's fields (camelCase), from serde itself.
pub fn felix_fields() -> Vec<String> {
    // serde names every accepted field when it refuses an unknown one.
    let err = serde_json::from_value::<calico_api::resources::FelixConfigurationSpec>(
        serde_json::json!({"~": 0}),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    let Some(list) = err.split("expected one of ").nth(1) else {
        return Vec::new();
    };
    list.split(", ")
        .map(|f| f.trim().trim_matches('`').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

impl NodeConfig {
    /// Reads the configuration through `get` (the environment, in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<NodeConfig, ConfigError> {
        let nodename = get("NODENAME")
            .or_else(|| get("HOSTNAME"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let Err(e) = calico_api::validate::dns1123_subdomain(&nodename) {
            return Err(bad("NODENAME", e));
        }
        let backend = match get("CALICO_NETWORKING_BACKEND")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "bird" => Backend::Bird,
            "vxlan" => Backend::Vxlan,
            "none" => Backend::None,
            other => {
                return Err(bad(
                    "CALICO_NETWORKING_BACKEND",
                    format!("{other:?} is not bird, vxlan or none"),
                ));
            }
        };
        let no_pools = match get("NO_DEFAULT_POOLS") {
            None => false,
            Some(v) => truthy("NO_DEFAULT_POOLS", &v)?,
        };
        let pool_v4 = if no_pools {
            None
        } else {
            let raw = get("CALICO_IPV4POOL_CIDR")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "192.168.0.0/16".into());
            let cidr: IpNet = raw
                .trim()
                .parse()
                .ok()
                .filter(|n: &IpNet| n.addr().is_ipv4())
                .ok_or_else(|| {
                    bad(
                        "CALICO_IPV4POOL_CIDR",
                        format!("{raw:?} is not an IPv4 CIDR"),
                    )
                })?;
            Some(pool(&get, "IPV4", cidr, 26)?)
        };
        let pool_v6 = match get("CALICO_IPV6POOL_CIDR").filter(|s| !s.trim().is_empty()) {
            Some(raw) if !no_pools => {
                let cidr: IpNet = raw
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n: &IpNet| n.addr().is_ipv6())
                    .ok_or_else(|| {
                        bad(
                            "CALICO_IPV6POOL_CIDR",
                            format!("{raw:?} is not an IPv6 CIDR"),
                        )
                    })?;
                Some(pool(&get, "IPV6", cidr, 122)?)
            }
            _ => None,
        };
        let felix_env = crate::felix_env::read(&felix_fields(), &get);
        let as_number = match get("AS").filter(|s| !s.trim().is_empty()) {
            None => None,
            Some(v) => Some(
                calico_api::resources::AsNumber::parse(v.trim())
                    .map_err(|e| bad("AS", e))?
                    .0,
            ),
        };
        Ok(NodeConfig {
            nodename,
            datastore: Settings::from_lookup(&get),
            ip: addr_setting("IP", get("IP"), false)?,
            ip6: addr_setting("IP6", get("IP6"), true)?,
            autodetect_v4: autodetect("IP_AUTODETECTION_METHOD", get("IP_AUTODETECTION_METHOD"))?,
            autodetect_v6: autodetect("IP6_AUTODETECTION_METHOD", get("IP6_AUTODETECTION_METHOD"))?,
            backend,
            pool_v4,
            pool_v6,
            felix_env,
            state_dir: get("CALICO_STATE_DIR")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "/var/lib/calico".into()),
            as_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NodeConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_as_calico() {
        let c = cfg(&[("NODENAME", "Node-1")]).unwrap();
        assert_eq!(c.nodename, "node-1");
        assert_eq!(c.backend, Backend::Bird);
        assert_eq!(c.ip, AddrSetting::Unset);
        assert_eq!(c.autodetect_v4, Autodetect::FirstFound);
        let p = c.pool_v4.unwrap();
        assert_eq!(p.cidr.to_string(), "192.168.0.0/16");
        assert_eq!(p.block_size, 26);
        assert_eq!(
            (p.ipip_mode, p.vxlan_mode),
            (EncapMode::Never, EncapMode::Never)
        );
        assert!(p.nat_outgoing, "Calico's default pool masquerades");
        assert_eq!(p.node_selector, "all()");
        assert!(c.pool_v6.is_none());
        assert_eq!(c.state_dir, "/var/lib/calico");
    }

    #[test]
    fn pools_backends_addresses() {
        let c = cfg(&[
            ("NODENAME", "n"),
            ("CALICO_NETWORKING_BACKEND", "vxlan"),
            ("CALICO_IPV4POOL_CIDR", "10.244.1.7/16"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
            ("CALICO_IPV4POOL_VXLAN", "Always"),
            ("CALICO_IPV4POOL_NAT_OUTGOING", "false"),
            ("CALICO_IPV6POOL_CIDR", "fd00:1::/48"),
            ("CALICO_IPV6POOL_VXLAN", "CrossSubnet"),
            ("IP", "10.0.0.5/24"),
            ("IP6", "autodetect"),
            ("IP_AUTODETECTION_METHOD", "interface=eth.*,ens[0-9]+"),
            ("IP6_AUTODETECTION_METHOD", "cidr=fd00::/8"),
        ])
        .unwrap();
        assert_eq!(c.backend, Backend::Vxlan);
        let p = c.pool_v4.unwrap();
        assert_eq!(p.cidr.to_string(), "10.244.0.0/16");
        assert_eq!(
            (p.block_size, p.vxlan_mode, p.nat_outgoing),
            (24, EncapMode::Always, false)
        );
        let p6 = c.pool_v6.unwrap();
        assert_eq!(
            (p6.block_size, p6.vxlan_mode, p6.nat_outgoing),
            (122, EncapMode::CrossSubnet, false)
        );
        assert_eq!(c.ip, AddrSetting::Fixed("10.0.0.5/24".parse().unwrap()));
        assert_eq!(c.ip6, AddrSetting::Autodetect);
        assert_eq!(
            c.autodetect_v4,
            Autodetect::Interface(vec!["eth.*".into(), "ens[0-9]+".into()])
        );
        assert_eq!(
            c.autodetect_v6,
            Autodetect::Cidr(vec!["fd00::/8".parse().unwrap()])
        );
        let c = cfg(&[
            ("NODENAME", "n"),
            ("NO_DEFAULT_POOLS", "true"),
            ("CALICO_IPV6POOL_CIDR", "fd00::/48"),
        ])
        .unwrap();
        assert!(c.pool_v4.is_none() && c.pool_v6.is_none());
        let c = cfg(&[("NODENAME", "n"), ("IP", "10.1.2.3")]).unwrap();
        assert_eq!(c.ip, AddrSetting::Fixed("10.1.2.3/32".parse().unwrap()));
    }

    #[test]
    fn felix_overrides() {
        let fields = felix_fields();
        assert!(fields.len() > 50, "{fields:?}");
        assert!(fields.iter().any(|f| f == "healthPort"));
        let c = cfg(&[
            ("NODENAME", "n"),
            ("FELIX_HEALTHENABLED", "True"),
            ("FELIX_HEALTHPORT", "9199"),
            ("FELIX_LOGSEVERITYSCREEN", "Debug"),
            ("FELIX_VXLANVNI", "4097"),
            ("FELIX_NOSUCHTHING", "1"),
        ])
        .unwrap();
        assert_eq!(c.felix_env.get("healthEnabled"), Some(&Value::Bool(true)));
        assert_eq!(
            c.felix_env.get("healthPort"),
            Some(&serde_json::json!(9199))
        );
        assert_eq!(
            c.felix_env.get("logSeverityScreen"),
            Some(&serde_json::json!("Debug"))
        );
        assert_eq!(c.felix_env.get("vxlanVNI"), Some(&serde_json::json!(4097)));
        assert_eq!(c.felix_env.len(), 4);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (vec![("NODENAME", "bad_name")], "NODENAME"),
            (
                vec![("NODENAME", "n"), ("CALICO_NETWORKING_BACKEND", "gobgp")],
                "CALICO_NETWORKING_BACKEND",
            ),
            (vec![("NODENAME", "n"), ("IP", "10.0.0.300")], "IP"),
            (vec![("NODENAME", "n"), ("IP", "fd00::1")], "IP"),
            (vec![("NODENAME", "n"), ("IP6", "10.0.0.1")], "IP6"),
            (
                vec![
                    ("NODENAME", "n"),
                    ("IP_AUTODETECTION_METHOD", "interface=("),
                ],
                "IP_AUTODETECTION_METHOD",
            ),
            (
                vec![("NODENAME", "n"), ("IP_AUTODETECTION_METHOD", "magic")],
                "IP_AUTODETECTION_METHOD",
            ),
            (
                vec![("NODENAME", "n"), ("CALICO_IPV4POOL_CIDR", "fd00::/48")],
                "CALICO_IPV4POOL_CIDR",
            ),
            (
                vec![("NODENAME", "n"), ("CALICO_IPV4POOL_IPIP", "Sometimes")],
                "CALICO_IPV4POOL_IPIP",
            ),
            (
                vec![
                    ("NODENAME", "n"),
                    ("CALICO_IPV4POOL_IPIP", "Always"),
                    ("CALICO_IPV4POOL_VXLAN", "Always"),
                ],
                "CALICO_IPV4POOL_IPIP",
            ),
            (
                vec![("NODENAME", "n"), ("CALICO_IPV4POOL_NODE_SELECTOR", "a ==")],
                "CALICO_IPV4POOL_NODE_SELECTOR",
            ),
            (
                vec![("NODENAME", "n"), ("NO_DEFAULT_POOLS", "perhaps")],
                "NO_DEFAULT_POOLS",
            ),
            (vec![("NODENAME", "n"), ("AS", "4294967296")], "AS"),
        ] {
            let e = cfg(&pairs).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}: {e}");
        }
    }
}
