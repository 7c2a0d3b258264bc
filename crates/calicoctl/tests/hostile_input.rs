//! Hostile resource files for calicoctl (issue 17 point 4), as a process:
//! YAML alias bombs (anchors expanding 10^10 and 10^20 times), YAML nested
//! a million levels deep in flow style and 2,000 in block style, JSON
//! nested a million deep, from a file and from stdin. Each is refused in
//! plain words naming the document (the limits of
//! `calico_api::codec::stream`), with nothing written.
//!
//! Memory bound: calicoctl's peak RSS (`ru_maxrss` from wait4, through GNU
//! time) stays under 64 MiB for each (it took 233 MiB on the alias bombs
//! before they were refused, with serde-saphyr's default alias limit); an
//! apply of two resources is printed beside them for scale.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The stated bound on calicoctl's peak RSS, in KiB.
const BOUND_KIB: u64 = 64 * 1024;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    peak_kib: u64,
}

/// `calicoctl <args>` on the SQLite store in `dir`, under GNU time, with
/// `stdin` given.
fn calicoctl(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let time_out = dir.join("time.out");
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&time_out)
        .arg(env!("CARGO_BIN_EXE_calicoctl"))
        .args(args)
        .env_remove("DATASTORE_TYPE")
        .env_remove("ETCD_ENDPOINTS")
        .env("DATASTORE_PATH", dir.join("ds.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut pipe = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let _ = writer.join();
    let peak_kib = std::fs::read_to_string(&time_out)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time"));
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak_kib,
    }
}

const GNS: &str = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n";

/// A GlobalNetworkSet whose `x` holds `levels` anchors, each ten aliases
/// of the one before: 10^levels values once expanded.
fn alias_bomb(levels: usize) -> String {
    let mut bomb =
        format!("{GNS}metadata: {{name: bomb}}\nx0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
    for i in 1..levels {
        let p = i - 1;
        bomb += &format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        );
    }
    bomb
}

fn cases() -> Vec<(&'static str, String, &'static str)> {
    let flow = format!(
        "{GNS}metadata: {{name: deep}}\nspec: {{nets: {}1{}}}\n",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    let mut block = format!("{GNS}metadata: {{name: deep}}\nspec:\n");
    for i in 1..2000 {
        block += &"  ".repeat(i);
        block += "a:\n";
    }
    block += &"  ".repeat(2000);
    block += "b: 1\n";
    let json = format!(
        "{{\"apiVersion\": \"projectcalico.org/v3\", \"kind\": \"GlobalNetworkSet\", \"spec\": {}1{}}}",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    let bombed = "YAML aliases (*name) expand beyond the safe limits";
    vec![
        ("an alias bomb of 10^10", alias_bomb(10), bombed),
        ("an alias bomb of 10^20", alias_bomb(20), bombed),
        (
            "YAML nested 1,000,000 deep (flow)",
            flow,
            "mappings and lists nested deeper than 64 levels",
        ),
        (
            "YAML nested 2,000 deep (block)",
            block,
            "mappings and lists nested deeper than 64 levels",
        ),
        (
            "JSON nested 1,000,000 deep",
            json,
            "mappings and lists nested deeper than 128 levels",
        ),
    ]
}

#[test]
fn bombs_and_deep_nesting_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let one = dir.path().join("one.yaml");
    // Two resources, one with an alias, as a person may write them.
    let text = format!(
        "{GNS}metadata: {{name: one}}\nspec: {{nets: [10.0.0.0/8]}}\n---\n\
         {GNS}metadata: {{name: two, labels: &l {{app: x}}, annotations: *l}}\nspec: {{nets: [10.1.0.0/16]}}\n"
    );
    std::fs::write(&one, text).unwrap_or_else(|e| panic!("{e}"));
    let r = calicoctl(
        dir.path(),
        &["apply", "-f", &one.display().to_string()],
        b"",
    );
    assert!(r.ok, "{}", r.stderr);
    println!("two resources: peak RSS {} KiB", r.peak_kib);
    for (what, text, says) in cases() {
        let file = dir.path().join("hostile.yaml");
        std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        let path = file.display().to_string();
        for (how, args, stdin) in [
            ("file", vec!["apply", "-f", path.as_str()], &b""[..]),
            ("stdin", vec!["apply", "-f", "-"], text.as_bytes()),
        ] {
            let r = calicoctl(dir.path(), &args, stdin);
            println!(
                "{what} ({} KiB, {how}): peak RSS {} KiB (bound {BOUND_KIB}); {}",
                text.len() / 1024,
                r.peak_kib,
                r.stderr.trim()
            );
            assert!(!r.ok, "{what}, {how}: accepted");
            assert!(r.stderr.contains(says), "{what}, {how}: {}", r.stderr);
            assert!(
                r.stderr.contains("document 1"),
                "{what}, {how}: {}",
                r.stderr
            );
            assert!(
                r.peak_kib <= BOUND_KIB,
                "{what}, {how}: peak RSS {} KiB over {BOUND_KIB}",
                r.peak_kib
            );
        }
    }
    // Nothing written: only the first two resources are there.
    let r = calicoctl(dir.path(), &["get", "globalnetworksets"], b"");
    assert!(r.ok, "{}", r.stderr);
    let names: Vec<&str> = r.stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(names, ["one", "two"], "{}", r.stdout);
}
