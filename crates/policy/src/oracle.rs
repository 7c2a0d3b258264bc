//! The oracle: decides a single new connection's first packet directly from
//! the resolved model, with Calico's semantics, without any nftables.
//!
//! It is written to be obviously right rather than fast: every rule is
//! checked against the packet by walking the model (a selector matches an
//! address when some endpoint or network set owning that address is
//! selected; a named port matches when some selected endpoint owning the
//! address has a port of that name, protocol and number). Reachability tests
//! compare the real dataplane with it.
//!
//! Paths, as Felix enforces them:
//! - workload → anything: the workload's egress policy (after the drop of
//!   VXLAN and IP-in-IP packets from workloads, unless allowed);
//! - anything → workload: the workload's ingress policy, except from its own
//!   host, which is never policed;
//! - workload → its host: egress policy, then `defaultEndpointToHostAction`
//!   (IPv6 neighbour discovery is always allowed);
//! - outside → host through a host endpoint: VXLAN and IP-in-IP from a
//!   cluster host, failsafe inbound ports, else the host endpoint's ingress
//!   policy; host → outside through a host endpoint: the same overlay to a
//!   cluster host, failsafe outbound ports, else its egress policy;
//! - everything else (host to host, forwarding between outside networks) is
//!   not Calico's to police here.
//!
//! Connection tracking is not modelled: established traffic is allowed by
//! the dataplane before policy, so the oracle speaks for new connections.

use std::net::IpAddr;

use crate::input::PolicyInput;
use crate::model::{
    Action, Direction, Endpoint, EndpointId, Entity, Family, Icmp, Model, Rule, proto,
};
use crate::settings::{EndpointToHostAction, FailsafePort};

/// One end of a packet's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A workload endpoint.
    Workload(EndpointId),
    /// A process of the host running the workload at the other end (or,
    /// with `endpoint`, of the host that owns that host endpoint, which the
    /// packet crosses).
    Host {
        /// The host endpoint the packet enters or leaves through, if any.
        endpoint: Option<EndpointId>,
    },
    /// Anything else: other nodes' processes, the outside world.
    Outside,
}

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port (protocols with ports).
    pub src_port: u16,
    /// Destination port (protocols with ports).
    pub dst_port: u16,
    /// ICMP type (ICMP, ICMPv6).
    pub icmp_type: u8,
    /// ICMP code (ICMP, ICMPv6).
    pub icmp_code: u8,
    /// Where it comes from.
    pub from: Peer,
    /// Where it goes.
    pub to: Peer,
}

/// The oracle's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Delivered.
    pub allowed: bool,
    /// How many `Log` rules matched on the way.
    pub logs: usize,
    /// Why, for humans.
    pub reason: String,
}

/// Decides `p` from the raw input.
pub fn evaluate(input: &PolicyInput, p: &Packet) -> Verdict {
    evaluate_model(&Model::build(input), p)
}

/// Decides `p` from a resolved model.
pub fn evaluate_model(m: &Model, p: &Packet) -> Verdict {
    let mut logs = 0;
    let result = path(m, p, &mut logs);
    let (allowed, reason) = match result {
        Ok(r) => (true, r),
        Err(r) => (false, r),
    };
    Verdict {
        allowed,
        logs,
        reason,
    }
}

type Outcome = Result<String, String>;

fn path(m: &Model, p: &Packet, logs: &mut usize) -> Outcome {
    let endpoint = |id: &EndpointId| {
        m.endpoint(id)
            .ok_or_else(|| format!("unknown endpoint {id}"))
    };
    match (&p.from, &p.to) {
        (Peer::Workload(a), to) => {
            let a = endpoint(a)?;
            if matches!(to, Peer::Host { .. }) && is_neighbour_discovery(p) {
                return Ok("IPv6 neighbour discovery from a workload to its host".into());
            }
            encap_check(m, p)?;
            let egress = check(m, a, Direction::Egress, p, logs)?;
            match to {
                Peer::Workload(b) => check(m, endpoint(b)?, Direction::Ingress, p, logs),
                Peer::Host { .. } => match m.settings.endpoint_to_host {
                    EndpointToHostAction::Drop => Err("defaultEndpointToHostAction Drop".into()),
                    _ => Ok(format!("{egress}; defaultEndpointToHostAction")),
                },
                Peer::Outside => Ok(egress),
            }
        }
        (Peer::Host { .. }, Peer::Workload(_)) => {
            Ok("host to its own workload is not policed".into())
        }
        (Peer::Outside, Peer::Workload(b)) => check(m, endpoint(b)?, Direction::Ingress, p, logs),
        (Peer::Outside, Peer::Host { endpoint: Some(h) }) => {
            if overlay_between_hosts(m, p, p.src) {
                return Ok("VXLAN or IP-in-IP from a cluster host".into());
            }
            if failsafe(&m.settings.failsafe_inbound, p, p.src) {
                return Ok("failsafe inbound port".into());
            }
            check(m, endpoint(h)?, Direction::Ingress, p, logs)
        }
        (Peer::Host { endpoint: Some(h) }, Peer::Outside) => {
            if overlay_between_hosts(m, p, p.dst) {
                return Ok("VXLAN or IP-in-IP to a cluster host".into());
            }
            if failsafe(&m.settings.failsafe_outbound, p, p.dst) {
                return Ok("failsafe outbound port".into());
            }
            check(m, endpoint(h)?, Direction::Egress, p, logs)
        }
        _ => Ok("not policed".into()),
    }
}

