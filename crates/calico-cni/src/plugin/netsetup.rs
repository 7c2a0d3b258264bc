//! The pod's dataplane, as Calico's CNI plugin builds it.
//!
//! - A veth pair: the container end (`CNI_IFNAME`) is created directly in
//!   the pod's namespace (never moved there afterwards); the host end
//!   `cali…` has MAC ee:ee:ee:ee:ee:ee.
//! - Container: /32 and /128 addresses (IPv6 without DAD), a link-scope
//!   route to 169.254.1.1, a permanent neighbour entry 169.254.1.1 →
//!   ee:ee:ee:ee:ee:ee and the default route through it; for IPv6 the
//!   default route goes through the host end's link-local address.
//! - Host end: proxy ARP (it answers for 169.254.1.1 and everything else),
//!   no proxy delay, forwarding, route_localnet; IPv6 proxy NDP, forwarding,
//!   no router advertisements, and its link-local address (the pod's IPv6
//!   gateway) added at once instead of when the kernel's link watcher
//!   reports the carrier, up to a second later.
//! - Host: a `scope link` route per pod address through the host end.
//!
//! Why the neighbour entry: proxy ARP answers only for a destination the
//! host routes through another interface, so a host without a default
//! route (isolated, air-gapped) never answered for 169.254.1.1 and its
//! pods reached nothing (Calico has this trap). With the entry the pod
//! never asks; the host end takes any frame sent to its MAC and routes it.
//! It lives in the pod, so it needs neither calico-node nor anything on the
//! host, and goes with the pod (pods made by an earlier version lack it:
//! they still rely on proxy ARP, and CHECK names it missing). IPv6 needs
//! none: its gateway is the host end's own link-local address, which plain
//! NDP answers on any host.
//!
//! Everything hangs off the host end: deleting it removes the container end
//! and the host routes with it, which is how failures are undone. The host
//! end is named after the pod, not the sandbox, so DEL removes it only when
//! it is this container's ([`teardown_del`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_dataplane::netlink::{Error as NlError, Link};
use calico_dataplane::{NetNs, Netlink, Route, Scope, VethSpec, sysctl};
use cni_spec::error::CniError;
use ipnet::IpNet;

use super::endpoint::Holder;

/// The host end's MAC address.
pub const HOST_MAC: [u8; 6] = [0xee; 6];
/// The IPv4 gateway every pod uses: the pod has a permanent neighbour entry
/// for it at [`HOST_MAC`] (the host end's proxy ARP answers for it only
/// where the host routes it).
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The host end's IPv6 link-local address (EUI-64 of [`HOST_MAC`]).
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// [`GATEWAY_V6`] as the host end's link-local address.
fn gateway_v6_net() -> IpNet {
    IpNet::new(IpAddr::V6(GATEWAY_V6), 64).unwrap_or_else(|_| IpNet::from(IpAddr::V6(GATEWAY_V6)))
}

/// What to build for one pod interface.
#[derive(Debug, Clone)]
pub struct PodNet<'a> {
    pub host_veth: &'a str,
    pub ifname: &'a str,
    pub mtu: u32,
    pub ips: &'a [IpAddr],
    /// The container end's MAC (`hwAddr`, runtimeConfig `mac`); else random.
    pub container_mac: Option<[u8; 6]>,
    pub allow_ip_forwarding: bool,
}

/// What [`setup`] made.
#[derive(Debug, Clone)]
pub struct Made {
    pub host: Link,
    pub container: Link,
}

fn nl_err(e: NlError) -> CniError {
    CniError::new(100, e.to_string(), "")
}

fn io_err(e: std::io::Error) -> CniError {
    CniError::new(100, e.to_string(), "")
}

/// The host route for one pod address.
pub fn host_route(ip: IpAddr, host_index: u32) -> Route {
    let len = if ip.is_ipv4() { 32 } else { 128 };
    Route::new(IpNet::new(ip, len).unwrap_or_else(|_| IpNet::from(ip)))
        .dev(host_index)
        .scope(Scope::Link)
}

