//! calico-node's nftables table `inet calico`: NAT outgoing, floating IPs
//! and anti-spoofing, rendered as one `nft -f` document (pure) and applied
//! as one atomic transaction that replaces the whole table.
//!
//! - NAT outgoing: traffic from a pool with `natOutgoing` to a destination
//!   outside every pool is masqueraded (`fully-random`), as Calico does, or
//!   SNATed to `natOutgoingAddress` (IPv4) when that is set; with
//!   `natOutgoingExclusions: IPPoolsAndHostIPs` traffic to host IPs (every
//!   node's BGP address) is not NATed either.
//! - Floating IPs (`ipNATs` of local endpoints), only with FelixConfiguration
//!   `floatingIPs: Enabled` (or for OpenStack endpoints), as Felix: traffic
//!   to the external address is DNATed to the pod (prerouting and output);
//!   the pod's own traffic leaving the pools is SNATed to its external
//!   address; replies follow conntrack.
//! - Anti-spoofing: a packet from a `cali*` interface must come from one of
//!   that endpoint's addresses or `allowSpoofedSourcePrefixes`; interfaces
//!   no endpoint claims send nothing.
//!
//! The document carries a hash of itself as the table's comment: when the
//! kernel's table already has it, nothing is applied (no churn on resync or
//! restart).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{NatSettings, PoolInfo, WorkloadInfo};

/// The table's family and name.
pub const TABLE: &str = "inet calico";