fn is_neighbour_discovery(p: &Packet) -> bool {
    p.protocol == proto::ICMPV6 && [130, 131, 132, 133, 135, 136].contains(&p.icmp_type)
}

fn encap_check(m: &Model, p: &Packet) -> Result<(), String> {
    let s = &m.settings;
    if !s.allow_vxlan_from_workloads && p.protocol == proto::UDP && p.dst_port == s.vxlan_port {
        return Err("VXLAN packets from workloads are dropped".into());
    }
    if !s.allow_ipip_from_workloads && p.protocol == proto::IPIP {
        return Err("IP-in-IP packets from workloads are dropped".into());
    }
    Ok(())
}

/// Overlay packets whose other end (`peer`) is one of the cluster's hosts.
fn overlay_between_hosts(m: &Model, p: &Packet, peer: IpAddr) -> bool {
    let overlay = (p.protocol == proto::UDP && p.dst_port == m.settings.vxlan_port)
        || (p.protocol == proto::IPIP && peer.is_ipv4());
    overlay && m.settings.hosts.contains(&peer)
}

fn failsafe(ports: &[FailsafePort], p: &Packet, peer: IpAddr) -> bool {
    ports.iter().any(|f| {
        f.protocol == p.protocol && f.port == p.dst_port && f.net.is_none_or(|n| n.contains(&peer))
    })
}

/// The policy verdict for one endpoint in one direction: tiers, then profiles.
fn check(m: &Model, ep: &Endpoint, dir: Direction, p: &Packet, logs: &mut usize) -> Outcome {
    for (tier, policies) in m.applicable(ep, dir) {
        let mut passed = false;
        'policies: for pol in policies {
            for r in pol.rules(dir).unwrap_or_default() {
                if !matches(m, r, p) {
                    continue;
                }
                match r.action {
                    Action::Allow => return Ok(format!("{dir:?} allowed by {}", pol.id)),
                    Action::Deny => return Err(format!("{dir:?} denied by {}", pol.id)),
                    Action::Log => *logs += 1,
                    Action::Pass => {
                        passed = true;
                        break 'policies;
                    }
                }
            }
        }
        if !passed && !tier.pass_by_default {
            return Err(format!("{dir:?}: end of tier {} for {}", tier.name, ep.id));
        }
    }
    for name in &ep.profiles {
        let Some(prof) = m.profile(name) else {
            continue;
        };
        for r in prof.rules(dir) {
            if !matches(m, r, p) {
                continue;
            }
            match r.action {
                Action::Allow => return Ok(format!("{dir:?} allowed by profile {name}")),
                Action::Deny => return Err(format!("{dir:?} denied by profile {name}")),
                Action::Log => *logs += 1,
                Action::Pass => break,
            }
        }
    }
    Err(format!("{dir:?}: no profile of {} allowed", ep.id))
}

fn family(ip: IpAddr) -> Family {
    match ip {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Whether rule `r` matches packet `p`.
pub fn matches(m: &Model, r: &Rule, p: &Packet) -> bool {
    r.ip_version.is_none_or(|f| f == family(p.src))
        && r.protocol.is_none_or(|n| n == p.protocol)
        && r.not_protocol.is_none_or(|n| n != p.protocol)
        && r.icmp.is_none_or(|i| icmp_matches(i, p))
        && r.not_icmp.is_none_or(|i| !icmp_matches(i, p))
        && side(m, &r.src, p.src, p.src_port, p)
        && side(m, &r.dst, p.dst, p.dst_port, p)
}

fn icmp_matches(i: Icmp, p: &Packet) -> bool {
    matches!(p.protocol, proto::ICMP | proto::ICMPV6)
        && i.icmp_type == p.icmp_type
        && i.code.is_none_or(|c| c == p.icmp_code)
}

fn side(m: &Model, e: &Entity, ip: IpAddr, port: u16, p: &Packet) -> bool {
    let selected = |sel| {
        m.labelled
            .iter()
            .any(|l| l.nets.iter().any(|n| n.contains(&ip)) && l.matches(sel))
    };
    let port_in = |ports: &crate::model::Ports| {
        proto::has_ports(p.protocol)
            && (ports.ranges.iter().any(|&(a, b)| (a..=b).contains(&port))
                || named_port(m, e, &ports.names, ip, p.protocol, port))
    };
    (e.nets.is_empty() || e.nets.iter().any(|n| n.contains(&ip)))
        && !e.not_nets.iter().any(|n| n.contains(&ip))
        && e.selector.as_ref().is_none_or(selected)
        && !e.not_selector.as_ref().is_some_and(selected)
        && (e.ports.is_empty() || port_in(&e.ports))
        && (e.not_ports.is_empty() || !port_in(&e.not_ports))
}

fn named_port(
    m: &Model,
    e: &Entity,
    names: &[String],
    ip: IpAddr,
    protocol: u8,
    port: u16,
) -> bool {
    let sel = e.named_port_selector();
    m.endpoints.iter().any(|ep| {
        ep.labelled.matches(&sel)
            && ep.labelled.nets.iter().any(|n| n.contains(&ip))
            && ep
                .ports
                .iter()
                .any(|np| names.contains(&np.name) && np.protocol == protocol && np.port == port)
    })
}