/// The container's permanent neighbour entries for the families in `ips`:
/// the IPv4 gateway at the host end's MAC (IPv6 resolves its gateway, the
/// host end's own address, by NDP).
pub fn container_neighbours(ips: &[IpAddr]) -> Vec<(IpAddr, [u8; 6])> {
    if ips.iter().any(IpAddr::is_ipv4) {
        vec![(IpAddr::V4(GATEWAY_V4), HOST_MAC)]
    } else {
        Vec::new()
    }
}

/// The container's routes through `index` for the families in `ips`.
pub fn container_routes(ips: &[IpAddr], index: u32) -> Vec<Route> {
    let mut out = Vec::new();
    if ips.iter().any(IpAddr::is_ipv4) {
        out.push(
            Route::new(IpNet::from(IpAddr::V4(GATEWAY_V4)))
                .dev(index)
                .scope(Scope::Link),
        );
        out.push(
            Route::new(IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).unwrap_or_default())
                .via(GATEWAY_V4.into())
                .dev(index),
        );
    }
    if ips.iter().any(IpAddr::is_ipv6) {
        out.push(
            Route::new(IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0).unwrap_or_default())
                .via(GATEWAY_V6.into())
                .dev(index),
        );
    }
    out
}

fn pod_nets(ips: &[IpAddr]) -> Vec<IpNet> {
    ips.iter()
        .map(|ip| {
            IpNet::new(*ip, if ip.is_ipv4() { 32 } else { 128 })
                .unwrap_or_else(|_| IpNet::from(*ip))
        })
        .collect()
}

/// Builds the pod's dataplane. On error, everything it made is removed.
pub fn setup(netns: &NetNs, p: &PodNet<'_>) -> Result<Made, CniError> {
    let mut host = Netlink::open().map_err(nl_err)?;
    // A host end left by an earlier attempt (or a dead pod of the same
    // name) is replaced, as Calico does.
    // (A DEL's detached deleter may be removing it right now: gone is fine.)
    if let Some(old) = host.link(p.host_veth).map_err(nl_err)? {
        match host.delete_link(old.index) {
            Err(e) if !e.is_not_found() => return Err(nl_err(e)),
            _ => {}
        }
    }
    host.create_veth(&VethSpec {
        name: p.host_veth,
        mac: Some(HOST_MAC),
        mtu: p.mtu,
        peer_name: p.ifname,
        peer_mac: p.container_mac,
        peer_netns: Some(netns.fd()),
    })
    .map_err(|e| {
        if e.is_exists() {
            CniError::new(
                100,
                format!(
                    "cannot create {} in {}: an interface of that name already exists there",
                    p.ifname,
                    netns.path().display()
                ),
                e.to_string(),
            )
        } else {
            nl_err(e)
        }
    })?;
    match finish(&mut host, netns, p) {
        Ok(made) => Ok(made),
        Err(e) => {
            if let Ok(Some(l)) = host.link(p.host_veth) {
                let _ = host.delete_link(l.index);
            }
            Err(e)
        }
    }
}

