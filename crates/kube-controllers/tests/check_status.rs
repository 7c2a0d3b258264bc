//! The `check-status` binary against status files: ready → 0 and `Ready`,
//! not ready → 1 and the reasons, missing file or no flag → 1.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_check-status"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[test]
fn probes_read_the_status_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("status.json");
    let p = f.to_string_lossy().to_string();
    std::fs::write(&f, r#"{"Readiness":{"CalicoDatastore":{"Ready":true,"Reason":""},"KubeAPIServer":{"Ready":true,"Reason":""}}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&["-r", "-f", &p]), (0, "Ready".into()));
    assert_eq!(run(&["-l", "-f", &p]), (0, "Ready".into()));
    std::fs::write(
        &f,
        r#"{"Readiness":{"CalicoDatastore":{"Ready":false,"Reason":"etcd down"}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&["-r", "-f", &p]), (1, "etcd down".into()));
    assert_eq!(run(&["-l", "-f", "/nonexistent/status.json"]).0, 1);
    assert_eq!(run(&[]).0, 1);
}
