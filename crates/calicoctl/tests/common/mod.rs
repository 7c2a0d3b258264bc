//! The harness the calicoctl test binaries share: a datastore (a real
//! SQLite file, or a real etcd started here) given to the real binary as
//! environment variables, and running it with or without input, inside a
//! network namespace or not.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write;
use std::process::{Command, Stdio};

use calico_testutil::EtcdServer;

/// Where the datastore is: env vars for the calicoctl process, and a
/// scratch directory (its working directory).
pub struct Ds {
    pub env: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
    pub _etcd: Option<EtcdServer>,
}

/// A local store: a SQLite file in a fresh directory.
pub fn local() -> Ds {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("ds.db").display().to_string();
    Ds {
        env: vec![("DATASTORE_PATH".into(), path)],
        dir,
        _etcd: None,
    }
}

/// A real etcd, on loopback.
pub fn etcd() -> Ds {
    let server = EtcdServer::start();
    Ds {
        env: vec![
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), server.endpoint()),
        ],
        dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        _etcd: Some(server),
    }
}

/// What one run printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ds {
    /// calicoctl (in `netns` when given) with this datastore and nothing
    /// of the caller's datastore settings.
    pub fn command(&self, netns: Option<&str>) -> Command {
        let bin = env!("CARGO_BIN_EXE_calicoctl");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        cmd.env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .env_remove("DATASTORE_PATH")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs calicoctl with `args`, more environment and `input` on stdin;
    /// a panic is a failed test whatever the exit code.
    pub fn run_full(
        &self,
        netns: Option<&str>,
        args: &[&str],
        extra_env: &[(&str, &str)],
        input: Option<&str>,
    ) -> Run {
        let mut cmd = self.command(netns);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run calicoctl: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.unwrap_or("").as_bytes());
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !r.stderr.contains("panicked"),
            "calicoctl {args:?} panicked:\n{}",
            r.stderr
        );
        r
    }

    pub fn run_in(&self, netns: Option<&str>, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        self.run_full(netns, args, extra_env, None)
    }

    pub fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Run {
        self.run_full(None, args, &[], input)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_full(None, args, &[], None)
    }

    /// Runs calicoctl, which must succeed: what it printed on stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_both(args).0
    }

    /// Runs calicoctl, which must succeed: stdout and stderr.
    pub fn ok_both(&self, args: &[&str]) -> (String, String) {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "calicoctl {args:?} failed:\n{}{}",
            r.stdout, r.stderr
        );
        (r.stdout, r.stderr)
    }

    /// Runs calicoctl, which must fail: what it said on stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_ne!(
            r.code, 0,
            "calicoctl {args:?} should have failed:\n{}",
            r.stdout
        );
        r.stderr
    }

    /// Writes `text` to `name` in the scratch directory; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p.display().to_string()
    }
}