fn finish(host: &mut Netlink, netns: &NetNs, p: &PodNet<'_>) -> Result<Made, CniError> {
    let host_link = host.link(p.host_veth).map_err(nl_err)?.ok_or_else(|| {
        CniError::new(100, format!("{} vanished after creation", p.host_veth), "")
    })?;
    let has_v6 = p.ips.iter().any(IpAddr::is_ipv6);

    // Container side, on a thread inside the pod's namespace.
    let container = netns
        .run(|| container_side(p, has_v6))
        .map_err(|e| CniError::new(100, format!("enter {}: {e}", netns.path().display()), ""))??;

    // Host side: parameters first, so the link comes up configured.
    let v = p.host_veth;
    for (table, name, value) in [
        ("conf", "route_localnet", "1"),
        ("neigh", "proxy_delay", "0"),
        ("conf", "proxy_arp", "1"),
        ("conf", "forwarding", "1"),
    ] {
        sysctl::set_iface("ipv4", table, v, name, value).map_err(io_err)?;
    }
    if has_v6 {
        // No DAD: every host end has the same link-local address (one per
        // link, so no conflict), and it must answer the pod's first
        // neighbour solicitation instead of staying tentative for a second.
        for (name, value) in [
            ("accept_dad", "0"),
            ("accept_ra", "0"),
            ("proxy_ndp", "1"),
            ("forwarding", "1"),
        ] {
            sysctl::set_iface("ipv6", "conf", v, name, value).map_err(io_err)?;
        }
    }
    host.set_up(host_link.index).map_err(nl_err)?;
    if has_v6 {
        // The pod's IPv6 gateway, given now rather than when the kernel's
        // link watcher reports the carrier (up to a second later when the
        // two ends have the same ifindex): until then the host end sends
        // and answers no neighbour solicitation, and the pod's first
        // packets wait for a retransmit. The kernel's own is the same.
        host.add_address(host_link.index, gateway_v6_net(), true)
            .map_err(|e| {
                CniError::new(
                    100,
                    format!(
                        "cannot give {v} the IPv6 gateway address {GATEWAY_V6} (is IPv6 disabled on this host?)"
                    ),
                    e.to_string(),
                )
            })?;
    }
    for ip in p.ips {
        let route = host_route(*ip, host_link.index);
        if let Err(e) = host.add_route(&route) {
            if !e.is_exists() {
                return Err(nl_err(e));
            }
            let existing = host.routes(ip.is_ipv6()).map_err(nl_err)?;
            let other = existing.iter().find(|r| {
                r.dst == route.dst && r.table == route.table && r.oif != Some(host_link.index)
            });
            if other.is_some() {
                return Err(CniError::new(
                    100,
                    format!(
                        "route to {} already exists for an interface other than {v}",
                        route.dst
                    ),
                    "",
                ));
            }
        }
    }
    Ok(Made {
        host: host_link,
        container,
    })
}

fn container_side(p: &PodNet<'_>, has_v6: bool) -> Result<Link, CniError> {
    let mut nl = Netlink::open().map_err(nl_err)?;
    let link = nl.link(p.ifname).map_err(nl_err)?.ok_or_else(|| {
        CniError::new(
            100,
            format!("{} is missing in the pod namespace", p.ifname),
            "",
        )
    })?;
    if has_v6 {
        for iface in ["all", "default", "lo"] {
            sysctl::set_iface("ipv6", "conf", iface, "disable_ipv6", "0").map_err(io_err)?;
        }
        sysctl::set_iface("ipv6", "conf", p.ifname, "disable_ipv6", "0").map_err(io_err)?;
        sysctl::set_iface("ipv6", "conf", p.ifname, "accept_dad", "0").map_err(io_err)?;
    }
    nl.set_up(link.index).map_err(nl_err)?;
    for net in pod_nets(p.ips) {
        nl.add_address(link.index, net, net.addr().is_ipv6())
            .map_err(nl_err)?;
    }
    // Before the routes: no packet ever has to ask for the gateway.
    for (ip, mac) in container_neighbours(p.ips) {
        nl.set_neighbour(link.index, ip, mac).map_err(nl_err)?;
    }
    for route in container_routes(p.ips, link.index) {
        nl.add_route(&route).map_err(nl_err)?;
    }
    if p.allow_ip_forwarding {
        sysctl::set("net.ipv4.ip_forward", "1").map_err(io_err)?;
        if has_v6 {
            sysctl::set("net.ipv6.conf.all.forwarding", "1").map_err(io_err)?;
        }
    }
    // Report the MAC the kernel actually gave the container end.
    Ok(nl.link(p.ifname).map_err(nl_err)?.unwrap_or(link))
}

/// The environment variable that turns a `calico` process into the
/// deleter of one link (see [`Deletion::Background`]): `<ifindex>:<name>`.
pub const REAP_LINK_ENV: &str = "CALICO_RS_REAP_LINK";

/// How [`teardown`] deletes the host end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Wait for the kernel (undoing a failed ADD).
    Now,
    /// DEL: remove the host routes now, so the addresses can be reused at
    /// once, and leave deleting the veth pair to a detached process. The
    /// kernel takes tens of milliseconds (RCU grace periods) to delete a
    /// veth; the runtime need not wait for that. The link is deleted by
    /// index, so a new pod reusing the name is never touched, and an ADD
    /// that finds the old host end still there deletes it itself.
    Background,
}

