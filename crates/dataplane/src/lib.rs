//! The Linux adapter: what calico-rs asks of the kernel's networking.
//!
//! - [`netlink`]: a synchronous rtnetlink client (links, veth pairs with one
//!   end created directly in another namespace, addresses, routes);
//! - [`netns`]: network namespaces, entered only by short-lived threads;
//! - [`sysctl`]: `/proc/sys` parameters;
//! - [`nftables`]: set elements in one netlink batch; [`conntrack`]:
//!   entries of removed addresses deleted over ctnetlink.
//!
//! No policy lives here: callers decide what to create, this crate only
//! does it and reports the kernel's answer.

pub mod conntrack;
pub mod netlink;
pub mod netns;
mod nfnl;
pub mod nftables;
pub mod sysctl;

pub use netlink::{Kind, Link, Netlink, Route, Scope, VethSpec};
pub use netns::NetNs;
