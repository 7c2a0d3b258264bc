//! The node's IPAM service: the CNI plugins on this host may ask calico-node
//! (which keeps the store open) to allocate and release, instead of opening
//! the store in every plugin process. One JSON line per request and answer
//! on a unix socket (`CALICO_IPAM_SOCKET`, default
//! `/var/run/calico/ipam.sock`, mode 0600); requests are served one at a
//! time, which is also what the plugins' host-wide IPAM lock does. A plugin
//! that cannot reach the socket, or finds it serving another store, does
//! the work itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
    let ipam = Arc::new(Mutex::new(Ipam::new(store)));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (ipam, identity) = (ipam.clone(), identity.clone());
            std::thread::spawn(move || {
                let Ok(read) = conn.try_clone() else { return };
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).is_err() {
                    return;
                }
                let answer = match serde_json::from_str::<Request>(&line) {
                    Ok(r) => {
                        let ipam = ipam.lock().unwrap_or_else(|p| p.into_inner());
                        service::answer(&ipam, &identity, &r)
                    }
                    Err(e) => Response::Failed {
                        class: service::FailureClass::Other,
                        message: format!("bad request: {e}"),
                    },
                };
                let mut conn = conn;
                let _ = serde_json::to_writer(&mut conn, &answer);
                let _ = conn.write_all(b"\n");
            });
        }
    });
    Ok(())
}
