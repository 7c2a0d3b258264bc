//! Applying a [`Desired`] dataplane to the kernel: read what is there, change
//! only the difference. Calico-node owns routes with protocol
//! [`PROTO_CALICO`] in the main table, the `vxlan.calico` device with its
//! neighbour and forwarding entries, and routes through `cali*` interfaces;
//! nothing else is touched, and what is already right is left alone (a
//! restart does not flap anything).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use calico_dataplane::netlink::{Error as NlError, Kind, Route, Scope, TABLE_MAIN};
use calico_dataplane::{Netlink, sysctl};
use ipnet::IpNet;

use super::model::{Desired, VxlanDevice};

/// The route protocol of calico-node's routes (Felix uses 80).
pub const PROTO_CALICO: u8 = 80;
/// The VXLAN device.
pub const VXLAN_DEVICE: &str = "vxlan.calico";
/// Prefix of workload interfaces.
pub const WORKLOAD_PREFIX: &str = "cali";

/// What IP-in-IP adds to a packet (`ipipMTU` 0: the underlay's MTU less this).
pub const IPIP_OVERHEAD: u32 = 20;

/// The IPIP device the kernel's ipip module creates.
pub const IPIP_DEVICE: &str = "tunl0";
/// What readiness says when IPIP pools exist but the kernel cannot do IPIP.
pub const IPIP_MISSING: &str = "IPIP pools need the kernel's ipip module (CONFIG_NET_IPIP): \
     this kernel has no tunl0, IPIP routes are not programmed";

/// What one pass changed, and what it could not do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: usize,
    pub removed: usize,
    pub problems: Vec<String>,
    /// When a route left alone for its new interface's grace period is
    /// due to be looked at again (the earliest such), if any.
    pub recheck_at: Option<Instant>,
}

/// How long a new workload interface's routes are left alone though no
/// endpoint claims them: the plugin routes a new pod before it writes the
/// pod's endpoint (Felix's route clean-up grace period, 10 s).
pub const GRACE: Duration = Duration::from_secs(10);

/// When each workload interface (by index) was first seen, for [`GRACE`].
#[derive(Debug, Default)]
pub struct Grace(HashMap<u32, Instant>);

impl Grace {
    /// Notes the interfaces there `now` and forgets those gone.
    fn observe(&mut self, ifaces: &HashMap<u32, &str>, now: Instant) {
        self.0.retain(|i, _| ifaces.contains_key(i));
        for i in ifaces.keys() {
            self.0.entry(*i).or_insert(now);
        }
    }

    /// When interface `index`'s grace period ends, if it is still in it
    /// at `now`.
    fn young(&self, index: u32, now: Instant) -> Option<Instant> {
        self.0
            .get(&index)
            .map(|seen| *seen + GRACE)
            .filter(|end| *end > now)
    }
}

/// `proto kernel`: the kernel's own routes (IPv6 link-local on every link).
const PROTO_KERNEL: u8 = 2;

fn route_of(dst: IpNet) -> Route {
    Route::new(dst).protocol(PROTO_CALICO)
}

fn ensure_vxlan(nl: &mut Netlink, dev: &VxlanDevice, c: &mut Changes) -> Result<u32, NlError> {
    let mtu = if dev.mtu > 0 {
        dev.mtu
    } else {
        nl.mtu_of_address(IpAddr::V4(dev.local))?
            .unwrap_or(1500)
            .saturating_sub(crate::startup::VXLAN_OVERHEAD)
    };
    let existing = nl.link(VXLAN_DEVICE)?;
    let info = nl.vxlan_info(VXLAN_DEVICE)?;
    let right = existing.as_ref().is_some_and(|l| l.mac == Some(dev.mac))
        && info == Some((dev.vni, Some(dev.local), dev.port));
    if !right {
        if let Some(l) = existing {
            nl.delete_link(l.index)?;
            c.removed += 1;
        }
        nl.create_vxlan(
            VXLAN_DEVICE,
            dev.vni,
            dev.local,
            dev.port,
            mtu,
            Some(dev.mac),
        )?;
        c.added += 1;
    }
    let link = nl.link(VXLAN_DEVICE)?.ok_or_else(|| NlError {
        op: format!("find {VXLAN_DEVICE}"),
        source: std::io::Error::other("vanished"),
    })?;
    if link.mtu != mtu {
        nl.set_mtu(link.index, mtu)?;
    }
    let tunnel = IpNet::new(IpAddr::V4(dev.tunnel), 32)
        .unwrap_or_else(|_| IpNet::from(IpAddr::V4(dev.tunnel)));
    let addrs = nl.addresses(link.index)?;
    if !addrs.contains(&tunnel) {
        nl.add_address(link.index, tunnel, false)?;
        c.added += 1;
    }
    if !link.up {
        nl.set_up(link.index)?;
    }
    Ok(link.index)
}

