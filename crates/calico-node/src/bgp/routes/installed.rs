//! The programmer's record of the routes it has in the kernel
//! ([`Installed`]), packed small and walked scattered.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Bound;

use ipnet::{IpNet, Ipv4Net};

/// The programmer's record of its routes in the kernel: prefix → gateway
/// (`None`: a route of ours without one, found in the kernel). IPv4
/// prefixes with IPv4 gateways — nearly all — are packed in 12 bytes, keyed
/// with the address bits reversed: walking the record (to withdraw) visits
/// the address space scattered, and the kernel's routing trie takes
/// scattered deletions about a third faster than ordered ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    pub(super) v4: BTreeMap<u64, u32>,
    other: BTreeMap<IpNet, Option<IpAddr>>,
}

/// A position in [`Installed`]'s order, to go on after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Start,
    V4(u64),
    Other(IpNet),
}

pub(super) fn pack(n: &Ipv4Net) -> u64 {
    (u64::from(u32::from(n.addr()).reverse_bits()) << 8) | u64::from(n.prefix_len())
}

pub(super) fn unpack(k: u64) -> IpNet {
    let addr = u32::try_from(k >> 8).unwrap_or_default().reverse_bits();
    let len = u8::try_from(k & 0xff).unwrap_or_default();
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap_or_default())
}

impl Installed {
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gateway of our route to `prefix`, if we have one.
    pub fn get(&self, prefix: &IpNet) -> Option<Option<IpAddr>> {
        if let IpNet::V4(n) = prefix
            && let Some(gw) = self.v4.get(&pack(n))
        {
            return Some(Some(IpAddr::V4(Ipv4Addr::from(*gw))));
        }
        self.other.get(prefix).copied()
    }

    pub fn contains(&self, prefix: &IpNet) -> bool {
        self.get(prefix).is_some()
    }

    pub fn insert(&mut self, prefix: IpNet, gateway: Option<IpAddr>) {
        match (prefix, gateway) {
            (IpNet::V4(n), Some(IpAddr::V4(gw))) => {
                self.v4.insert(pack(&n), u32::from(gw));
                if !self.other.is_empty() {
                    self.other.remove(&prefix);
                }
            }
            _ => {
                if let IpNet::V4(n) = prefix {
                    self.v4.remove(&pack(&n));
                }
                self.other.insert(prefix, gateway);
            }
        }
    }

    pub fn remove(&mut self, prefix: &IpNet) {
        if let IpNet::V4(n) = prefix {
            self.v4.remove(&pack(n));
        }
        self.other.remove(prefix);
    }

    /// The prefixes after `at`, each with its position.
    pub fn after(&self, at: At) -> impl Iterator<Item = (At, IpNet)> + '_ {
        let v4 = match at {
            At::Start => Some(self.v4.range(..)),
            At::V4(k) => Some(self.v4.range((Bound::Excluded(k), Bound::Unbounded))),
            At::Other(_) => None,
        };
        let other = match at {
            At::Other(p) => self.other.range((Bound::Excluded(p), Bound::Unbounded)),
            _ => self.other.range(..),
        };
        v4.into_iter()
            .flatten()
            .map(|(k, _)| (At::V4(*k), unpack(*k)))
            .chain(other.map(|(p, _)| (At::Other(*p), *p)))
    }
}
