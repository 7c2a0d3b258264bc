//! Finding the node's address, as Calico's `IP_AUTODETECTION_METHOD`s do.
//!
//! [`choose`] is pure: it picks from a list of interfaces and their
//! addresses; [`detect`] reads them from the kernel (and, for `can-reach`,
//! asks the kernel which source address it would use — a UDP `connect`,
//! which sends nothing).

use std::net::{IpAddr, SocketAddr, UdpSocket};

use calico_dataplane::Netlink;
use ipnet::IpNet;
use regex::Regex;

use crate::config::Autodetect;

/// Interfaces first-found never picks (Calico's default exclusions).
pub const DEFAULT_EXCLUDES: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo$",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan.calico.*",
    "^vxlan-v6.calico.*",
    "^wireguard.cali.*",
    "^wg-v6.cali.*",
    "^nodelocaldns.*",
    "^podman.*",
];

/// One interface and its addresses.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub addrs: Vec<IpNet>,
}

fn usable(net: &IpNet, v6: bool) -> bool {
    let a = net.addr();
    if a.is_ipv6() != v6 || a.is_loopback() || a.is_multicast() || a.is_unspecified() {
        return false;
    }
    match a {
        IpAddr::V4(v) => !v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) != 0xfe80,
    }
}

fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .any(|r| r.is_match(name))
}

/// Picks an address of the family `v6` by `method` (`can-reach` is
/// resolved by [`detect`] into the source address, given as `reach`).
pub fn choose(
    method: &Autodetect,
    ifaces: &[Iface],
    v6: bool,
    reach: Option<IpAddr>,
) -> Option<IpNet> {
    let defaults: Vec<String> = DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect();
    let pick = |skip: &dyn Fn(&str) -> bool, want: &dyn Fn(&IpNet) -> bool| {
        ifaces
            .iter()
            .filter(|i| !skip(&i.name))
            .flat_map(|i| i.addrs.iter())
            .find(|a| usable(a, v6) && want(a))
            .copied()
    };
    match method {
        Autodetect::FirstFound => pick(&|n| matches_any(n, &defaults), &|_| true),
        Autodetect::SkipInterface(skip) => pick(
            &|n| matches_any(n, &defaults) || matches_any(n, skip),
            &|_| true,
        ),
        Autodetect::Interface(pats) => pick(&|n| !matches_any(n, pats), &|_| true),
        Autodetect::Cidr(nets) => pick(&|_| false, &|a| nets.iter().any(|n| n.contains(&a.addr()))),
        Autodetect::CanReach(_) => {
            let src = reach?;
            pick(&|_| false, &|a| a.addr() == src)
        }
    }
}

/// Detects the address from this namespace's interfaces.
pub fn detect(method: &Autodetect, v6: bool) -> Result<Option<IpNet>, String> {
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    let links = nl.links().map_err(|e| e.to_string())?;
    let addrs = nl.all_addresses().map_err(|e| e.to_string())?;
    let mut ifaces: Vec<Iface> = links
        .iter()
        .filter(|l| l.up)
        .map(|l| Iface {
            name: l.name.clone(),
            addrs: addrs
                .iter()
                .filter(|(i, _)| *i == l.index)
                .map(|(_, a)| *a)
                .collect(),
        })
        .collect();
    ifaces.sort_by_key(|i| links.iter().position(|l| l.name == i.name));
    let reach = match method {
        Autodetect::CanReach(dest) => Some(source_toward(dest, v6)?),
        _ => None,
    };
    Ok(choose(method, &ifaces, v6, reach))
}

/// The source address the kernel picks toward `dest` (an address or a host
/// name); nothing is sent.
fn source_toward(dest: &str, v6: bool) -> Result<IpAddr, String> {
    use std::net::ToSocketAddrs;
    let target: SocketAddr = match dest.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, 53),
        Err(_) => (dest, 53)
            .to_socket_addrs()
            .map_err(|e| format!("can-reach={dest}: {e}"))?
            .find(|a| a.is_ipv6() == v6)
            .ok_or_else(|| format!("can-reach={dest}: no address of this family"))?,
    };
    let bind: SocketAddr = if v6 { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .map_err(|e| format!("{e}"))?;
    let sock = UdpSocket::bind(bind).map_err(|e| format!("can-reach={dest}: {e}"))?;
    sock.connect(target)
        .map_err(|e| format!("can-reach={dest}: no route ({e})"))?;
    sock.local_addr()
        .map(|a| a.ip())
        .map_err(|e| format!("can-reach={dest}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifaces() -> Vec<Iface> {
        let i = |n: &str, a: &[&str]| Iface {
            name: n.into(),
            addrs: a.iter().map(|s| s.parse().unwrap()).collect(),
        };
        vec![
            i("lo", &["127.0.0.1/8", "::1/128"]),
            i("docker0", &["172.17.0.1/16"]),
            i("cali1234", &["169.254.1.1/32"]),
            i("eth0", &["fe80::1/64", "10.0.0.5/24", "fd00::5/64"]),
            i("eth1", &["192.168.7.2/24"]),
        ]
    }

    #[test]
    fn methods() {
        let f = ifaces();
        let a = |m: Autodetect, v6: bool| choose(&m, &f, v6, None).map(|n| n.to_string());
        assert_eq!(
            a(Autodetect::FirstFound, false).as_deref(),
            Some("10.0.0.5/24")
        );
        assert_eq!(
            a(Autodetect::FirstFound, true).as_deref(),
            Some("fd00::5/64")
        );
        assert_eq!(
            a(Autodetect::Interface(vec!["eth1".into()]), false).as_deref(),
            Some("192.168.7.2/24")
        );
        assert_eq!(
            a(Autodetect::Interface(vec!["docker.*".into()]), false).as_deref(),
            Some("172.17.0.1/16"),
            "interface= overrides the default exclusions"
        );
        assert_eq!(
            a(Autodetect::SkipInterface(vec!["eth0".into()]), false).as_deref(),
            Some("192.168.7.2/24")
        );
        assert_eq!(
            a(
                Autodetect::Cidr(vec!["192.168.0.0/16".parse().unwrap()]),
                false
            )
            .as_deref(),
            Some("192.168.7.2/24")
        );
        assert_eq!(a(Autodetect::Interface(vec!["wlan.*".into()]), false), None);
        let reach = choose(
            &Autodetect::CanReach("192.168.7.1".into()),
            &f,
            false,
            Some("192.168.7.2".parse().unwrap()),
        );
        assert_eq!(
            reach.map(|n| n.to_string()).as_deref(),
            Some("192.168.7.2/24")
        );
    }
}
