//! The allocator: Calico's auto-assign and assign-IP semantics over the
//! [`Store`] trait, every write a compare-and-swap retried on conflict
//! (release lives in [`crate::release`], CNI GC in [`crate::gc`]).
//!
//! Auto-assign for one family, as Calico does it:
//! 1. pick pools: the requested ones (by name or CIDR; must exist and be
//!    enabled; nodeSelector and assignmentMode are bypassed; those whose
//!    allowedUses do not fit are dropped, and none left is an error) or
//!    every enabled `Automatic` pool whose nodeSelector matches the node's
//!    labels and whose allowedUses fit;
//! 2. allocate from the node's affine blocks in those pools;
//! 3. claim a free block (affinity + empty block in one transaction) while
//!    the node holds fewer than `maxBlocksPerHost`, and go back to 2;
//! 4. unless `strictAffinity`, borrow free addresses from other blocks;
//! 5. otherwise fail, naming the pools that were tried.
//!
//! IPReservation CIDRs are never handed out.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use calico_api::resources::IPPoolSpec;
use calico_api::selector::Selector;
use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, ClientError, Compare, KeyValue, Op, Store, StoreError};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::block::{Attribute, Block};
use crate::keys;

/// Attempts of one compare-and-swap loop before giving up.
pub(crate) const MAX_ATTEMPTS: usize = 500;

/// What an address is for (IPPool `allowedUses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A pod or other workload.
    Workload,
    /// A node's tunnel device.
    Tunnel,
}

impl Use {
    fn name(self) -> &'static str {
        match self {
            Use::Workload => "Workload",
            Use::Tunnel => "Tunnel",
        }
    }
}

/// A request for addresses.
#[derive(Debug, Clone)]
pub struct AssignArgs {
    /// Handle the addresses are tied to (`<network>.<containerID>`).
    pub handle: String,
    /// The node asking.
    pub node: String,
    /// IPv4 addresses wanted.
    pub num_v4: usize,
    /// IPv6 addresses wanted.
    pub num_v6: usize,
    /// Requested IPv4 pools (names or CIDRs); empty = choose automatically.
    pub v4_pools: Vec<String>,
    /// Requested IPv6 pools.
    pub v6_pools: Vec<String>,
    /// Attributes recorded with the allocation (node, namespace, pod, ...).
    pub attrs: BTreeMap<String, String>,
    /// What the addresses are for.
    pub use_: Use,
}

/// Addresses handed out, with the block size of their pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assigned {
    /// IPv4 addresses.
    pub v4: Vec<IpAddr>,
    /// IPv6 addresses.
    pub v6: Vec<IpAddr>,
}

/// What [`Ipam::assign_ip`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignedIp {
    /// The address is now allocated to the handle.
    New,
    /// The handle already held it: nothing changed.
    AlreadyHeld,
}

/// Effective IPAM settings (IPAMConfiguration `default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpamConfig {
    /// Never borrow from other nodes' blocks.
    pub strict_affinity: bool,
    /// Most blocks per node and family; 0 = no limit.
    pub max_blocks_per_host: u32,
    /// Claim blocks automatically.
    pub auto_allocate_blocks: bool,
}

