//! Programming the policy table at scale: N policies × M endpoints (see
//! `tests/common::scale_input`), N = M = 250, 500, 1000.
//!
//! `cargo bench -p calico-policy --bench program` prints, per size:
//! - compile time (model + table) and the table's size: lines must grow
//!   with N + M (×2 per doubling), not N × M (×4);
//! - as root with `unshare`: the time `nft -f` takes to load the whole table
//!   into a private network namespace, and to apply the transaction that
//!   adds one pod to it (the diff), side by side with the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use calico_policy::nft::compile::compile;
use calico_policy::{Model, diff};
use common::scale_input;

/// Runs `script` (sh) in a private network namespace; its stdout.
fn in_private_netns(script: &str) -> Option<String> {
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", script])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nanos(s: &str) -> Option<Duration> {
    s.trim().parse().ok().map(Duration::from_nanos)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = in_private_netns("nft list tables").is_some();
    if !kernel {
        eprintln!("no nft/unshare/root: printing compile figures only");
    }
    let mut last_lines = 0usize;
    println!("policies x endpoints: compile, table lines (growth), nft load, one-pod diff");
    for n in [250usize, 500, 1000] {
        let t = Instant::now();
        let old = compile(&Model::build(&scale_input(n, n)));
        let compiled = t.elapsed();
        let full = old.full();
        let lines = full.lines().count();
        let growth = if last_lines > 0 {
            format!("x{:.2}", lines as f64 / last_lines as f64)
        } else {
            "-".into()
        };
        last_lines = lines;
        // One more pod: the same cluster with endpoint number n added.
        let t = Instant::now();
        let new = compile(&Model::build(&scale_input(n, n + 1)));
        let tx = diff(&old, &new).to_string();
        let diffed = t.elapsed();
        print!(
            "  {n:>4} x {n:<4}  compile {:>7.1} ms  {lines:>6} lines ({growth})  diff {:>6.1} ms, {} lines",
            compiled.as_secs_f64() * 1e3,
            diffed.as_secs_f64() * 1e3,
            tx.lines().count()
        );
        if kernel {
            let f = dir.path().join("full.nft");
            let d = dir.path().join("diff.nft");
            std::fs::write(&f, &full).unwrap();
            std::fs::write(&d, &tx).unwrap();
            let script = format!(
                "a=$(date +%s%N); nft -f {f} || exit 1; b=$(date +%s%N); nft -f {d} || exit 1; \
                 c=$(date +%s%N); echo $((b-a)); echo $((c-b))",
                f = f.display(),
                d = d.display()
            );
            let out = in_private_netns(&script).unwrap_or_default();
            let mut t = out.lines().filter_map(nanos);
            if let (Some(load), Some(add)) = (t.next(), t.next()) {
                print!(
                    "  nft load {:>7.1} ms, add one pod {:>5.1} ms (ratio {:.3})",
                    load.as_secs_f64() * 1e3,
                    add.as_secs_f64() * 1e3,
                    add.as_secs_f64() / load.as_secs_f64()
                );
            } else {
                print!("  nft failed: {out}");
            }
        }
        println!();
    }
}
