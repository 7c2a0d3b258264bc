//! `calicoctl node diags [--log-dir DIR] [--nodename NAME]`: this node's
//! diagnostics in one archive, as Calico's: a new directory under the
//! temporary directory (`$TMPDIR`, else `/tmp`) named `calico-diags-…`,
//! holding `diags-<YYYYMMDD_HHMMSS>.tar.gz` (made by the system `tar`) of
//! one folder `diagnostics/`:
//!
//! ```text
//! date, hostname                        when and where
//! ipv4_route, ipv6_route                ip -4|-6 route show table all
//! ipv4_addr, ipv6_addr, links           ip -4|-6 addr, ip -d link
//! nft_ruleset                           nft -n -a list ruleset
//! ss                                    ss -a -n
//! bgp_status                            calicoctl node status
//! journalctl_calico_node                journalctl -u calico-node.service
//! logs/                                 a copy of --log-dir (/var/log/calico: the
//!                                       agent's log files when file logging is on,
//!                                       cni/cni.log of the plugins)
//! resources/node.yaml                   this node's Node
//! resources/workloadendpoints.yaml      its WorkloadEndpoints
//! resources/ipam_blocks.json            the IPAM blocks affine to it, as stored
//! ```
//!
//! A command that is missing or fails leaves its error in its file instead
//! of stopping the collection; the archive is always written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use calico_api::{Kind, Resource, encode_yaml, to_output_value};
use clap::Args;

/// Arguments of diags.
#[derive(Args)]
pub struct DiagsArgs {
    /// Where the Calico logs are.
    #[arg(long, default_value = "/var/log/calico")]
    log_dir: PathBuf,
    /// This node's name (default: NODENAME, then calico-node's nodename file, then the hostname).
    #[arg(long)]
    nodename: Option<String>,
}

/// (file, program, arguments) of each command whose output is kept.
const COMMANDS: &[(&str, &str, &[&str])] = &[
    ("date", "date", &[]),
    ("hostname", "hostname", &[]),
    ("ipv4_route", "ip", &["-4", "route", "show", "table", "all"]),
    ("ipv6_route", "ip", &["-6", "route", "show", "table", "all"]),
    ("ipv4_addr", "ip", &["-4", "addr"]),
    ("ipv6_addr", "ip", &["-6", "addr"]),
    ("links", "ip", &["-d", "link"]),
    ("nft_ruleset", "nft", &["-n", "-a", "list", "ruleset"]),
    ("ss", "ss", &["-a", "-n"]),
    (
        "journalctl_calico_node",
        "journalctl",
        &["-u", "calico-node.service", "--no-pager"],
    ),
];