/// Makes the kernel match `d`.
pub fn apply(nl: &mut Netlink, d: &Desired, grace: &mut Grace) -> Result<Changes, NlError> {
    let mut c = Changes::default();

    // The VXLAN device first: its routes and entries need it.
    let vx_index = match &d.vxlan {
        Some(dev) => Some(ensure_vxlan(nl, dev, &mut c)?),
        None => {
            if let Some(l) = nl.link(VXLAN_DEVICE)? {
                nl.delete_link(l.index)?;
                c.removed += 1;
            }
            None
        }
    };
    if let Some(ix) = vx_index {
        let want: BTreeSet<(IpAddr, [u8; 6])> = d.neighbours.clone();
        let have: BTreeSet<(IpAddr, [u8; 6])> = nl.neighbours(ix)?.into_iter().collect();
        for (ip, _) in have.difference(&want) {
            nl.delete_neighbour(ix, *ip)?;
            c.removed += 1;
        }
        for (ip, mac) in want.difference(&have) {
            nl.set_neighbour(ix, *ip, *mac)?;
            c.added += 1;
        }
        let want: BTreeSet<([u8; 6], IpAddr)> = d.fdb.clone();
        let have: BTreeSet<([u8; 6], IpAddr)> = nl
            .fdb(ix)?
            .into_iter()
            .filter(|(mac, _)| *mac != [0; 6])
            .collect();
        for (mac, ip) in have.difference(&want) {
            nl.delete_fdb(ix, *mac, *ip)?;
            c.removed += 1;
        }
        for (mac, ip) in want.difference(&have) {
            nl.set_fdb(ix, *mac, *ip)?;
            c.added += 1;
        }
    }

    // Our routes (protocol 80, main table).
    let mut want: Vec<Route> = Vec::new();
    for b in &d.blackholes {
        want.push(route_of(*b).kind(Kind::Blackhole));
    }
    if let Some(ix) = vx_index {
        for (dst, via) in &d.vxlan_routes {
            want.push(route_of(*dst).via(*via).dev(ix).onlink());
        }
    }
    for (dst, via) in &d.direct_routes {
        want.push(route_of(*dst).via(*via));
    }
    if d.ipip {
        match nl.link(IPIP_DEVICE)? {
            Some(t) => {
                let mtu = match (d.ipip_mtu, d.local_v4) {
                    (0, Some(local)) => nl
                        .mtu_of_address(IpAddr::V4(local))?
                        .map(|m| m.saturating_sub(IPIP_OVERHEAD)),
                    (0, None) => None,
                    (m, _) => Some(m),
                };
                if let Some(mtu) = mtu.filter(|m| *m != t.mtu && *m >= 68) {
                    nl.set_mtu(t.index, mtu)?;
                    c.added += 1;
                }
                if !t.up {
                    nl.set_up(t.index)?;
                }
                for (dst, via) in &d.ipip_routes {
                    want.push(route_of(*dst).via(*via).dev(t.index).onlink());
                }
            }
            None => c.problems.push(IPIP_MISSING.into()),
        }
    }
    // Ours (protocol 80) and routes through workload interfaces (the
    // interface tells, not the scope: the kernel reports IPv6 routes as
    // scope global); the rest — BGP's many routes among them — is dropped
    // as the dump is read.
    let links = nl.links()?;
    let cali: HashMap<u32, &str> = links
        .iter()
        .filter(|l| l.name.starts_with(WORKLOAD_PREFIX))
        .map(|l| (l.index, l.name.as_str()))
        .collect();
    let mine = |r: &Route| {
        r.protocol == PROTO_CALICO
            || (r.protocol != PROTO_KERNEL && r.oif.is_some_and(|i| cali.contains_key(&i)))
    };
    let mut have: Vec<Route> = nl.routes_where(false, &mine)?;
    have.extend(nl.routes_where(true, &mine)?);
    let ours: Vec<&Route> = have
        .iter()
        .filter(|r| r.protocol == PROTO_CALICO && r.table == TABLE_MAIN)
        .collect();
    for r in &ours {
        let keep = want.iter().any(|w| {
            w.dst == r.dst
                && w.kind == r.kind
                && w.gateway == r.gateway
                && (w.oif.is_none() || w.oif == r.oif)
        });
        if !keep {
            match nl.delete_route(r) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => c.removed += 1,
            }
        }
    }
    for w in &want {
        let present = ours.iter().any(|r| {
            w.dst == r.dst
                && w.kind == r.kind
                && w.gateway == r.gateway
                && (w.oif.is_none() || w.oif == r.oif)
        });
        if !present {
            nl.replace_route(w)?;
            c.added += 1;
        }
    }

    // Workload routes through cali* interfaces.
    let now = Instant::now();
    grace.observe(&cali, now);
    let by_name: HashMap<&str, u32> = cali.iter().map(|(i, n)| (*n, *i)).collect();
    let mut through: BTreeSet<(IpNet, u32)> = BTreeSet::new();
    for r in &have {
        let Some((oif, name)) = r.oif.and_then(|i| Some((i, *cali.get(&i)?))) else {
            continue;
        };
        if r.table != TABLE_MAIN || r.protocol == PROTO_CALICO {
            continue;
        }
        through.insert((r.dst, oif));
        if d.workload_routes.get(&r.dst).map(String::as_str) != Some(name) {
            if let Some(end) = grace.young(oif, now) {
                // Spared for now; looked at again when the grace ends.
                c.recheck_at = Some(c.recheck_at.map_or(end, |t| t.min(end)));
                continue;
            }
            // A route through a workload interface that no endpoint has.
            match nl.delete_route(r) {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => c.removed += 1,
            }
        }
    }
    for (dst, iface) in &d.workload_routes {
        let Some(&index) = by_name.get(iface.as_str()) else {
            continue; // the interface is not there (yet)
        };
        if !through.contains(&(*dst, index)) {
            nl.replace_route(&Route::new(*dst).dev(index).scope(Scope::Link))?;
            c.added += 1;
        }
    }
    Ok(c)
}

/// Turns on forwarding, as calico-node does.
pub fn enable_forwarding() -> std::io::Result<()> {
    sysctl::set("net.ipv4.ip_forward", "1")
}

/// Turns on IPv6 forwarding (Felix with `ipv6Support`).
pub fn enable_ipv6_forwarding() -> std::io::Result<()> {
    sysctl::set("net.ipv6.conf.all.forwarding", "1")
}
