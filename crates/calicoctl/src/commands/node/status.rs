//! `calicoctl node status`: as Calico's, on the host it runs on — whether
//! the calico-node agent process is running, then the BGP sessions. This
//! build has no BGP speaker yet, so for a running agent it says, as Calico
//! does without BIRD, that no BGP backend process runs.

use anyhow::bail;

/// Whether a `calico-node` agent (not a probe or install run) is running.
pub fn agent_running() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            return false;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let Some(first) = args.first() else {
            return false;
        };
        let is_node = first.rsplit(|b| *b == b'/').next() == Some(b"calico-node".as_slice());
        // The agent runs with no argument or with -startup finished; probes exit at once.
        is_node && args.len() == 1
    })
}

pub fn run() -> anyhow::Result<()> {
    if !agent_running() {
        bail!("Calico process is not running.");
    }
    println!("Calico process is running.\n");
    println!("None of the BGP backend processes (BIRD or GoBGP) are running.");
    Ok(())
}
