//! The node's IPAM service: the CNI plugins on this host may ask calico-node
//! (which keeps the store open) to allocate and release, instead of opening
//! the store in every plugin process. One JSON line per request and answer
//! on a unix socket (`CALICO_IPAM_SOCKET`, default
//! `/var/run/calico/ipam.sock`, mode 0600); requests are served one at a
//! time, which is also what the plugins' host-wide IPAM lock does. A plugin
//! that cannot reach the socket, or finds it serving another store, does
//! the work itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calico_datastore::Store;
use calico_ipam::Ipam;
use calico_ipam::service::{self, Request, Response};

/// The default socket path.
pub const DEFAULT_SOCKET: &str = "/var/run/calico/ipam.sock";

/// Starts serving on `path` from background threads.
pub fn serve(path: &Path, store: Arc<dyn Store>, identity: String) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by an earlier run.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let ipam = Ipam::new(store);
    // One thread serves the connections in turn: requests are carried out
    // one at a time anyway, and a thread per connection would cost more
    // than the request. A client gets `CLIENT_TIMEOUT` to send its line.
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            serve_one(conn, &ipam, &identity);
        }
    });
    Ok(())
}

/// How long a connected client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

fn serve_one(conn: UnixStream, ipam: &Ipam, identity: &str) {
    let timeout = Some(CLIENT_TIMEOUT);
    if conn.set_read_timeout(timeout).is_err() || conn.set_write_timeout(timeout).is_err() {
        return;
    }
    let mut line = String::new();
    if BufReader::new(&conn).read_line(&mut line).is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(r) => service::answer(ipam, identity, &r),
        Err(e) => Response::Failed {
            class: service::FailureClass::Other,
            message: format!("bad request: {e}"),
        },
    };
    // One write: the answer and its newline.
    let mut out = serde_json::to_vec(&answer).unwrap_or_default();
    out.push(b'\n');
    let _ = (&conn).write_all(&out);
}