/// IPAM errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// No pool can serve the request.
    #[error("no enabled IPv{family} pool is usable by node {node} for {use_} addresses")]
    NoPools {
        /// 4 or 6.
        family: u8,
        /// The node.
        node: String,
        /// Workload or Tunnel.
        use_: &'static str,
    },
    /// A requested pool does not exist.
    #[error("the requested pool {0:?} does not exist (give a pool name or CIDR)")]
    PoolNotFound(String),
    /// A requested pool is disabled.
    #[error("the requested pool {0:?} is disabled")]
    PoolDisabled(String),
    /// A requested pool is of the other family.
    #[error("the requested pool {0:?} is not an IPv{1} pool")]
    PoolFamily(String, u8),
    /// Every pool tried is full (for this node).
    #[error("no IPv{family} addresses available in pool(s) {pools:?}{extra}")]
    Exhausted {
        /// 4 or 6.
        family: u8,
        /// The pools tried.
        pools: Vec<String>,
        /// Why borrowing was not possible, if it applies.
        extra: String,
    },
    /// A specific address is taken.
    #[error("IP {ip} is already in use (handle {handle})")]
    InUse {
        /// The address.
        ip: IpAddr,
        /// Who holds it.
        handle: String,
    },
    /// No requested pool allows the use.
    #[error("the requested pool(s) {pools:?} do not allow {use_} addresses (allowedUses)")]
    PoolUse {
        /// The pools requested.
        pools: Vec<String>,
        /// Workload or Tunnel.
        use_: &'static str,
    },
    /// A specific address is in a pool that does not allow the use.
    #[error("IP {ip} is in pool {pool:?}, whose allowedUses do not include {use_}")]
    NotAllowed {
        /// The address.
        ip: IpAddr,
        /// The pool.
        pool: String,
        /// Workload or Tunnel.
        use_: &'static str,
    },
    /// A specific address is reserved.
    #[error("IP {0} is reserved by an IPReservation")]
    Reserved(IpAddr),
    /// A specific address is outside every enabled pool.
    #[error("IP {0} is not in any enabled IP pool")]
    NotInPool(IpAddr),
    /// Too many conflicting writers.
    #[error("gave up after {0} conflicting datastore updates: try again")]
    Contention(usize),
    /// A stored IPAM object cannot be decoded.
    #[error("stored IPAM data at {key} is unreadable: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The datastore failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading resources failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl IpamError {
    /// Whether retrying later may help (datastore away, contention).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IpamError::Contention(_)
                | IpamError::Store(StoreError::Unavailable { .. })
                | IpamError::Client(ClientError::Store(StoreError::Unavailable { .. }))
        )
    }
}

/// A handle's stored form: allocations per block CIDR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// Number of addresses per block CIDR.
    #[serde(default)]
    pub block: BTreeMap<String, usize>,
    /// Set while being deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// A node's claim on a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affinity {
    /// `confirmed` once the block exists.
    pub state: String,
    /// Set while being released.
    #[serde(default)]
    pub deleted: bool,
}