/// Removes the pod's interfaces after a failed ADD (the host end is the
/// one this ADD made); what is already gone is fine. Deleting the veth
/// removes the host routes through it.
pub fn teardown(
    netns: Option<&NetNs>,
    ifname: &str,
    host_veth: &str,
    how: Deletion,
) -> Result<(), CniError> {
    let mut host = Netlink::open().map_err(nl_err)?;
    if let Some(l) = host.link(host_veth).map_err(nl_err)? {
        return remove_host_end(&mut host, &l, how);
    }
    // No host end: a pod interface of ours may still be in the namespace.
    netns.map_or(Ok(()), |ns| remove_container_end(ns, ifname))
}

/// What a DEL released, for [`teardown_del`].
#[derive(Debug, Clone, Default)]
pub struct Released {
    /// The host end's ifindex before the addresses were released. A new
    /// sandbox's ADD replaces the host end (a new index) before it routes
    /// anything, perhaps to an address just released; routes through the
    /// link seen before the release can only be older ones.
    pub host_index: Option<u32>,
    /// The addresses this container's handle held (none known when
    /// another IPAM plugin released them).
    pub ips: Vec<IpAddr>,
}

/// The host end's ifindex, if there is one and it can be read (a DEL
/// must not stop before releasing addresses for want of it: without it,
/// [`teardown_del`] only removes less).
pub fn host_end_index(host_veth: &str) -> Option<u32> {
    let mut host = Netlink::open().ok()?;
    host.link(host_veth).ok().flatten().map(|l| l.index)
}

/// DEL: removes this container's interfaces and nothing of another
/// sandbox's; what is already gone is fine.
///
/// The host end is named after the pod, so once the pod was added again in
/// a new sandbox the name is the new sandbox's, and a late DEL of the old
/// one must leave it. The host end is this container's when its peer is in
/// `netns` (compared by the kernel's namespace ids); when that cannot be
/// seen (namespace gone or not given), when `holder` says the endpoint is
/// this container's. An endpoint of another container always wins. The
/// container end in `netns` goes in any case, unless it is the peer of a
/// host end that is not ours (the same namespace handed to a new sandbox).
///
/// A host end left in place (no endpoint says whose it is, and its peer
/// cannot be seen) keeps no route to an address this DEL `released`:
/// nothing holds those any more, and such a route would make the next ADD
/// given one of them fail. The link itself goes with its peer's namespace
/// (the kernel deletes a veth pair with it); Felix removes routes through
/// `cali*` links that no endpoint has.
pub fn teardown_del(
    netns: Option<&NetNs>,
    ifname: &str,
    host_veth: &str,
    holder: &Holder,
    released: &Released,
) -> Result<(), CniError> {
    let mut host = Netlink::open().map_err(nl_err)?;
    let link = host.link(host_veth).map_err(nl_err)?;
    // Listing the link gave its peer's namespace an id here; now ask
    // which id `netns` has (none: the peer is elsewhere).
    let peer_in_netns = match (&link, netns) {
        (Some(l), Some(ns)) => match l.link_netnsid {
            Some(id) => host.netns_id(ns.fd()).ok().map(|ns_id| ns_id == Some(id)),
            None => None,
        },
        _ => None,
    };
    let ours = match (holder, peer_in_netns) {
        (Holder::Other(_), _) => false,
        (_, Some(seen)) => seen,
        (Holder::This, None) => true,
        (Holder::Nobody, None) => false,
    };
    if let Some(l) = &link {
        if ours {
            return remove_host_end(&mut host, l, Deletion::Background);
        }
        if !matches!(holder, Holder::Other(_)) && released.host_index == Some(l.index) {
            remove_routes_to(&mut host, l.index, &released.ips)?;
        }
        if peer_in_netns == Some(true) {
            return Ok(());
        }
    }
    netns.map_or(Ok(()), |ns| remove_container_end(ns, ifname))
}