/// Runs the command.
pub fn run(config: Option<&PathBuf>, a: DiagsArgs) -> anyhow::Result<()> {
    println!("Collecting diagnostics");
    let tmp = unique_dir()?;
    println!("Using temp dir: {}", tmp.display());
    let diag = tmp.join("diagnostics");
    std::fs::create_dir_all(diag.join("resources"))
        .with_context(|| format!("cannot create {}", diag.display()))?;
    for (file, prog, args) in COMMANDS {
        write_output(&diag.join(file), Command::new(prog).args(*args));
    }
    match std::env::current_exe() {
        Ok(me) => write_output(
            &diag.join("bgp_status"),
            Command::new(me).args(["node", "status"]),
        ),
        Err(e) => write_file(
            &diag.join("bgp_status"),
            &format!("cannot run calicoctl: {e}\n"),
        ),
    }
    if a.log_dir.is_dir() {
        println!("Copying Calico logs");
        if let Err(e) = copy_tree(&a.log_dir, &diag.join("logs")) {
            println!("Error copying log files: {e}");
        }
    } else {
        println!(
            "No logs found in {}; skipping log copying",
            a.log_dir.display()
        );
    }
    let name = a.nodename.clone().unwrap_or_else(nodename);
    if let Err(e) = resources(config, &name, &diag.join("resources")) {
        write_file(
            &diag.join("resources").join("error"),
            &format!("cannot read node {name:?}'s resources: {e:#}\n"),
        );
    }
    let archive = format!("diags-{}.tar.gz", utc_stamp());
    let out = Command::new("tar")
        .arg("-zcf")
        .arg(&archive)
        .arg("diagnostics")
        .current_dir(&tmp)
        .output()
        .context("cannot run tar to make the archive")?;
    if !out.status.success() {
        anyhow::bail!(
            "tar could not make the archive in {}: {}",
            tmp.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("\nDiags saved to {}", tmp.join(&archive).display());
    println!("If required, you can upload the diagnostics bundle to a file sharing service.");
    Ok(())
}

/// This node's name as calico-node finds it.
fn nodename() -> String {
    let state = std::env::var("CALICO_STATE_DIR")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/var/lib/calico".into());
    std::env::var("NODENAME")
        .ok()
        .or_else(|| std::fs::read_to_string(Path::new(&state).join("nodename")).ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The node's Node, WorkloadEndpoints and affine IPAM blocks.
fn resources(config: Option<&PathBuf>, name: &str, dir: &Path) -> anyhow::Result<()> {
    let client = crate::connect(config)?;
    let (nodes, _) = client.list(Kind::Node, None)?;
    let mine: Vec<Resource> = nodes
        .into_iter()
        .filter(|n| n.metadata().name == name)
        .collect();
    write_file(
        &dir.join("node.yaml"),
        &encode_yaml(&to_output_value(&mine, true)),
    );
    let (weps, _) = client.list(Kind::WorkloadEndpoint, None)?;
    let weps: Vec<Resource> = weps
        .into_iter()
        .filter(|w| matches!(w, Resource::WorkloadEndpoint(w) if w.spec.node == name))
        .collect();
    write_file(
        &dir.join("workloadendpoints.yaml"),
        &encode_yaml(&to_output_value(&weps, true)),
    );
    let (blocks, _) = client.store().list("/calico/ipam/v2/assignment/")?;
    let mut out = Vec::new();
    for kv in blocks {
        // The block as stored (every field kept); its affinity as IPAM reads it.
        let v: serde_json::Value = serde_json::from_slice(&kv.value).unwrap_or_default();
        let mine = serde_json::from_value::<calico_ipam::Block>(v.clone())
            .is_ok_and(|b| b.affine_node() == Some(name));
        if mine {
            out.push(serde_json::json!({"Key": kv.key, "Value": v}));
        }
    }
    let text = serde_json::to_string_pretty(&out).unwrap_or_default();
    write_file(&dir.join("ipam_blocks.json"), &(text + "\n"));
    Ok(())
}

fn write_file(p: &Path, text: &str) {
    if let Err(e) = std::fs::write(p, text) {
        println!("Could not write {}: {e}", p.display());
    }
}

/// The command's output, or why there is none, into `p`.
fn write_output(p: &Path, cmd: &mut Command) {
    let text = match cmd.output() {
        Ok(o) => {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            if !o.status.success() {
                let _ = write!(
                    t,
                    "\n# {:?} failed ({}): {}\n",
                    cmd.get_program(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
            }
            t
        }
        Err(e) => format!("# cannot run {:?}: {e}\n", cmd.get_program()),
    };
    write_file(p, &text);
}

/// A new directory `calico-diags-…` in the temporary directory.
fn unique_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut last = None;
    for i in 0..100u32 {
        let p = base.join(format!(
            "calico-diags-{}-{}",
            std::process::id(),
            nanos.wrapping_add(i)
        ));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "cannot create a directory in {}: {}",
        base.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// Copies a directory tree (files and directories; links are skipped).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let t = e.file_type()?;
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if t.is_file() {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// `YYYYMMDD_HHMMSS` in UTC.
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}_{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamp_is_calicos_layout() {
        let s = super::utc_stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(&s[8..9], "_");
        assert!(s.starts_with("20"), "{s}");
    }
}
