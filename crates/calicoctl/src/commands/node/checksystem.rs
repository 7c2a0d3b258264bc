//! `calicoctl node checksystem [--kernel-config FILE]`: whether this
//! kernel has what calico-node uses — netfilter with nftables (required),
//! VXLAN, IP-in-IP, WireGuard and BPF (each needed only by the feature
//! that uses it) — each reported present or missing in plain words.
//!
//! Evidence, first that answers: the feature's own trace in `/proc` or
//! `/sys` (a module loaded or built in under `/sys/module`, `tunl0` under
//! `/proc/sys/net/ipv4/conf`, `/proc/sys/kernel/unprivileged_bpf_disabled`),
//! the module in `/proc/modules` or in `/lib/modules/$(uname -r)`'s
//! `modules.dep`/`modules.builtin`, then the kernel configuration
//! (`--kernel-config`, `/proc/config.gz`, `/boot/config-$(uname -r)`, as
//! Calico's). Nothing is loaded and no interface is created: creating an
//! IP-in-IP link would load `ipip`, which adds `tunl0` to the host.
//!
//! Exit status as Calico's: 1 when a required feature is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;
use clap::Args;

/// Arguments of checksystem.
#[derive(Args)]
pub struct ChecksystemArgs {
    /// The kernel configuration to read (default /proc/config.gz, then /boot/config-$(uname -r)).
    #[arg(long)]
    kernel_config: Option<PathBuf>,
}

/// One kernel feature.
pub struct Feature {
    /// What users call it.
    pub name: &'static str,
    /// Whether calico-node cannot run without it.
    pub required: bool,
    /// What needs it.
    pub needed_for: &'static str,
    /// Module names (as in /sys/module).
    modules: &'static [&'static str],
    /// Config options of which one must be `y` or `m`.
    config: &'static [&'static str],
    /// Paths whose existence proves it is there.
    traces: &'static [&'static str],
}

/// The features calico-node uses.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "netfilter (nftables)",
        required: true,
        needed_for: "policy, NAT and masquerade (calico-node programs nftables)",
        modules: &["nf_tables"],
        config: &["CONFIG_NF_TABLES"],
        traces: &[],
    },
    Feature {
        name: "VXLAN",
        required: false,
        needed_for: "IP pools with vxlanMode",
        modules: &["vxlan"],
        config: &["CONFIG_VXLAN"],
        traces: &[],
    },
    Feature {
        name: "IPIP",
        required: false,
        needed_for: "IP pools with ipipMode",
        modules: &["ipip"],
        config: &["CONFIG_NET_IPIP"],
        traces: &["/proc/sys/net/ipv4/conf/tunl0"],
    },
    Feature {
        name: "WireGuard",
        required: false,
        needed_for: "encryption (wireguardEnabled)",
        modules: &["wireguard"],
        config: &["CONFIG_WIREGUARD"],
        traces: &[],
    },
    Feature {
        name: "BPF",
        required: false,
        needed_for: "the eBPF dataplane",
        modules: &[],
        config: &["CONFIG_BPF_SYSCALL"],
        traces: &["/proc/sys/kernel/unprivileged_bpf_disabled"],
    },
];

/// What the machine shows: files read once.
pub struct Evidence {
    /// Root of /sys/module, /proc (for tests: a fake tree).
    root: PathBuf,
    /// `/proc/modules` text.
    proc_modules: String,
    /// `modules.dep` and `modules.builtin` text.
    module_lists: String,
    /// The kernel configuration text and where it came from.
    config: Option<(String, String)>,
}

/// The verdict on one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Present, with the evidence.
    Present(String),
    /// Missing, with why we think so.
    Missing(String),
}

impl Evidence {
    /// Reads this machine (`kernel_config` overrides the config file).
    pub fn gather(kernel_config: Option<&Path>) -> Evidence {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let mut module_lists = String::new();
        for f in ["modules.dep", "modules.builtin"] {
            let p = format!("/lib/modules/{release}/{f}");
            module_lists += &std::fs::read_to_string(p).unwrap_or_default();
        }
        let config = match kernel_config {
            Some(p) => read_config(p),
            None => read_config(Path::new("/proc/config.gz"))
                .or_else(|| read_config(Path::new(&format!("/boot/config-{release}")))),
        };
        Evidence {
            root: PathBuf::from("/"),
            proc_modules: std::fs::read_to_string("/proc/modules").unwrap_or_default(),
            module_lists,
            config,
        }
    }

