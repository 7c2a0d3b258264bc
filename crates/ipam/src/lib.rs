//! Calico's IPAM: addresses come from blocks carved out of IP pools; each
//! node is affine to blocks and allocates from them first, so routing needs
//! one route per block.
//!
//! - [`block`]: one allocation block, pure, with its invariants;
//! - [`keys`]: Calico's `/calico/ipam/v2/` key layout;
//! - [`service`]: one plugin request and its answer, runnable locally or
//!   by calico-node over a unix socket;
//! - [`allocator`]: [`Ipam`], the allocator over any `Store`: pool
//!   selection, block claims, borrowing, specific addresses;
//! - [`release`]: release by handle or address, what is allocated, orphan
//!   blocks;
//! - [`gc`]: CNI GC, only of this node's addresses of one network;
//! - [`hostlock`]: the host-wide IPAM lock file (private, bounded wait).
//!
//! Crash safety: a block and the handle that records its allocations are
//! always written in one compare-and-swap transaction, so a process killed
//! at any point leaves either nothing or an allocation tied to its handle.

pub mod allocator;
pub mod block;
pub mod gc;
pub mod hostlock;
pub mod keys;
pub mod release;
pub mod service;

pub use allocator::{AssignArgs, Assigned, AssignedIp, Ipam, IpamConfig, IpamError, Use};
pub use block::{Attribute, Block};

/// Every block, IPv4 then IPv6, as stored; with the revision of the last
/// list.
pub fn list_blocks(
    store: &dyn calico_datastore::Store,
) -> Result<
    (Vec<calico_datastore::KeyValue>, calico_datastore::Revision),
    calico_datastore::StoreError,
> {
    let mut all = Vec::new();
    let mut rev = 0;
    for family in ["ipv4", "ipv6"] {
        let (items, r) = store.list(&keys::blocks_prefix(family))?;
        all.extend(items);
        rev = rev.max(r);
    }
    Ok((all, rev))
}
