//! Giving addresses back and looking at what is allocated: release by
//! handle or by address (block and handle written in one transaction),
//! who holds an address, every block, handle and affinity, and the
//! reclaiming of empty blocks of nodes that no longer exist.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_api::Kind;
use calico_datastore::{Compare, Op};
use ipnet::IpNet;

use crate::allocator::{Handle, Ipam, IpamError, MAX_ATTEMPTS, decode, decode_block, encode};
use crate::block::{Attribute, Block};
use crate::keys;

impl Ipam {
    /// Releases everything held by `handle`. Releasing nothing succeeds.
    /// Returns the addresses released.
    pub fn release_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        let hkey = keys::handle(handle);
        let mut released = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let Some(hkv) = self.store.get(&hkey)? else {
                return Ok(released);
            };
            let mut h: Handle = decode(&hkv)?;
            let Some(cidr) = h.block.keys().next().cloned() else {
                // An empty handle: remove it.
                if self
                    .store
                    .txn(
                        &[Compare::at(&hkey, hkv.mod_revision)],
                        &[Op::Delete { key: hkey.clone() }],
                    )?
                    .is_some()
                {
                    return Ok(released);
                }
                continue;
            };
            h.block.remove(&cidr);
            let hop = if h.block.is_empty() {
                Op::Delete { key: hkey.clone() }
            } else {
                Op::Put {
                    key: hkey.clone(),
                    value: encode(&h),
                }
            };
            let net: Option<IpNet> = cidr.parse().ok();
            let bkv = match &net {
                Some(n) => self.store.get(&keys::block(n))?,
                None => None,
            };
            match (net, bkv) {
                (Some(net), Some(bkv)) => {
                    let mut b: Block = decode_block(&bkv)?;
                    let ips = b.ips_of_handle(handle);
                    b.release(&ips);
                    let ops = [
                        Op::Put {
                            key: keys::block(&net),
                            value: encode(&b),
                        },
                        hop,
                    ];
                    let cmps = [
                        Compare::at(keys::block(&net), bkv.mod_revision),
                        Compare::at(&hkey, hkv.mod_revision),
                    ];
                    if self.store.txn(&cmps, &ops)?.is_some() {
                        released.extend(ips);
                    }
                }
                _ => {
                    // The block is gone: just drop it from the handle.
                    self.store
                        .txn(&[Compare::at(&hkey, hkv.mod_revision)], &[hop])?;
                }
            }
        }
        Err(IpamError::Contention(MAX_ATTEMPTS))
    }

    /// Releases specific addresses (whoever holds them). Returns those that
    /// were allocated and are now free.
    pub fn release_ips(&self, ips: &[IpAddr]) -> Result<Vec<IpAddr>, IpamError> {
        let mut released = Vec::new();
        let mut by_block: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for fam in ["ipv4", "ipv6"] {
            let (blocks, _) = self.store.list(&keys::blocks_prefix(fam))?;
            for kv in &blocks {
                let b: Block = decode_block(kv)?;
                let Some(net) = b.net() else { continue };
                let mine: Vec<IpAddr> = ips.iter().copied().filter(|ip| net.contains(ip)).collect();
                if !mine.is_empty() {
                    by_block.insert(kv.key.clone(), mine);
                }
            }
        }
        for (bkey, ips) in by_block {
            let mut done = false;
            for _ in 0..MAX_ATTEMPTS {
                let Some(bkv) = self.store.get(&bkey)? else {
                    done = true;
                    break;
                };
                let mut b: Block = decode_block(&bkv)?;
                let now_free: Vec<IpAddr> = ips
                    .iter()
                    .copied()
                    .filter(|ip| b.attribute_of(*ip).is_some())
                    .collect();
                let freed = b.release(&ips);
                if freed.is_empty() {
                    done = true;
                    break;
                }
                let mut cmps = vec![Compare::at(&bkey, bkv.mod_revision)];
                let mut ops = vec![Op::Put {
                    key: bkey.clone(),
                    value: encode(&b),
                }];
                for (handle, n) in &freed {
                    if handle.is_empty() {
                        continue;
                    }
                    let hkey = keys::handle(handle);
                    let hkv = self.store.get(&hkey)?;
                    cmps.push(Compare::at(
                        &hkey,
                        hkv.as_ref().map_or(0, |kv| kv.mod_revision),
                    ));
                    let Some(hkv) = hkv else { continue };
                    let mut h: Handle = decode(&hkv)?;
                    let left = h
                        .block
                        .get(&b.cidr)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(*n);
                    if left == 0 {
                        h.block.remove(&b.cidr);
                    } else {
                        h.block.insert(b.cidr.clone(), left);
                    }
                    ops.push(if h.block.is_empty() {
                        Op::Delete { key: hkey }
                    } else {
                        Op::Put {
                            key: hkey,
                            value: encode(&h),
                        }
                    });
                }
                if self.store.txn(&cmps, &ops)?.is_some() {
                    released.extend(now_free);
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(IpamError::Contention(MAX_ATTEMPTS));
            }
        }
        Ok(released)
    }

    /// Who holds `ip`: its handle and attributes, or `None` when free.
    pub fn assignment(&self, ip: IpAddr) -> Result<Option<Attribute>, IpamError> {
        for b in self.blocks()? {
            if b.net().is_some_and(|n| n.contains(&ip)) {
                return Ok(b.attribute_of(ip).cloned());
            }
        }
        Ok(None)
    }

    /// Every block.
    pub fn blocks(&self) -> Result<Vec<Block>, IpamError> {
        let mut out = Vec::new();
        for fam in ["ipv4", "ipv6"] {
            let (kvs, _) = self.store.list(&keys::blocks_prefix(fam))?;
            for kv in &kvs {
                out.push(decode_block(kv)?);
            }
        }
        Ok(out)
    }

    /// Every handle id with its stored form.
    pub fn handles(&self) -> Result<Vec<(String, Handle)>, IpamError> {
        let (kvs, _) = self.store.list(keys::HANDLE_ROOT)?;
        kvs.iter()
            .map(|kv| {
                Ok((
                    kv.key.trim_start_matches(keys::HANDLE_ROOT).to_string(),
                    decode(kv)?,
                ))
            })
            .collect()
    }

    /// Every affinity: (node, block network).
    pub fn affinities(&self) -> Result<Vec<(String, IpNet)>, IpamError> {
        let (kvs, _) = self.store.list(keys::AFFINITY_ROOT)?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let rest = kv.key.strip_prefix(keys::AFFINITY_ROOT)?;
                let mut parts = rest.split('/');
                let node = parts.next()?.to_string();
                let name = parts.nth(2)?;
                Some((node, keys::parse_block_name(name)?))
            })
            .collect())
    }

    /// Removes the empty blocks (and affinities) of nodes that no longer
    /// exist as Node resources. Returns the blocks released.
    pub fn release_orphan_blocks(&self) -> Result<Vec<IpNet>, IpamError> {
        let (nodes, _) = self.client.list(Kind::Node, None)?;
        let names: BTreeSet<String> = nodes.iter().map(|n| n.metadata().name.clone()).collect();
        let mut out = Vec::new();
        for (node, net) in self.affinities()? {
            if names.contains(&node) {
                continue;
            }
            let akey = keys::affinity(&node, &net);
            let bkey = keys::block(&net);
            let Some(akv) = self.store.get(&akey)? else {
                continue;
            };
            let bkv = self.store.get(&bkey)?;
            match bkv {
                Some(bkv) => {
                    let b: Block = decode_block(&bkv)?;
                    if !b.is_empty() || b.affine_node() != Some(node.as_str()) {
                        continue;
                    }
                    let r = self.store.txn(
                        &[
                            Compare::at(&akey, akv.mod_revision),
                            Compare::at(&bkey, bkv.mod_revision),
                        ],
                        &[Op::Delete { key: akey }, Op::Delete { key: bkey }],
                    )?;
                    if r.is_some() {
                        out.push(net);
                    }
                }
                None => {
                    self.store.txn(
                        &[Compare::at(&akey, akv.mod_revision)],
                        &[Op::Delete { key: akey }],
                    )?;
                }
            }
        }
        Ok(out)
    }
}
