//! An allocation block: a CIDR of the pool's block size, the addresses in it
//! that are allocated, and to which handle. Pure; stored as Calico's
//! `AllocationBlock` JSON.
//!
//! Invariants (checked by [`Block::check`] and the property tests):
//! - `allocations.len() == 2^(bits - prefix)`;
//! - an ordinal is either in `unallocated` or has `allocations[o] = Some(a)`
//!   with `a < attributes.len()`, never both, never neither;
//! - every attribute is referenced by at least one allocation.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The allocation attribute naming the node the address was allocated for
/// (Calico's `node`).
pub const ATTR_NODE: &str = "node";

/// The allocation attribute naming the CNI network (calico-rs): a handle
/// `<network>.<containerID>` cannot be split by itself when both contain
/// dots.
pub const ATTR_NETWORK: &str = "network";

/// Who an allocation belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attribute {
    /// The handle the address was allocated for.
    #[serde(rename = "handle_id", default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    /// Node, namespace, pod and other details.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secondary: BTreeMap<String, String>,
}

/// One block, in Calico's stored form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The block's CIDR.
    pub cidr: String,
    /// `host:<node>` for the affine node, if any.
    #[serde(default)]
    pub affinity: Option<String>,
    /// Per ordinal: the index of its attribute, or `None` when free.
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals, in the order they are handed out.
    pub unallocated: Vec<usize>,
    /// Attributes of allocations.
    pub attributes: Vec<Attribute>,
    /// Set while the block is being deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Bumped on every change.
    #[serde(default)]
    pub sequence_number: u64,
}

/// Why a block operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The address is not in this block.
    #[error("{0} is not in block {1}")]
    NotInBlock(IpAddr, String),
    /// The address is already allocated.
    #[error("address {0} is already in use")]
    InUse(IpAddr),
}

impl Block {
    /// An empty block for `net`, affine to `node` when given.
    pub fn new(net: IpNet, node: Option<&str>) -> Block {
        let net = net.trunc();
        let size = block_len(&net);
        Block {
            cidr: net.to_string(),
            affinity: node.map(|n| format!("host:{n}")),
            allocations: vec![None; size],
            unallocated: (0..size).collect(),
            attributes: Vec::new(),
            deleted: false,
            sequence_number: 0,
        }
    }

    /// The block's network.
    pub fn net(&self) -> Option<IpNet> {
        self.cidr.parse().ok()
    }

    /// The affine node, if any.
    pub fn affine_node(&self) -> Option<&str> {
        self.affinity
            .as_deref()
            .and_then(|a| a.strip_prefix("host:"))
    }

    /// The ordinal of `ip` within the block.
    pub fn ordinal_of(&self, ip: IpAddr) -> Option<usize> {
        let net = self.net()?;
        if !net.contains(&ip) {
            return None;
        }
        let off = ip_to_u128(ip).checked_sub(ip_to_u128(net.network()))?;
        usize::try_from(off)
            .ok()
            .filter(|o| *o < self.allocations.len())
    }

    /// The address of ordinal `o`.
    pub fn ip_of(&self, o: usize) -> Option<IpAddr> {
        let net = self.net()?;
        let base = ip_to_u128(net.network());
        Some(u128_to_ip(base + o as u128, net.network().is_ipv4()))
    }

    /// Number of free addresses.
    pub fn free(&self) -> usize {
        self.unallocated.len()
    }

    /// Number of allocated addresses.
    pub fn in_use(&self) -> usize {
        self.allocations.len() - self.unallocated.len()
    }

    /// True when nothing is allocated.
    pub fn is_empty(&self) -> bool {
        self.in_use() == 0
    }

    fn attribute_index(&mut self, attr: Attribute) -> usize {
        match self.attributes.iter().position(|a| *a == attr) {
            Some(i) => i,
            None => {
                self.attributes.push(attr);
                self.attributes.len() - 1
            }
        }
    }