    /// The verdict on `f`.
    pub fn check(&self, f: &Feature) -> Verdict {
        for t in f.traces {
            let p = self.root.join(t.trim_start_matches('/'));
            if p.exists() {
                return Verdict::Present(format!("{t} exists"));
            }
        }
        for m in f.modules {
            if self.root.join("sys/module").join(m).exists() {
                return Verdict::Present(format!("module {m} is loaded or built in"));
            }
            if self
                .proc_modules
                .lines()
                .any(|l| l.split_whitespace().next() == Some(m))
            {
                return Verdict::Present(format!("module {m} is loaded"));
            }
            let ko = format!("/{m}.ko");
            if self.module_lists.lines().any(|l| {
                l.split(':')
                    .next()
                    .is_some_and(|p| p.contains(&ko) || p.starts_with(&ko[1..]))
            }) {
                return Verdict::Present(format!("module {m} can be loaded"));
            }
        }
        let Some((text, source)) = &self.config else {
            return Verdict::Missing(
                "no sign of it in /sys/module, /proc/modules or /lib/modules, and no kernel configuration to read (give --kernel-config)".into(),
            );
        };
        for c in f.config {
            if let Some(v @ ("y" | "m")) = config_value(text, c) {
                return Verdict::Present(format!("{c}={v} in {source}"));
            }
        }
        let names: Vec<String> = f.config.iter().map(|c| format!("{c} is not set")).collect();
        Verdict::Missing(format!(
            "this kernel lacks it: {} in {source}",
            names.join(", ")
        ))
    }
}

/// `CONFIG_X`'s value in a kernel config text.
fn config_value<'a>(text: &'a str, option: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.strip_prefix(option)
            .and_then(|r| r.strip_prefix('='))
            .map(str::trim)
    })
}

/// A kernel config file, gzip-compressed (`.gz`) or not.
fn read_config(p: &Path) -> Option<(String, String)> {
    if !p.exists() {
        return None;
    }
    let text = if p.extension().is_some_and(|e| e == "gz") {
        let out = Command::new("gzip").arg("-dc").arg(p).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        std::fs::read_to_string(p).ok()?
    };
    Some((text, p.display().to_string()))
}

/// The report text and whether every required feature is present.
pub fn report(e: &Evidence) -> (String, bool) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut out = format!("Checking kernel version...\n\t\t{release:<30}OK\n");
    out += "Checking kernel features...\n";
    let mut ok = true;
    for f in FEATURES {
        let need = if f.required {
            "required".to_string()
        } else {
            format!("needed only for {}", f.needed_for)
        };
        match e.check(f) {
            Verdict::Present(why) => {
                out += &format!("\t\t{:<22}present ({why})\n", f.name);
            }
            Verdict::Missing(why) => {
                if f.required {
                    ok = false;
                }
                out += &format!("\t\t{:<22}missing: {why}; {need}\n", f.name);
            }
        }
    }
    (out, ok)
}

/// Runs the command.
pub fn run(a: ChecksystemArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.kernel_config
        && !p.exists()
    {
        bail!("kernel config file {} does not exist", p.display());
    }
    let e = Evidence::gather(a.kernel_config.as_deref());
    let (text, ok) = report(&e);
    print!("{text}");
    if !ok {
        bail!("system doesn't meet one or more minimum systems requirements to run calico-node");
    }
    println!("System meets minimum system requirements to run Calico!");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(config: &str) -> Evidence {
        Evidence {
            root: PathBuf::from("/nonexistent-root-for-tests"),
            proc_modules: "nf_tables 1 0 - Live 0x0\n".into(),
            module_lists: "kernel/drivers/net/vxlan/vxlan.ko:\n".into(),
            config: Some((config.into(), "test-config".into())),
        }
    }

    #[test]
    fn verdicts_follow_modules_then_config() {
        let e =
            evidence("# CONFIG_NET_IPIP is not set\nCONFIG_WIREGUARD=m\nCONFIG_BPF_SYSCALL=y\n");
        let by_name = |n: &str| {
            let f = FEATURES
                .iter()
                .find(|f| f.name == n)
                .unwrap_or_else(|| panic!("{n}"));
            e.check(f)
        };
        assert!(
            matches!(by_name("netfilter (nftables)"), Verdict::Present(w) if w.contains("loaded"))
        );
        assert!(matches!(by_name("VXLAN"), Verdict::Present(w) if w.contains("can be loaded")));
        assert!(
            matches!(by_name("IPIP"), Verdict::Missing(w) if w.contains("CONFIG_NET_IPIP is not set"))
        );
        assert!(
            matches!(by_name("WireGuard"), Verdict::Present(w) if w.contains("CONFIG_WIREGUARD=m"))
        );
        assert!(matches!(by_name("BPF"), Verdict::Present(_)));
    }

    #[test]
    fn a_missing_required_feature_fails_the_check() {
        let mut e = evidence("# CONFIG_NF_TABLES is not set\n");
        e.proc_modules.clear();
        let (text, ok) = report(&e);
        assert!(!ok, "{text}");
        assert!(text.contains("netfilter (nftables)  missing"), "{text}");
        let (_, ok) = report(&evidence("CONFIG_NF_TABLES=y\n"));
        assert!(ok);
    }
}
