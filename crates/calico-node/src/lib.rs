//! calico-node, the per-host agent.
//!
//! - [`config`]: the environment, read as Calico's calico-node reads it (pure);
//! - [`autodetect`]: the node's address by `IP_AUTODETECTION_METHOD`;
//! - [`startup`]: Node registration, default pools, VXLAN tunnel address, files for the CNI plugin;

pub mod autodetect;
pub mod bgp;
pub mod config;
pub mod control;
pub mod engine;
pub mod felix;
pub mod felix_env;
pub mod health;
pub mod http;
pub mod install;
pub mod io_runtime;
pub mod ipam_server;
pub mod line_server;
pub mod metrics;
pub mod startup;
