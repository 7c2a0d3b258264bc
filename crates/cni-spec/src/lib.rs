//! The Container Network Interface (CNI) specification, spec versions 0.3.0
//! to 1.1.0, as pure data types for the `calico` and `calico-ipam` plugins.
//!
//! This crate does no I/O at all: it never reads the process environment,
//! stdin or files. Callers hand it strings and lookups and write what it
//! returns. It holds
//! - [`version`]: the spec versions a plugin speaks and the `VERSION` reply,
//! - [`error`]: the error object and the spec's well-known error codes,
//! - [`env`](mod@env): the `CNI_*` protocol parameters, checked per command,
//! - [`config`]: the network configuration a plugin receives on stdin, with
//!   Calico's fields typed and every other field kept,
//! - [`result`]: a version-independent result with the exact wire format of
//!   each spec version, readable back from any of them (for `prevResult`).

#![warn(missing_docs)]

pub mod config;
pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use config::{IpamConf, NetConf};
pub use env::{Command, Env, K8sArgs};
pub use error::CniError;
pub use result::{CniResult, Dns, Interface, IpConfig, Route, ip_net, parse_ip_net};
pub use version::{CniVersion, SUPPORTED, version_result};
