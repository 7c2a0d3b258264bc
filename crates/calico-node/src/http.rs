//! The HTTP/1 server behind the health and metrics ports: hyper on the agent's
//! one small server runtime (`crate::io_runtime`).
//!
//! These ports can be reached by anyone on the node's network (metrics
//! listen on all addresses, as Felix's do), so every connection is bounded:
//!
//! - at most [`Limits::max_connections`] at once; one over the cap is closed
//!   at once, before anything is read;
//! - the request head must arrive within [`Limits::header_timeout`] and fit
//!   in [`Limits::max_head`] bytes (hyper answers 431 past that, 400 to a
//!   malformed request, and closes);
//! - the whole exchange ends by [`Limits::deadline`], whatever the client
//!   does;
//! - one request per connection (`Connection: close`); request bodies are
//!   never read;
//! - `GET` and `HEAD` only (405 otherwise).
//!
//! `answer(path)` gives the status and the plain-text body of a path.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

/// What one server tolerates of its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Time allowed for the request line and headers.
    pub header_timeout: Duration,
    /// Time allowed for the whole exchange, from accept to the last byte.
    pub deadline: Duration,
    /// Largest request head read (hyper's `max_buf_size`; at least 8 KiB).
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
            max_head: 16 * 1024,
        }
    }
}

/// The status, content type and body of a path.
pub type Answer = (u16, &'static str, String);

/// Serves `answer` on `host:port` with `limits`; returns the bound port
/// (useful with port 0). Binding errors are returned; the server then runs
/// in the background for the life of the process.
pub fn serve(
    host: &str,
    port: u16,
    limits: Limits,
    answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
) -> std::io::Result<u16> {
    let listener = TcpListener::bind((host, port))?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let rt = crate::io_runtime::handle()?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let answer: Arc<dyn Fn(&str) -> Answer + Send + Sync> = Arc::new(answer);
    rt.spawn(accept_loop(listener, limits, answer));
    Ok(port)
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    limits: Limits,
    answer: Arc<dyn Fn(&str) -> Answer + Send + Sync>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Accept errors are logged once a minute at most, with how many were not.
    let mut last_logged: Option<tokio::time::Instant> = None;
    let mut unlogged = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                if last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    log::warn!("http: accept failed: {e} ({unlogged} more since the last report)");
                    last_logged = Some(tokio::time::Instant::now());
                    unlogged = 0;
                } else {
                    unlogged += 1;
                }
                // Out of file descriptors and the like: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Over the cap: closed at once, nothing read, nothing logged (a
        // flood must not fill the log either).
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = respond(&req, &*answer);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_head.max(8192))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            // Errors (timeouts, resets, bad requests already answered) are
            // the client's business.
            let _ = tokio::time::timeout(limits.deadline, conn).await;
        });
    }
}

/// The response to one request.
fn respond(req: &Request<Incoming>, answer: &dyn Fn(&str) -> Answer) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(405, "text/plain", "method not allowed\n".into());
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let (code, content_type, body) = answer(req.uri().path());
    text(code, content_type, body)
}

fn text(code: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