/// One pool the allocator may use.
#[derive(Debug, Clone)]
struct Pool {
    name: String,
    net: IpNet,
    block_size: u8,
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> Result<T, IpamError> {
    serde_json::from_slice(&kv.value).map_err(|e| IpamError::Corrupt {
        key: kv.key.clone(),
        reason: e.to_string(),
    })
}

/// Decodes a block and checks its invariants, so corrupt stored data is an
/// error rather than a wrong allocation (or an out-of-range index).
pub(crate) fn decode_block(kv: &KeyValue) -> Result<Block, IpamError> {
    let b: Block = decode(kv)?;
    b.check().map_err(|reason| IpamError::Corrupt {
        key: kv.key.clone(),
        reason,
    })?;
    Ok(b)
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The allocator.
#[derive(Clone)]
pub struct Ipam {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: Client,
}

impl Ipam {
    /// An allocator over `store`.
    pub fn new(store: Arc<dyn Store>) -> Ipam {
        Ipam {
            client: Client::new(store.clone()),
            store,
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The settings in force (defaults when there is no IPAMConfiguration).
    pub fn config(&self) -> Result<IpamConfig, IpamError> {
        let key = ResourceKey {
            kind: Kind::IPAMConfiguration,
            namespace: None,
            name: "default".into(),
        };
        let mut cfg = IpamConfig {
            strict_affinity: false,
            max_blocks_per_host: 0,
            auto_allocate_blocks: true,
        };
        match self.client.get(&key) {
            Ok(Resource::IPAMConfiguration(c)) => {
                cfg.strict_affinity = c.spec.strict_affinity;
                cfg.max_blocks_per_host = c.spec.max_blocks_per_host.unwrap_or(0).max(0) as u32;
                cfg.auto_allocate_blocks = c.spec.auto_allocate_blocks.unwrap_or(true);
            }
            Ok(_) | Err(ClientError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(cfg)
    }

    fn all_pools(&self) -> Result<Vec<(String, IPPoolSpec)>, IpamError> {
        let (list, _) = self.client.list(Kind::IPPool, None)?;
        Ok(list
            .into_iter()
            // A pool written around the API (e.g. straight into etcd) with an
            // invalid spec is ignored rather than trusted (a /0 "block" would
            // be an impossible allocation).
            .filter(|r| r.validate().is_ok())
            .filter_map(|r| match r {
                Resource::IPPool(p) => Some((p.metadata.name, p.spec)),
                _ => None,
            })
            .collect())
    }

    fn node_labels(&self, node: &str) -> Result<BTreeMap<String, String>, IpamError> {
        let key = ResourceKey {
            kind: Kind::Node,
            namespace: None,
            name: node.into(),
        };
        match self.client.get(&key) {
            Ok(r) => Ok(r.metadata().labels.clone()),
            Err(ClientError::NotFound(_)) => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every reserved network (IPReservations).
    pub fn reservations(&self) -> Result<Vec<IpNet>, IpamError> {
        let (list, _) = self.client.list(Kind::IPReservation, None)?;
        Ok(list
            .iter()
            .filter_map(|r| match r {
                Resource::IPReservation(r) => Some(r.spec.reserved_cidrs.clone()),
                _ => None,
            })
            .flatten()
            .filter_map(|c| calico_api::validate::cidr_or_ip(&c).ok())
            .collect())
    }

    fn select_pools(
        &self,
        v4: bool,
        requested: &[String],
        node: &str,
        use_: Use,
    ) -> Result<Vec<Pool>, IpamError> {
        let family = if v4 { 4 } else { 6 };
        let all = self.all_pools()?;
        let to_pool = |name: &str, spec: &IPPoolSpec| {
            spec.net().map(|net| Pool {
                name: name.to_string(),
                net,
                block_size: spec.block_size(),
            })
        };
        if !requested.is_empty() {
            let mut out = Vec::new();
            for want in requested {
                let want_net: Option<IpNet> = want.parse().ok();
                let found = all.iter().find(|(name, spec)| {
                    name == want
                        || (want_net.is_some()
                            && spec.net().map(|n| n.trunc()) == want_net.map(|n| n.trunc()))
                });
                let Some((name, spec)) = found else {
                    return Err(IpamError::PoolNotFound(want.clone()));
                };
                if spec.disabled {
                    return Err(IpamError::PoolDisabled(want.clone()));
                }
                match to_pool(name, spec) {
                    Some(p) if p.net.network().is_ipv4() == v4 => {
                        // As Calico: requested pools bypass nodeSelector and
                        // assignmentMode, never allowedUses (those that do
                        // not allow this use are dropped).
                        if allows(spec, use_) {
                            out.push(p);
                        }
                    }
                    _ => return Err(IpamError::PoolFamily(want.clone(), family)),
                }
            }
            if out.is_empty() {
                return Err(IpamError::PoolUse {
                    pools: requested.to_vec(),
                    use_: use_.name(),
                });
            }
            return Ok(out);
        }
        let labels = self.node_labels(node)?;
        let out: Vec<Pool> = all
            .iter()
            .filter(|(_, s)| !s.disabled)
            .filter(|(_, s)| s.net().is_some_and(|n| n.network().is_ipv4() == v4))
            .filter(|(_, s)| allows(s, use_))
            .filter(|(_, s)| s.assignment_mode.as_deref().unwrap_or("Automatic") == "Automatic")
            .filter(|(_, s)| {
                Selector::parse(s.node_selector()).is_ok_and(|sel| sel.matches(&labels))
            })
            .filter_map(|(n, s)| to_pool(n, s))
            .collect();
        if out.is_empty() {
            return Err(IpamError::NoPools {
                family,
                node: node.to_string(),
                use_: use_.name(),
            });
        }
        Ok(out)
    }

    /// Addresses already held by `handle`.
    pub fn ips_by_handle(&self, handle: &str) -> Result<Vec<IpAddr>, IpamError> {
        let Some(kv) = self.store.get(&keys::handle(handle))? else {
            return Ok(Vec::new());
        };
        let h: Handle = decode(&kv)?;
        let mut out = Vec::new();
        for cidr in h.block.keys() {
            let Ok(net) = cidr.parse::<IpNet>() else {
                continue;
            };
            if let Some(bkv) = self.store.get(&keys::block(&net))? {
                let b: Block = decode_block(&bkv)?;
                out.extend(b.ips_of_handle(handle));
            }
        }
        Ok(out)
    }

    /// Assigns addresses as Calico's auto-assign does. A request that cannot
    /// be met in full releases what it got and fails.
    pub fn auto_assign(&self, args: &AssignArgs) -> Result<Assigned, IpamError> {
        let cfg = self.config()?;
        let reserved = self.reservations()?;
        let mut out = Assigned::default();
        let result = (|| {
            if args.num_v4 > 0 {
                let pools = self.select_pools(true, &args.v4_pools, &args.node, args.use_)?;
                out.v4 = self.assign_family(args, &pools, args.num_v4, &cfg, &reserved, 4)?;
            }
            if args.num_v6 > 0 {
                let pools = self.select_pools(false, &args.v6_pools, &args.node, args.use_)?;
                out.v6 = self.assign_family(args, &pools, args.num_v6, &cfg, &reserved, 6)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(out),
            Err(e) => {
                let got: Vec<IpAddr> = out.v4.iter().chain(out.v6.iter()).copied().collect();
                if !got.is_empty() {
                    self.release_ips(&got)?;
                }
                Err(e)
            }
        }
    }

    fn assign_family(
        &self,
        args: &AssignArgs,
        pools: &[Pool],
        want: usize,
        cfg: &IpamConfig,
        reserved: &[IpNet],
        family: u8,
    ) -> Result<Vec<IpAddr>, IpamError> {
        let fam = if family == 4 { "ipv4" } else { "ipv6" };
        let is_reserved = |ip: IpAddr| reserved.iter().any(|r| r.contains(&ip));
        let in_pools = |net: &IpNet| {
            pools
                .iter()
                .any(|p| p.net.contains(&net.network()) && p.block_size == net.prefix_len())
        };
        let mut got: Vec<IpAddr> = Vec::new();
        let mut attempts = 0;
        let mut claims_exhausted = false;
        while got.len() < want {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                return Err(IpamError::Contention(MAX_ATTEMPTS));
            }
            // 1. The node's affine blocks.
            let (affs, _) = self.store.list(&keys::affinities_prefix(&args.node, fam))?;
            let affine: Vec<IpNet> = affs
                .iter()
                .filter_map(|kv| kv.key.rsplit('/').next().and_then(keys::parse_block_name))
                .filter(|n| in_pools(n))
                .collect();
            let mut progressed = false;
            for net in &affine {
                match self.assign_in_block(net, want - got.len(), args, &is_reserved)? {
                    Some(ips) if !ips.is_empty() => {
                        got.extend(ips);
                        progressed = true;
                    }
                    Some(_) => {}
                    None => {
                        // Conflict: another allocator wrote the block. Back off a
                        // little (randomly) so many callers do not retry in lockstep.
                        backoff(attempts);
                        progressed = true;
                        break;
                    }
                }
                if got.len() >= want {
                    break;
                }
            }
            if got.len() >= want || progressed {
                continue;
            }
            // 2. Claim a new block.
            let affine_count = affs.len() as u32;
            let may_claim = cfg.auto_allocate_blocks
                && (cfg.max_blocks_per_host == 0 || affine_count < cfg.max_blocks_per_host);
            if may_claim && !claims_exhausted {
                match self.claim_block(pools, &args.node, fam, &is_reserved)? {
                    Claim::Claimed => continue,
                    Claim::Conflict => {
                        backoff(attempts);
                        continue;
                    }
                    Claim::NoneFree => claims_exhausted = true,
                }
            }
            // 3. Borrow from other blocks.
            if cfg.strict_affinity {
                return Err(self.exhausted(
                    pools,
                    family,
                    got,
                    ": strictAffinity forbids borrowing from other nodes' blocks",
                ));
            }
            match self.borrow(pools, fam, want - got.len(), args, &is_reserved)? {
                Borrow::Got(ips) => got.extend(ips),
                Borrow::Conflict => {
                    backoff(attempts);
                    continue;
                }
                Borrow::NoneFree => {
                    let extra = if !may_claim {
                        ": the node holds maxBlocksPerHost blocks"
                    } else {
                        ""
                    };
                    return Err(self.exhausted(pools, family, got, extra));
                }
            }
        }
        Ok(got)
    }

    fn exhausted(&self, pools: &[Pool], family: u8, got: Vec<IpAddr>, extra: &str) -> IpamError {
        if !got.is_empty() {
            let _ = self.release_ips(&got);
        }
        IpamError::Exhausted {
            family,
            pools: pools
                .iter()
                .map(|p| format!("{} ({})", p.name, p.net))
                .collect(),
            extra: extra.to_string(),
        }
    }

    /// Allocates up to `n` addresses in one block with the handle, in one
    /// transaction. `Ok(None)` on a write conflict.
    fn assign_in_block(
        &self,
        net: &IpNet,
        n: usize,
        args: &AssignArgs,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Option<Vec<IpAddr>>, IpamError> {
        let bkey = keys::block(net);
        let Some(bkv) = self.store.get(&bkey)? else {
            return Ok(Some(Vec::new()));
        };
        let mut block: Block = decode_block(&bkv)?;
        if block.deleted || block.free() == 0 {
            return Ok(Some(Vec::new()));
        }
        let attr = Attribute {
            handle_id: Some(args.handle.clone()),
            secondary: args.attrs.clone(),
        };
        let ips = block.assign(n, attr, reserved);
        if ips.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let committed =
            self.commit_allocation(bkey, bkv.mod_revision, &block, &args.handle, ips.len())?;
        Ok(committed.then_some(ips))
    }

    /// Writes a block that gained `added` addresses for `handle`, together
    /// with the handle's count, in one transaction. `false` on a conflict.
    fn commit_allocation(
        &self,
        bkey: String,
        block_rev: i64,
        block: &Block,
        handle: &str,
        added: usize,
    ) -> Result<bool, IpamError> {
        let hkey = keys::handle(handle);
        let hkv = self.store.get(&hkey)?;
        let mut h: Handle = match &hkv {
            Some(kv) => decode(kv)?,
            None => Handle::default(),
        };
        *h.block.entry(block.cidr.clone()).or_insert(0) += added;
        let compares = [
            Compare::at(&bkey, block_rev),
            Compare::at(&hkey, hkv.map_or(0, |kv| kv.mod_revision)),
        ];
        let ops = [
            Op::Put {
                key: bkey,
                value: encode(block),
            },
            Op::Put {
                key: hkey,
                value: encode(&h),
            },
        ];
        Ok(self.store.txn(&compares, &ops)?.is_some())
    }

    /// Claims `net` for `node`: its affinity and an empty block, created
    /// together only if neither exists. `false` when someone else has it.
    fn try_claim(&self, node: &str, net: IpNet) -> Result<bool, IpamError> {
        let bkey = keys::block(&net);
        let akey = keys::affinity(node, &net);
        let aff = Affinity {
            state: "confirmed".into(),
            deleted: false,
        };
        let block = Block::new(net, Some(node));
        let r = self.store.txn(
            &[Compare::absent(&bkey), Compare::absent(&akey)],
            &[
                Op::Put {
                    key: akey,
                    value: encode(&aff),
                },
                Op::Put {
                    key: bkey,
                    value: encode(&block),
                },
            ],
        )?;
        Ok(r.is_some())
    }

    fn claim_block(
        &self,
        pools: &[Pool],
        node: &str,
        fam: &str,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Claim, IpamError> {
        let (blocks, _) = self.store.list(&keys::blocks_prefix(fam))?;
        let existing: HashSet<String> = blocks.iter().map(|kv| kv.key.clone()).collect();
        for pool in pools {
            let Ok(subnets) = pool.net.subnets(pool.block_size) else {
                continue;
            };
            for net in subnets {
                let bkey = keys::block(&net);
                if existing.contains(&bkey) {
                    continue;
                }
                // A block that is entirely reserved is of no use.
                let b = Block::new(net, Some(node));
                if b.unallocated
                    .iter()
                    .filter_map(|o| b.ip_of(*o))
                    .all(reserved)
                {
                    continue;
                }
                return Ok(if self.try_claim(node, net)? {
                    Claim::Claimed
                } else {
                    Claim::Conflict
                });
            }
        }
        Ok(Claim::NoneFree)
    }

    fn borrow(
        &self,
        pools: &[Pool],
        fam: &str,
        n: usize,
        args: &AssignArgs,
        reserved: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Borrow, IpamError> {
        let (blocks, _) = self.store.list(&keys::blocks_prefix(fam))?;
        for kv in &blocks {
            let b: Block = decode_block(kv)?;
            let Some(net) = b.net() else { continue };
            if !pools.iter().any(|p| p.net.contains(&net.network())) || b.free() == 0 {
                continue;
            }
            match self.assign_in_block(&net, n, args, reserved)? {
                Some(ips) if !ips.is_empty() => return Ok(Borrow::Got(ips)),
                Some(_) => {}
                None => return Ok(Borrow::Conflict),
            }
        }
        Ok(Borrow::NoneFree)
    }

    /// Assigns one specific address to `handle` for `use_` (the `ipAddrs`
    /// annotation: [`Use::Workload`]). As Calico's AssignIP: the address
    /// must be in an enabled pool whose allowedUses include `use_`
    /// (nodeSelector and assignmentMode do not apply). An address this
    /// handle already holds is no error ([`AssignedIp::AlreadyHeld`]).
    pub fn assign_ip(
        &self,
        ip: IpAddr,
        handle: &str,
        attrs: &BTreeMap<String, String>,
        node: &str,
        use_: Use,
    ) -> Result<AssignedIp, IpamError> {
        if self.reservations()?.iter().any(|r| r.contains(&ip)) {
            return Err(IpamError::Reserved(ip));
        }
        let pool = self
            .all_pools()?
            .into_iter()
            .find(|(_, s)| !s.disabled && s.net().is_some_and(|n| n.contains(&ip)))
            .ok_or(IpamError::NotInPool(ip))?;
        if !allows(&pool.1, use_) {
            return Err(IpamError::NotAllowed {
                ip,
                pool: pool.0,
                use_: use_.name(),
            });
        }
        let bs = pool.1.block_size();
        let net = IpNet::new(ip, bs)
            .map(|n| n.trunc())
            .map_err(|_| IpamError::NotInPool(ip))?;
        for _ in 0..MAX_ATTEMPTS {
            let bkey = keys::block(&net);
            let Some(bkv) = self.store.get(&bkey)? else {
                // Claim the block for this node first (or see someone else's).
                self.try_claim(node, net)?;
                continue;
            };
            let mut block: Block = decode_block(&bkv)?;
            let attr = Attribute {
                handle_id: Some(handle.to_string()),
                secondary: attrs.clone(),
            };
            if let Err(crate::block::BlockError::InUse(_)) = block.assign_ip(ip, attr) {
                let holder = block
                    .attribute_of(ip)
                    .and_then(|a| a.handle_id.clone())
                    .unwrap_or_default();
                if holder == handle {
                    return Ok(AssignedIp::AlreadyHeld);
                }
                return Err(IpamError::InUse { ip, handle: holder });
            }
            if self.commit_allocation(bkey, bkv.mod_revision, &block, handle, 1)? {
                return Ok(AssignedIp::New);
            }
        }
        Err(IpamError::Contention(MAX_ATTEMPTS))
    }
}

/// Whether a pool's allowedUses admit `use_` (unset or empty: Workload
/// and Tunnel, Calico's default).
fn allows(spec: &IPPoolSpec, use_: Use) -> bool {
    spec.allowed_uses
        .as_ref()
        .filter(|u| !u.is_empty())
        .is_none_or(|u| u.iter().any(|x| x == use_.name()))
}

/// Sleeps a random 0..=min(attempt, 10) ms after a write conflict.
fn backoff(attempt: usize) {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(attempt);
    let cap = (attempt.min(10) as u64 + 1) * 1000;
    std::thread::sleep(std::time::Duration::from_micros(h.finish() % cap));
}

enum Claim {
    Claimed,
    Conflict,
    NoneFree,
}

enum Borrow {
    Got(Vec<IpAddr>),
    Conflict,
    NoneFree,
}
