//! The one small tokio runtime the agent's servers share (health and
//! metrics over HTTP, the IPAM service's and control socket's unix
//! sockets): current-thread, on its own thread, started on first use. Its
//! tasks must not block (the servers hand blocking work to their own
//! threads).

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The runtime's handle, starting it on first use.
pub fn handle() -> std::io::Result<Handle> {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let handle = rt.handle().clone();
    // Of two callers racing here, the loser drops the runtime it built and
    // uses the winner's.
    if HANDLE.set(handle.clone()).is_err() {
        return HANDLE
            .get()
            .cloned()
            .ok_or_else(|| std::io::Error::other("no runtime"));
    }
    std::thread::Builder::new()
        .name("io-servers".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}
