//! BIRD 2 (Debian `bird2`) as a real BGP peer for the tests and the bench.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A BIRD process in a named network namespace, with its configuration and
/// control socket in `dir`; killed on drop.
pub struct Bird {
    child: Child,
    socket: PathBuf,
    netns: String,
}

impl Bird {
    /// Starts `bird` with `config` (files `<dir>/<name>.conf`, `.ctl`,
    /// `.log`) and waits until it answers on its control socket.
    pub fn start(netns: &str, dir: &Path, name: &str, config: &str) -> Bird {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config).unwrap();
        let socket = dir.join(format!("{name}.ctl"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "bird", "-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut b = Bird {
            child,
            socket,
            netns: netns.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!(
                    "bird {name} exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            // The socket appears once the configuration is read.
            if b.socket.exists() && b.cmd(&["show", "status"]).contains("Daemon is up") {
                return b;
            }
            assert!(Instant::now() < deadline, "bird {name} never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `birdc` with `args`; its output.
    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "birdc", "-s"])
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `ip netns exec` execs, so this is bird's own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