fn elements(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {} }};", items.join(", "))
    }
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The whole table for these pools, local workloads, host IPs (every
/// node's address) and NAT settings.
pub fn ruleset(
    pools: &[PoolInfo],
    workloads: &[WorkloadInfo],
    host_ips: &[IpAddr],
    nat: &NatSettings,
) -> String {
    let live: Vec<&PoolInfo> = pools.iter().filter(|p| !p.disabled).collect();
    let fam = |v6: bool, nets: &mut dyn Iterator<Item = IpNet>| -> Vec<String> {
        let mut v: Vec<String> = nets
            .filter(|n| n.addr().is_ipv6() == v6)
            .map(|n| n.to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let all4 = fam(false, &mut pools.iter().map(|p| p.cidr));
    let all6 = fam(true, &mut pools.iter().map(|p| p.cidr));
    let masq4 = fam(
        false,
        &mut live.iter().filter(|p| p.nat_outgoing).map(|p| p.cidr),
    );
    let masq6 = fam(
        true,
        &mut live.iter().filter(|p| p.nat_outgoing).map(|p| p.cidr),
    );
    let hosts = |v6: bool| -> Vec<String> {
        let mut v: Vec<String> = host_ips
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let (hosts4, hosts6) = (hosts(false), hosts(true));
    // Anti-spoofing is checked on every packet a workload sends, before
    // conntrack: a workload's own addresses (host prefixes, nearly all
    // entries) go in hash sets, one exact lookup per packet; only wider
    // prefixes (`allowSpoofedSourcePrefixes`, an endpoint network wider
    // than one address) need the interval sets, consulted after a miss.
    let (mut wl4, mut wl4n, mut wl6, mut wl6n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in workloads {
        for n in w.nets.iter().chain(w.allow_spoof.iter()) {
            // Endpoints passed validation (`sync::admit`); quoting as the
            // policy renderer does keeps the document whole regardless.
            let iface = calico_policy::nft::quote(&w.iface);
            let host = n.prefix_len() == n.max_prefix_len();
            let e = if host {
                format!("{iface} . {}", n.addr())
            } else {
                format!("{iface} . {}", n.trunc())
            };
            match (n.addr().is_ipv4(), host) {
                (true, true) => wl4.push(e),
                (true, false) => wl4n.push(e),
                (false, true) => wl6.push(e),
                (false, false) => wl6n.push(e),
            }
        }
    }
    for v in [&mut wl4, &mut wl4n, &mut wl6, &mut wl6n] {
        v.sort();
        v.dedup();
    }

    let mut body = String::new();
    let _ = writeln!(
        body,
        "  set all4 {{ type ipv4_addr; flags interval;{} }}",
        elements(&all4)
    );
    let _ = writeln!(
        body,
        "  set all6 {{ type ipv6_addr; flags interval;{} }}",
        elements(&all6)
    );
    let _ = writeln!(
        body,
        "  set masq4 {{ type ipv4_addr; flags interval;{} }}",
        elements(&masq4)
    );
    let _ = writeln!(
        body,
        "  set masq6 {{ type ipv6_addr; flags interval;{} }}",
        elements(&masq6)
    );
    let _ = writeln!(
        body,
        "  set hosts4 {{ type ipv4_addr; flags interval;{} }}",
        elements(&hosts4)
    );
    let _ = writeln!(
        body,
        "  set hosts6 {{ type ipv6_addr; flags interval;{} }}",
        elements(&hosts6)
    );
    for (name, family, items, interval) in [
        ("wl4", "ipv4_addr", &wl4, ""),
        ("wl4n", "ipv4_addr", &wl4n, " flags interval;"),
        ("wl6", "ipv6_addr", &wl6, ""),
        ("wl6n", "ipv6_addr", &wl6n, " flags interval;"),
    ] {
        let _ = writeln!(
            body,
            "  set {name} {{ type ifname . {family};{interval}{} }}",
            elements(items)
        );
    }
    let mut dnat = String::new();
    let mut snat = String::new();
    for w in workloads.iter().filter(|w| nat.floating_ips || w.openstack) {
        for (int, ext) in &w.nats {
            let (f, all) = match (int, ext) {
                (IpAddr::V4(_), IpAddr::V4(_)) => ("ip", "@all4"),
                (IpAddr::V6(_), IpAddr::V6(_)) => ("ip6", "@all6"),
                _ => continue,
            };
            let _ = writeln!(dnat, "    {f} daddr {ext} dnat {f} to {int}");
            let _ = writeln!(
                snat,
                "    {f} saddr {int} {f} daddr != {all} snat {f} to {ext}"
            );
        }
    }
    let _ = writeln!(
        body,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{dnat}  }}"
    );
    let _ = writeln!(
        body,
        "  chain output {{\n    type nat hook output priority -100; policy accept;\n{dnat}  }}"
    );
    let (not_hosts4, not_hosts6) = if nat.exclude_host_ips {
        (" ip daddr != @hosts4", " ip6 daddr != @hosts6")
    } else {
        ("", "")
    };
    let action4 = match nat.outgoing_address {
        Some(a) => format!("snat ip to {a} fully-random"),
        None => "masquerade fully-random".to_string(),
    };
    let _ = writeln!(
        body,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{snat}    \
         ip saddr @masq4 ip daddr != @all4{not_hosts4} {action4}\n    \
         ip6 saddr @masq6 ip6 daddr != @all6{not_hosts6} masquerade fully-random\n  }}"
    );
    let wider = |items: &[String], f: &str, set: &str| {
        if items.is_empty() {
            String::new()
        } else {
            format!(" iifname . {f} saddr != @{set}")
        }
    };
    let _ = writeln!(
        body,
        "  chain antispoof {{\n    type filter hook prerouting priority raw; policy accept;\n    \
         iifname \"cali*\" meta nfproto ipv4 iifname . ip saddr != @wl4{} drop\n    \
         iifname \"cali*\" meta nfproto ipv6 ip6 saddr != fe80::/10 iifname . ip6 saddr != @wl6{} drop\n  }}",
        wider(&wl4n, "ip", "wl4n"),
        wider(&wl6n, "ip6", "wl6n"),
    );
    let hash = fnv1a(&body);
    format!("table {TABLE} {{\n  comment \"h:{hash:016x}\"\n{body}}}\n")
}

/// The hash marker of a rendered table.
pub fn marker(doc: &str) -> Option<&str> {
    doc.lines()
        .find_map(|l| l.trim().strip_prefix("comment \""))
        .map(|l| l.trim_end_matches('"'))
}

/// Makes the kernel's table equal to `doc` (one atomic transaction), unless
/// it already is; `Ok(true)` when something was applied.
pub fn apply(doc: &str) -> Result<bool, String> {
    use std::process::{Command, Stdio};
    let current = Command::new("nft")
        .args(["list", "table", "inet", "calico"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nft (install nftables): {e}"))?;
    let current = String::from_utf8_lossy(&current.stdout);
    if marker(&current).is_some() && marker(&current) == marker(doc) {
        return Ok(false);
    }
    // Create-if-missing, delete, recreate: one transaction.
    nft_script(&format!("table {TABLE} {{}}\ndelete table {TABLE}\n{doc}"))?;
    Ok(true)
}

/// Runs `script` with `nft -f -`: one atomic transaction.
pub fn nft_script(script: &str) -> Result<(), String> {
    nft_finish(nft_start(script)?)
}

/// Starts `nft -f -` on `script` without waiting for it ([`nft_finish`]
/// waits). nft reads all of its input before it works on it; a child whose
/// input could not be written is ended, not left behind.
pub fn nft_start(script: &str) -> Result<std::process::Child, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (install nftables): {e}"))?;
    if let Some(mut s) = child.stdin.take()
        && let Err(e) = s.write_all(script.as_bytes())
    {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.to_string());
    }
    Ok(child)
}

/// Waits for an [`nft_start`]ed child: its error output when it failed.
pub fn nft_finish(child: std::process::Child) -> Result<(), String> {
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Removes the table (not used by the agent on exit: the dataplane stays).
pub fn remove() -> Result<(), String> {
    let out = std::process::Command::new("nft")
        .args(["delete", "table", "inet", "calico"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::Encap;
    use super::*;

    fn pool(cidr: &str, nat: bool) -> PoolInfo {
        PoolInfo {
            cidr: cidr.parse().unwrap(),
            vxlan: Encap::Never,
            ipip: Encap::Never,
            nat_outgoing: nat,
            disabled: false,
        }
    }

    fn enabled() -> NatSettings {
        NatSettings {
            floating_ips: true,
            ..NatSettings::default()
        }
    }

    fn floating(openstack: bool) -> WorkloadInfo {
        WorkloadInfo {
            iface: "cali1234".into(),
            nets: vec!["10.81.0.5/32".parse().unwrap()],
            nats: vec![("10.81.0.5".parse().unwrap(), "172.30.5.5".parse().unwrap())],
            allow_spoof: vec![],
            openstack,
        }
    }

    fn postrouting(doc: &str) -> Vec<&str> {
        doc.lines()
            .skip_while(|l| !l.contains("chain postrouting"))
            .skip(2)
            .take_while(|l| l.trim() != "}")
            .map(str::trim)
            .collect()
    }

    #[test]
    fn floating_ips_only_when_enabled_or_openstack() {
        let pools = [pool("10.81.0.0/16", true)];
        let off = NatSettings::default();
        let doc = ruleset(&pools, &[floating(false)], &[], &off);
        assert!(!doc.contains("172.30.5.5"), "floatingIPs: Disabled: {doc}");
        // Felix programs OpenStack's mappings regardless.
        let doc = ruleset(&pools, &[floating(true)], &[], &off);
        assert!(
            doc.contains("ip daddr 172.30.5.5 dnat ip to 10.81.0.5"),
            "{doc}"
        );
        let doc = ruleset(&pools, &[floating(false)], &[], &enabled());
        assert!(
            doc.contains("ip daddr 172.30.5.5 dnat ip to 10.81.0.5"),
            "{doc}"
        );
        assert!(
            doc.contains("ip saddr 10.81.0.5 ip daddr != @all4 snat ip to 172.30.5.5"),
            "{doc}"
        );
    }

    #[test]
    fn nat_outgoing_address_and_exclusions() {
        let pools = [pool("10.81.0.0/16", true), pool("fd00:81::/64", true)];
        let hosts: Vec<IpAddr> = vec![
            "172.31.0.2".parse().unwrap(),
            "172.31.0.1".parse().unwrap(),
            "172.31.0.1".parse().unwrap(),
            "fd00:31::1".parse().unwrap(),
        ];
        // Defaults: masquerade, host IPs NATed like any other destination.
        let doc = ruleset(&pools, &[], &hosts, &NatSettings::default());
        assert_eq!(
            postrouting(&doc),
            [
                "ip saddr @masq4 ip daddr != @all4 masquerade fully-random",
                "ip6 saddr @masq6 ip6 daddr != @all6 masquerade fully-random",
            ],
            "{doc}"
        );
        let nat = NatSettings {
            outgoing_address: Some("192.0.2.9".parse().unwrap()),
            exclude_host_ips: true,
            ..NatSettings::default()
        };
        let doc = ruleset(&pools, &[], &hosts, &nat);
        assert_eq!(
            postrouting(&doc),
            [
                "ip saddr @masq4 ip daddr != @all4 ip daddr != @hosts4 snat ip to 192.0.2.9 fully-random",
                "ip6 saddr @masq6 ip6 daddr != @all6 ip6 daddr != @hosts6 masquerade fully-random",
            ],
            "{doc}"
        );
        assert!(
            doc.contains(
                "set hosts4 { type ipv4_addr; flags interval; elements = { 172.31.0.1, 172.31.0.2 }; }"
            ),
            "{doc}"
        );
        assert!(
            doc.contains(
                "set hosts6 { type ipv6_addr; flags interval; elements = { fd00:31::1 }; }"
            ),
            "{doc}"
        );
    }

    #[test]
    fn renders_nat_floating_and_antispoof() {
        let pools = [
            pool("10.81.0.0/16", true),
            pool("10.82.0.0/16", false),
            pool("fd00:81::/64", true),
        ];
        let wl = [WorkloadInfo {
            iface: "cali1234".into(),
            nets: vec!["10.81.0.5/32".parse().unwrap()],
            nats: vec![("10.81.0.5".parse().unwrap(), "172.30.5.5".parse().unwrap())],
            allow_spoof: vec!["192.168.50.0/24".parse().unwrap()],
            openstack: false,
        }];
        let doc = ruleset(&pools, &wl, &[], &enabled());
        assert!(
            doc.contains(
                "set masq4 { type ipv4_addr; flags interval; elements = { 10.81.0.0/16 }; }"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("elements = { 10.81.0.0/16, 10.82.0.0/16 }"),
            "{doc}"
        );
        assert!(
            doc.contains("ip daddr 172.30.5.5 dnat ip to 10.81.0.5"),
            "{doc}"
        );
        assert!(
            doc.contains("ip saddr 10.81.0.5 ip daddr != @all4 snat ip to 172.30.5.5"),
            "{doc}"
        );
        // The endpoint's own address in the exact set, the wider prefix in
        // the interval set, consulted only after a miss.
        assert!(
            doc.contains(
                "set wl4 { type ifname . ipv4_addr; elements = { \"cali1234\" . 10.81.0.5 }; }"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("set wl4n { type ifname . ipv4_addr; flags interval; elements = { \"cali1234\" . 192.168.50.0/24 }; }"),
            "{doc}"
        );
        assert!(
            doc.contains("iifname . ip saddr != @wl4 iifname . ip saddr != @wl4n drop"),
            "{doc}"
        );
        assert!(doc.contains("iifname . ip6 saddr != @wl6 drop"), "{doc}");
        assert!(doc.contains("masquerade fully-random"), "{doc}");
        // Deterministic, and the marker changes with the content.
        assert_eq!(doc, ruleset(&pools, &wl, &[], &enabled()));
        assert_ne!(
            marker(&doc),
            marker(&ruleset(&pools[..1], &wl, &[], &enabled()))
        );
        assert!(marker(&doc).unwrap().starts_with("h:"));
    }

    #[test]
    fn interface_names_cannot_break_the_document() {
        let wl = [WorkloadInfo {
            iface: "cali\"; }\nx".into(),
            nets: vec!["10.81.0.5/32".parse().unwrap()],
            nats: vec![],
            allow_spoof: vec![],
            openstack: false,
        }];
        let doc = ruleset(&[pool("10.81.0.0/16", true)], &wl, &[], &enabled());
        let line = doc.lines().find(|l| l.contains("set wl4")).unwrap();
        assert!(
            line.contains("elements = { \"cali'; } x\" . 10.81.0.5 };"),
            "{doc}"
        );
    }

    #[test]
    fn disabled_pools_do_not_masquerade() {
        let mut p = pool("10.81.0.0/16", true);
        p.disabled = true;
        let doc = ruleset(&[p], &[], &[], &NatSettings::default());
        assert!(
            doc.contains("set masq4 { type ipv4_addr; flags interval; }"),
            "{doc}"
        );
        assert!(
            doc.contains(
                "set all4 { type ipv4_addr; flags interval; elements = { 10.81.0.0/16 }; }"
            )
        );
    }
}
