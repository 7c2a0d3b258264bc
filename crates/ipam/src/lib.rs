//! Calico's IPAM: addresses come from blocks carved out of IP pools; each
//! node is affine to blocks and allocates from them first, so routing needs
//! one route per block.
//!
//! - [`block`]: one allocation block, pure, with its invariants;
//! - [`keys`]: Calico's `/calico/ipam/v2/` key layout;
//! - [`service`]: one plugin request and its answer, runnable locally or
//!   by calico-node over a unix socket;
//! - [`allocator`]: [`Ipam`], the allocator over any `Store`: pool
//!   selection, block claims, borrowing, specific addresses, release, GC.
//!
//! Crash safety: a block and the handle that records its allocations are
//! always written in one compare-and-swap transaction, so a process killed
//! at any point leaves either nothing or an allocation tied to its handle.

pub mod allocator;
pub mod block;
pub mod keys;
pub mod service;

pub use allocator::{AssignArgs, Assigned, Ipam, IpamConfig, IpamError, Use};
pub use block::{Attribute, Block};
