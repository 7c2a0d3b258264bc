//! The agent's control socket: its health and BGP status for the probes
//! (`-felix-live`, `-felix-ready`, `-bird-live`, `-bird-ready`) and for
//! `calicoctl node status`, always on whatever `FELIX_HEALTHENABLED` says
//! — as Calico answers these from BIRD's control socket and Felix's — and
//! root-only (the socket is 0600, so only its owner can connect).
//!
//! Where: `<CALICO_STATE_DIR>/calico-node.ctl` when the state directory is
//! set, else `/var/run/calico/calico-node.ctl` ([`path`]).
//!
//! Protocol: the client sends one line naming what it asks, as the health
//! server's paths (`/liveness`, `/readiness`, `/bgp-liveness`,
//! `/bgp-readiness`, `/bgp-status`); the agent answers the status code on
//! the first line and the body after it, then closes. Connections are
//! served by [`crate::line_server`] within [`LIMITS`]: none waits on
//! another, 1,024 at once; a client has [`CLIENT_TIMEOUT`] from connect
//! to send at most [`MAX_REQUEST`] bytes (a longer line is answered 400,
//! an unknown one 404).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::health::Health;
use crate::line_server::{self, Limits, Line, Outcome};

/// The directory of the socket when no state directory is set.
pub const DEFAULT_DIR: &str = "/var/run/calico";
/// The socket's file name.
pub const FILE_NAME: &str = "calico-node.ctl";
/// How long a connected client may take to send its request (from
/// connect), and again to take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request line read.
pub const MAX_REQUEST: usize = 256;
/// What the socket tolerates of its clients.
pub const LIMITS: Limits = Limits {
    max_connections: 1024,
    max_line: MAX_REQUEST,
    deadline: CLIENT_TIMEOUT,
};
/// The requests understood.
pub const REQUESTS: [&str; 5] = [
    "/liveness",
    "/readiness",
    "/bgp-liveness",
    "/bgp-readiness",
    "/bgp-status",
];

/// The socket's path for a state directory (`CALICO_STATE_DIR`), if set.
pub fn path(state_dir: Option<&str>) -> PathBuf {
    match state_dir.map(str::trim).filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(dir).join(FILE_NAME),
        None => Path::new(DEFAULT_DIR).join(FILE_NAME),
    }
}

/// Starts answering on `path` from a background thread.
pub fn serve(health: Arc<Health>, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by an earlier run; anything else there is not ours.
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    line_server::serve(listener, "control socket", LIMITS, Control { health })
}

struct Control {
    health: Arc<Health>,
}

impl line_server::Answer for Control {
    fn answer(&self, line: Line) -> Outcome {
        let what = String::from_utf8_lossy(line.bytes());
        let what = what.trim();
        if !REQUESTS.contains(&what) {
            return Outcome::Malformed {
                detail: format!("unknown request {what:?}"),
                answer: b"404\nnot found\n".to_vec(),
            };
        }
        let (code, body) = self.health.answer(what);
        Outcome::Reply(Box::pin(std::future::ready(
            format!("{code}\n{body}").into_bytes(),
        )))
    }

    fn too_long(&self, limit: usize) -> Vec<u8> {
        format!("400\nrequest longer than {limit} bytes\n").into_bytes()
    }
}

/// Asks the agent listening on `path` for `what` (a health path); the body
/// when it answers 200, else why not.
pub fn ask(path: &Path, what: &str) -> Result<String, String> {
    let conn = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "calico-node is not running (no control socket at {})",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("{}: permission denied (run as root)", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })?;
    let timeout = Some(Duration::from_secs(5));
    let _ = conn.set_read_timeout(timeout);
    let _ = conn.set_write_timeout(timeout);
    writeln!(&conn, "{what}").map_err(|e| format!("{}: {e}", path.display()))?;
    let mut answer = String::new();
    (&conn)
        .take(1 << 20)
        .read_to_string(&mut answer)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (code, body) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    if code.trim() == "200" {
        Ok(body.trim_end().to_string())
    } else if body.trim().is_empty() {
        Err(format!("calico-node answered {}", code.trim()))
    } else {
        Err(body.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_health_and_refuses_what_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(Some(dir.path().to_str().unwrap()));
        assert_eq!(p, dir.path().join("calico-node.ctl"));
        assert_eq!(path(None), Path::new("/var/run/calico/calico-node.ctl"));
        let h = Health::new();
        serve(h.clone(), &p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(ask(&p, "/liveness").unwrap().starts_with("live"));
        assert_eq!(ask(&p, "/readiness").unwrap_err(), "not ready: starting");
        h.set_ready(true, "in sync");
        assert_eq!(ask(&p, "/readiness").unwrap(), "ready: in sync");
        assert!(
            ask(&p, "/bgp-readiness")
                .unwrap_err()
                .contains("BGP speaker is not running")
        );
        assert!(ask(&p, "/nonsense").is_err());
        // A request longer than the limit is cut, not buffered.
        let long = "x".repeat(10_000);
        assert!(ask(&p, &long).is_err());
        assert!(ask(&p, "/liveness").is_ok(), "still answering");
        // Something that is not a socket is not replaced.
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        assert!(serve(h, &file).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
        let gone = dir.path().join("none.ctl");
        assert!(ask(&gone, "/liveness").unwrap_err().contains("not running"));
    }
}