/// Deletes the host routes to `ips` through link `index`.
fn remove_routes_to(host: &mut Netlink, index: u32, ips: &[IpAddr]) -> Result<(), CniError> {
    for v6 in [false, true] {
        let dsts: Vec<IpNet> = ips
            .iter()
            .filter(|ip| ip.is_ipv6() == v6)
            .map(|ip| host_route(*ip, index).dst)
            .collect();
        if dsts.is_empty() {
            continue;
        }
        for r in host.routes(v6).map_err(nl_err)? {
            if r.oif == Some(index) && dsts.contains(&r.dst) {
                match host.delete_route(&r) {
                    Err(e) if !e.is_not_found() => return Err(nl_err(e)),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn remove_host_end(host: &mut Netlink, l: &Link, how: Deletion) -> Result<(), CniError> {
    match how {
        Deletion::Now => match host.delete_link(l.index) {
            Err(e) if !e.is_not_found() => Err(nl_err(e)),
            _ => Ok(()),
        },
        Deletion::Background => {
            for v6 in [false, true] {
                for r in host.routes(v6).map_err(nl_err)? {
                    if r.oif == Some(l.index) {
                        match host.delete_route(&r) {
                            Err(e) if !e.is_not_found() => return Err(nl_err(e)),
                            _ => {}
                        }
                    }
                }
            }
            if spawn_reaper(l).is_err() {
                // Could not start the deleter: delete it here.
                match host.delete_link(l.index) {
                    Err(e) if !e.is_not_found() => return Err(nl_err(e)),
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Deletes `ifname` in `ns` if it is a veth (its peer goes with it).
fn remove_container_end(ns: &NetNs, ifname: &str) -> Result<(), CniError> {
    let r = ns.run(|| -> Result<(), NlError> {
        let mut nl = Netlink::open()?;
        if let Some(l) = nl.link(ifname)?
            && l.kind.as_deref() == Some("veth")
        {
            match nl.delete_link(l.index) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    });
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(nl_err(e)),
        // The namespace went away under us: nothing left inside it.
        Err(_) => Ok(()),
    }
}

fn spawn_reaper(l: &Link) -> std::io::Result<()> {
    use std::process::{Command, Stdio};
    // Detached: no stdio (the runtime reads our stdout to EOF), not waited for.
    Command::new("/proc/self/exe")
        .env(REAP_LINK_ENV, format!("{}:{}", l.index, l.name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
}

/// The detached deleter: deletes link `<ifindex>` if it still has `<name>`.
pub fn reap(spec: &str) -> Result<(), String> {
    let (index, name) = spec
        .split_once(':')
        .ok_or_else(|| format!("{REAP_LINK_ENV} must be <ifindex>:<name>"))?;
    let index: u32 = index
        .parse()
        .map_err(|_| format!("{REAP_LINK_ENV}: bad index {index:?}"))?;
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    match nl.link(name).map_err(|e| e.to_string())? {
        Some(l) if l.index == index => match nl.delete_link(index) {
            Err(e) if !e.is_not_found() => Err(e.to_string()),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks the pod's dataplane against `p`; returns what is wrong.
pub fn check(netns: &NetNs, p: &PodNet<'_>) -> Result<Vec<String>, CniError> {
    let mut problems = Vec::new();
    let mut host = Netlink::open().map_err(nl_err)?;
    let host_link = host.link(p.host_veth).map_err(nl_err)?;
    match &host_link {
        None => problems.push(format!("host interface {} is missing", p.host_veth)),
        Some(l) => {
            if l.mac != Some(HOST_MAC) {
                problems.push(format!(
                    "host interface {} does not have MAC ee:ee:ee:ee:ee:ee",
                    p.host_veth
                ));
            }
            if !l.up {
                problems.push(format!("host interface {} is down", p.host_veth));
            }
            let v4 = host.routes(false).map_err(nl_err)?;
            let v6 = host.routes(true).map_err(nl_err)?;
            for ip in p.ips {
                let want = host_route(*ip, l.index);
                let have = if ip.is_ipv4() { &v4 } else { &v6 };
                if !have.iter().any(|r| r.dst == want.dst && r.oif == want.oif) {
                    problems.push(format!(
                        "host route {} dev {} is missing",
                        want.dst, p.host_veth
                    ));
                }
            }
            if p.ips.iter().any(IpAddr::is_ipv6)
                && !host
                    .addresses(l.index)
                    .map_err(nl_err)?
                    .contains(&gateway_v6_net())
            {
                problems.push(format!(
                    "host interface {} lacks the IPv6 gateway address {GATEWAY_V6}",
                    p.host_veth
                ));
            }
            match sysctl::get_iface("ipv4", "conf", p.host_veth, "proxy_arp") {
                Ok(v) if v == "1" => {}
                _ => problems.push(format!("proxy ARP is off on {}", p.host_veth)),
            }
        }
    }
    let inside = netns
        .run(|| -> Result<Vec<String>, NlError> {
            let mut problems = Vec::new();
            let mut nl = Netlink::open()?;
            let Some(link) = nl.link(p.ifname)? else {
                problems.push(format!("{} is missing in the pod namespace", p.ifname));
                return Ok(problems);
            };
            if !link.up {
                problems.push(format!("{} is down", p.ifname));
            }
            let addrs = nl.addresses(link.index)?;
            for net in pod_nets(p.ips) {
                if !addrs.contains(&net) {
                    problems.push(format!("address {net} is missing on {}", p.ifname));
                }
            }
            let neighbours = nl.neighbours(link.index)?;
            for (ip, mac) in container_neighbours(p.ips) {
                if !neighbours.contains(&(ip, mac)) {
                    problems.push(format!(
                        "neighbour {ip} lladdr {} (permanent) is missing on {} in the pod",
                        mac_string(mac),
                        p.ifname
                    ));
                }
            }
            let mut routes = nl.routes(false)?;
            routes.extend(nl.routes(true)?);
            for want in container_routes(p.ips, link.index) {
                if !routes
                    .iter()
                    .any(|r| r.dst == want.dst && r.gateway == want.gateway && r.oif == want.oif)
                {
                    let via = want
                        .gateway
                        .map(|g| format!(" via {g}"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "route {}{via} dev {} is missing in the pod",
                        want.dst, p.ifname
                    ));
                }
            }
            Ok(problems)
        })
        .map_err(|e| CniError::new(100, format!("enter {}: {e}", netns.path().display()), ""))?
        .map_err(nl_err)?;
    problems.extend(inside);
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_v6_is_the_eui64_of_the_host_mac() {
        // EUI-64: flip the universal/local bit of the first octet, insert ff:fe.
        let m = HOST_MAC;
        let eui = [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
        let mut octets = [0u8; 16];
        octets[0] = 0xfe;
        octets[1] = 0x80;
        octets[8..].copy_from_slice(&eui);
        assert_eq!(Ipv6Addr::from(octets), GATEWAY_V6);
        assert_eq!(GATEWAY_V6.to_string(), "fe80::ecee:eeff:feee:eeee");
    }

    #[test]
    fn routes_per_family() {
        let v4: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let r = container_routes(&v4, 3);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].dst.to_string(), "169.254.1.1/32");
        assert_eq!(r[0].scope, Scope::Link);
        assert_eq!(r[1].gateway, Some(IpAddr::V4(GATEWAY_V4)));
        let dual: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let r = container_routes(&dual, 3);
        assert_eq!(r.len(), 3);
        assert_eq!(r[2].dst.to_string(), "::/0");
        assert_eq!(host_route(dual[1], 9).dst.to_string(), "fd00::1/128");
    }

    #[test]
    fn the_ipv4_gateway_is_pinned_to_the_host_mac() {
        let v6: Vec<IpAddr> = vec!["fd00::1".parse().unwrap()];
        assert!(container_neighbours(&v6).is_empty());
        let dual: Vec<IpAddr> = vec!["fd00::1".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        assert_eq!(
            container_neighbours(&dual),
            vec![(IpAddr::V4(GATEWAY_V4), HOST_MAC)]
        );
        assert_eq!(mac_string(HOST_MAC), "ee:ee:ee:ee:ee:ee");
    }
}