    /// Allocates up to `n` free addresses, skipping those `reserved` says no
    /// to; returns what it allocated (possibly fewer than `n`).
    pub fn assign(
        &mut self,
        n: usize,
        attr: Attribute,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Vec<IpAddr> {
        let mut picked = Vec::new();
        let mut keep = Vec::with_capacity(self.unallocated.len());
        for &o in &self.unallocated {
            let ip = self.ip_of(o);
            if picked.len() < n && ip.is_some_and(|ip| !reserved(ip)) {
                picked.push(o);
            } else {
                keep.push(o);
            }
        }
        if picked.is_empty() {
            return Vec::new();
        }
        self.unallocated = keep;
        let idx = self.attribute_index(attr);
        for &o in &picked {
            self.allocations[o] = Some(idx);
        }
        self.sequence_number += 1;
        picked.iter().filter_map(|o| self.ip_of(*o)).collect()
    }

    /// Allocates one specific address.
    pub fn assign_ip(&mut self, ip: IpAddr, attr: Attribute) -> Result<(), BlockError> {
        let o = self
            .ordinal_of(ip)
            .ok_or_else(|| BlockError::NotInBlock(ip, self.cidr.clone()))?;
        if self.allocations[o].is_some() {
            return Err(BlockError::InUse(ip));
        }
        self.unallocated.retain(|u| *u != o);
        let idx = self.attribute_index(attr);
        self.allocations[o] = Some(idx);
        self.sequence_number += 1;
        Ok(())
    }

    /// The attribute of an allocated address.
    pub fn attribute_of(&self, ip: IpAddr) -> Option<&Attribute> {
        let o = self.ordinal_of(ip)?;
        self.allocations[o].and_then(|i| self.attributes.get(i))
    }

    /// Frees the given addresses (those allocated); returns how many were
    /// freed per handle.
    pub fn release(&mut self, ips: &[IpAddr]) -> BTreeMap<String, usize> {
        let mut freed = BTreeMap::new();
        for ip in ips {
            let Some(o) = self.ordinal_of(*ip) else {
                continue;
            };
            let Some(idx) = self.allocations[o].take() else {
                continue;
            };
            let handle = self
                .attributes
                .get(idx)
                .and_then(|a| a.handle_id.clone())
                .unwrap_or_default();
            *freed.entry(handle).or_insert(0) += 1;
            self.unallocated.push(o);
        }
        if !freed.is_empty() {
            self.compact_attributes();
            self.sequence_number += 1;
        }
        freed
    }

    /// Frees every address allocated to `handle`; returns how many.
    pub fn release_handle(&mut self, handle: &str) -> usize {
        let ips: Vec<IpAddr> = self.ips_of_handle(handle);
        self.release(&ips).values().sum()
    }

    /// The addresses allocated to `handle` in this block.
    pub fn ips_of_handle(&self, handle: &str) -> Vec<IpAddr> {
        (0..self.allocations.len())
            .filter(|o| {
                self.allocations[*o]
                    .and_then(|i| self.attributes.get(i))
                    .is_some_and(|a| a.handle_id.as_deref() == Some(handle))
            })
            .filter_map(|o| self.ip_of(o))
            .collect()
    }

    /// Every allocated address with its attribute.
    pub fn allocated(&self) -> Vec<(IpAddr, &Attribute)> {
        (0..self.allocations.len())
            .filter_map(|o| {
                let a = self.allocations[o].and_then(|i| self.attributes.get(i))?;
                Some((self.ip_of(o)?, a))
            })
            .collect()
    }

    /// Drops attributes no allocation refers to, renumbering the rest.
    fn compact_attributes(&mut self) {
        let mut used = vec![false; self.attributes.len()];
        for i in self.allocations.iter().flatten() {
            if let Some(u) = used.get_mut(*i) {
                *u = true;
            }
        }
        let mut remap = vec![0usize; self.attributes.len()];
        let mut next = 0;
        for (i, u) in used.iter().enumerate() {
            if *u {
                remap[i] = next;
                next += 1;
            }
        }
        let mut i = 0;
        self.attributes.retain(|_| {
            let keep = used[i];
            i += 1;
            keep
        });
        for a in self.allocations.iter_mut().flatten() {
            *a = remap[*a];
        }
    }

    /// Checks the invariants; the message says which one is broken.
    pub fn check(&self) -> Result<(), String> {
        let net = self
            .net()
            .ok_or_else(|| format!("block cidr {:?} is not a CIDR", self.cidr))?;
        if self.allocations.len() != block_len(&net) {
            return Err(format!(
                "block {} has {} slots, not {}",
                self.cidr,
                self.allocations.len(),
                block_len(&net)
            ));
        }
        let mut free = vec![false; self.allocations.len()];
        for &o in &self.unallocated {
            match free.get_mut(o) {
                Some(f) if !*f => *f = true,
                _ => {
                    return Err(format!(
                        "block {}: ordinal {o} is listed free twice or is out of range",
                        self.cidr
                    ));
                }
            }
        }
        let mut used = vec![false; self.attributes.len()];
        for (o, a) in self.allocations.iter().enumerate() {
            match (a, free[o]) {
                (Some(_), true) => {
                    return Err(format!(
                        "block {}: ordinal {o} is both free and allocated",
                        self.cidr
                    ));
                }
                (None, false) => {
                    return Err(format!(
                        "block {}: ordinal {o} is neither free nor allocated",
                        self.cidr
                    ));
                }
                (Some(i), false) => match used.get_mut(*i) {
                    Some(u) => *u = true,
                    None => {
                        return Err(format!(
                            "block {}: ordinal {o} points at a missing attribute",
                            self.cidr
                        ));
                    }
                },
                (None, true) => {}
            }
        }
        if used.iter().any(|u| !u) {
            return Err(format!(
                "block {} keeps an attribute nothing uses",
                self.cidr
            ));
        }
        Ok(())
    }
}

/// Number of addresses in a block network.
pub fn block_len(net: &IpNet) -> usize {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1usize.checked_shl(host_bits).unwrap_or(0)
}

/// An address as an integer.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// An integer as an address of the given family.
pub fn u128_to_ip(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attr(h: &str) -> Attribute {
        Attribute {
            handle_id: Some(h.into()),
            secondary: BTreeMap::new(),
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn assigns_in_order_and_releases() {
        let mut b = Block::new(net("10.0.0.0/30"), Some("n1"));
        assert_eq!(b.affine_node(), Some("n1"));
        let got = b.assign(3, attr("h1"), &|_| false);
        assert_eq!(got, vec![ip("10.0.0.0"), ip("10.0.0.1"), ip("10.0.0.2")]);
        assert_eq!(b.free(), 1);
        let more = b.assign(5, attr("h2"), &|_| false);
        assert_eq!(more.len(), 1);
        assert!(b.assign(1, attr("h3"), &|_| false).is_empty());
        assert_eq!(b.release_handle("h1"), 3);
        assert_eq!(b.attributes.len(), 1);
        b.check().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.release_handle("h1"), 0);
    }

    #[test]
    fn reserved_addresses_are_skipped() {
        let mut b = Block::new(net("10.0.0.0/29"), None);
        let r = ip("10.0.0.0");
        let got = b.assign(8, attr("h"), &|ip| ip == r);
        assert_eq!(got.len(), 7);
        assert!(!got.contains(&r));
    }

    #[test]
    fn specific_address() {
        let mut b = Block::new(net("fd00::/126"), None);
        let a = ip("fd00::2");
        b.assign_ip(a, attr("h")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.assign_ip(a, attr("x")), Err(BlockError::InUse(a)));
        assert!(matches!(
            b.assign_ip(ip("fd01::2"), attr("x")),
            Err(BlockError::NotInBlock(..))
        ));
        assert_eq!(
            b.attribute_of(a).and_then(|a| a.handle_id.as_deref()),
            Some("h")
        );
        assert_eq!(b.ips_of_handle("h"), vec![a]);
    }

    #[test]
    fn stored_form_is_calicos() {
        let mut b = Block::new(net("192.168.0.0/30"), Some("node-a"));
        b.assign(1, attr("k8s-pod-network.abc"), &|_| false);
        let v = serde_json::to_value(&b).unwrap_or_default();
        assert_eq!(v["cidr"], "192.168.0.0/30");
        assert_eq!(v["affinity"], "host:node-a");
        assert_eq!(v["allocations"], serde_json::json!([0, null, null, null]));
        assert_eq!(v["unallocated"], serde_json::json!([1, 2, 3]));
        assert_eq!(v["attributes"][0]["handle_id"], "k8s-pod-network.abc");
        assert_eq!(v["sequenceNumber"], 1);
    }

    proptest! {
        /// Any sequence of assigns and releases keeps the invariants, and no
        /// address is ever handed out twice while allocated.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec((0u8..3, 0usize..6, 0u8..4), 0..60)) {
            let mut b = Block::new(net("10.1.0.0/28"), Some("n"));
            let mut live: BTreeMap<IpAddr, String> = BTreeMap::new();
            for (op, n, h) in ops {
                let handle = format!("h{h}");
                match op {
                    0 => {
                        for ip in b.assign(n, attr(&handle), &|_| false) {
                            prop_assert!(live.insert(ip, handle.clone()).is_none(), "{} handed out twice", ip);
                        }
                    }
                    1 => {
                        let freed = b.release_handle(&handle);
                        let before = live.len();
                        live.retain(|_, v| *v != handle);
                        prop_assert_eq!(freed, before - live.len());
                    }
                    _ => {
                        let victims: Vec<IpAddr> = live.keys().take(n).cloned().collect();
                        b.release(&victims);
                        for v in victims { live.remove(&v); }
                    }
                }
                prop_assert!(b.check().is_ok(), "{:?}", b.check());
                prop_assert_eq!(b.in_use(), live.len());
                for (ip, h) in &live {
                    prop_assert_eq!(b.attribute_of(*ip).and_then(|a| a.handle_id.clone()), Some(h.clone()));
                }
            }
        }
    }
}
