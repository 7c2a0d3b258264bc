//! Running the configured IPAM plugin when it is not `calico-ipam` (e.g.
//! `host-local`), as the CNI spec's delegation works: the plugin is found
//! in `CNI_PATH`, gets the same stdin and environment with `CNI_COMMAND`
//! set, and answers with a result or a CNI error.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use cni_spec::env::Command;
use cni_spec::error::CniError;
use cni_spec::result::CniResult;
use serde_json::Value;

use crate::Invocation;

fn find(inv: &Invocation, name: &str) -> Result<PathBuf, CniError> {
    if name.contains('/') || name.is_empty() {
        return Err(CniError::invalid_network_config(format!(
            "ipam.type {name:?} is not a plugin name"
        )));
    }
    inv.env
        .path
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::invalid_network_config(format!(
                "IPAM plugin {name} not found in CNI_PATH ({})",
                inv.env.path.join(":")
            ))
        })
}

/// Runs the IPAM plugin with `command`; its parsed result for ADD.
pub fn exec(inv: &Invocation, command: Command) -> Result<Option<CniResult>, CniError> {
    let name = inv.conf.ipam_or_default().ipam_type;
    let bin = find(inv, &name)?;
    let mut child = Process::new(&bin)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| CniError::new(100, format!("run {}: {e}", bin.display()), ""))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&inv.raw);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::new(100, format!("run {}: {e}", bin.display()), ""))?;
    let value: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    if !out.status.success() {
        return Err(value
            .as_ref()
            .and_then(CniError::from_value)
            .unwrap_or_else(|| {
                CniError::new(
                    100,
                    format!("IPAM plugin {name} failed ({})", out.status),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            }));
    }
    if command != Command::Add {
        return Ok(None);
    }
    let value = value.ok_or_else(|| {
        CniError::new(
            100,
            format!("IPAM plugin {name} printed no JSON result"),
            "",
        )
    })?;
    CniResult::from_json(&value).map(Some)
}
