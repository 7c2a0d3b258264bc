//! The etcd v3 backend.
//!
//! The [`Store`] interface is synchronous; this adapter owns a small tokio
//! runtime (one worker) and blocks on it. Every request has a deadline and a
//! bounded number of attempts, so an unreachable etcd is an error naming the
//! endpoints, never a hang. Watches run as tasks on the runtime and reconnect
//! by themselves after a dropped connection, resuming from the revision after
//! the last one delivered, so no event is lost or repeated. A transaction
//! retried after an attempt that got no answer recognises that attempt's
//! commit (its `else` branch reads the keys it writes), so a lost answer
//! never turns into a false conflict.

use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare as ECompare, CompareOp, ConnectOptions, EventType, GetOptions,
    Identity, TlsOptions, Txn, TxnOp, WatchOptions,
};
use tokio::runtime::Runtime;

use crate::store::{Compare, Event, EventKind, KeyValue, Op, Revision, Store, StoreError, Watch};

/// Per-request deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts per request before reporting the datastore unreachable.
const ATTEMPTS: u32 = 3;
/// Keys per page of a list. etcd (3.4) counts every key left in the range
/// for each page it serves, so a page costs the rest of the list: fewer,
/// larger pages list 100,000 keys in half the time of pages of 500.
const LIST_PAGE: i64 = 2000;
/// Keys per page once a page was too large to take in (large values).
const LIST_PAGE_SMALL: i64 = 100;
/// The largest page answer taken in (etcd-client's default is 4 MiB).
const LIST_PAGE_BYTES: usize = 64 << 20;

/// TLS and authentication settings for etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// Client key (PEM).
    pub key_file: Option<String>,
    /// Client certificate (PEM).
    pub cert_file: Option<String>,
    /// CA certificate (PEM).
    pub ca_cert_file: Option<String>,
}

/// The etcd-backed store.
pub struct EtcdStore {
    rt: Runtime,
    client: Client,
    endpoints: Vec<String>,
}

fn read_pem(path: &str, what: &str) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path)
        .map_err(|e| StoreError::Backend(format!("cannot read etcd {what} {path}: {e}")))
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (comma-separated URLs are split by the caller).
    pub fn connect(
        endpoints: &[String],
        tls: &EtcdTls,
        user: Option<(String, String)>,
    ) -> Result<EtcdStore, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Backend(
                "no etcd endpoints configured: set ETCD_ENDPOINTS".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd-client")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the etcd client runtime: {e}"))
            })?;
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if tls.ca_cert_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some() {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca_cert_file {
                t = t.ca_certificate(Certificate::from_pem(read_pem(ca, "CA certificate")?));
            }
            match (&tls.cert_file, &tls.key_file) {
                (Some(c), Some(k)) => {
                    t = t.identity(Identity::from_pem(
                        read_pem(c, "certificate")?,
                        read_pem(k, "key")?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(StoreError::Backend(
                        "etcd TLS needs both a certificate and a key file (etcd_cert_file and etcd_key_file)".into(),
                    ));
                }
            }
            opts = opts.with_tls(t);
        }
        if let Some((u, p)) = user {
            opts = opts.with_user(u, p);
        }
        let endpoint = endpoints.join(",");
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let fut = Client::connect(endpoints, Some(opts.clone()));
            match rt.block_on(async {
                tokio::time::timeout(CONNECT_TIMEOUT + REQUEST_TIMEOUT, fut).await
            }) {
                Ok(Ok(client)) => {
                    return Ok(EtcdStore {
                        rt,
                        client,
                        endpoints: endpoints.to_vec(),
                    });
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out connecting".into(),
            }
            if attempt + 1 < ATTEMPTS {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
        Err(StoreError::Unavailable {
            endpoint,
            reason: last,
        })
    }

    /// Runs one request with a deadline and bounded retries on transport errors.
    fn call<T, F, Fut>(&self, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_again(|c, _| f(c))
    }

    /// [`EtcdStore::call`], telling each attempt whether an earlier one
    /// failed without an answer (it may have been carried out all the same).
    fn call_again<T, F, Fut>(&self, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(Client, bool) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let fut = f(self.client.clone(), attempt > 0);
            match self
                .rt
                .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, fut).await })
            {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if retryable(&e) => last = e.to_string(),
                Ok(Err(e)) => {
                    return Err(StoreError::Backend(format!(
                        "etcd at {}: {e}",
                        self.endpoints.join(",")
                    )));
                }
                Err(_) => last = format!("request timed out after {}s", REQUEST_TIMEOUT.as_secs()),
            }
            if attempt + 1 < ATTEMPTS {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
        Err(StoreError::Unavailable {
            endpoint: self.endpoints.join(","),
            reason: last,
        })
    }
}

/// Whether the failed comparison of a retried transaction is the trace of
/// its own earlier attempt, which committed though its answer was lost:
/// every key it puts holds the value it puts, all written at one revision,
/// and every key it deletes is gone. `puts` pairs each put key's value
/// with what the transaction's `else` branch read at that key (value and
/// revision). Returns the revision the earlier attempt committed at (`now`
/// when it only deleted). Someone else writing the very same values at one
/// revision would pass too: for Calico's records (an allocation names its
/// handle) that is the same change.
/// A put's value, and what was read at its key (value and revision).
type PutSeen<'a> = (&'a [u8], Option<(&'a [u8], Revision)>);

fn committed_before(puts: &[PutSeen<'_>], deletes_gone: bool, now: Revision) -> Option<Revision> {
    if !deletes_gone {
        return None;
    }
    let mut rev = None;
    for (want, got) in puts {
        let (value, at) = (*got)?;
        if value != *want || rev.is_some_and(|r| r != at) {
            return None;
        }
        rev = Some(at);
    }
    Some(rev.unwrap_or(now))
}

/// Errors worth another attempt: the connection's, and requests that
/// timed out — the client's own deadline (`with_timeout`) ends a request
/// as `Cancelled` ("Timeout expired"), the server's as `DeadlineExceeded`.
/// What still fails after the last attempt is [`StoreError::Unavailable`]
/// (for the CNI plugin: "try again later", code 11).
fn retryable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            matches!(
                s.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::Unknown
            )
        }
        _ => false,
    }
}

fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

impl Store for EtcdStore {
    fn describe(&self) -> String {
        format!("etcd at {}", self.endpoints.join(","))
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self.call(|mut c| {
            let key = key.to_string();
            async move { c.get(key, None).await }
        })?;
        Ok(resp.kvs().first().map(to_kv))
    }

    /// Lists in pages of [`LIST_PAGE`] keys, every page at the revision of
    /// the first (one snapshot), so no answer outgrows gRPC's message limit
    /// (10,000 workload endpoints are about 5 MB; the limit is 4 MiB).
    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let mut kvs: Vec<KeyValue> = Vec::new();
        let rev = self.list_paged(prefix, &mut |page| kvs.extend(page))?;
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((kvs, rev))
    }

    fn list_paged(
        &self,
        prefix: &str,
        each: &mut dyn FnMut(Vec<KeyValue>),
    ) -> Result<Revision, StoreError> {
        // etcd's "every key from here on" is a range end of "\0".
        let end = crate::store::prefix_end(prefix).unwrap_or_else(|| "\0".to_string());
        let opts = |rev: Revision, limit: i64| {
            let o = GetOptions::new().with_range(end.clone()).with_limit(limit);
            if rev > 0 { o.with_revision(rev) } else { o }
        };
        let fetch = |start: &str, rev: Revision, limit: i64| {
            self.call(|c| {
                let (start, o) = (start.to_string(), opts(rev, limit));
                let mut kv = c.kv_client().max_decoding_message_size(LIST_PAGE_BYTES);
                async move { kv.get(start, Some(o)).await }
            })
        };
        let limit = std::cell::Cell::new(LIST_PAGE);
        // A page too large to take in is asked for again in small pages.
        let fetch = |start: &str, rev: Revision| match fetch(start, rev, limit.get()) {
            Err(StoreError::Backend(e))
                if limit.get() > LIST_PAGE_SMALL && e.contains("too large") =>
            {
                limit.set(LIST_PAGE_SMALL);
                fetch(start, rev, LIST_PAGE_SMALL)
            }
            other => other,
        };
        let mut start = prefix.to_string();
        let mut rev = 0;
        // The next page is asked for as soon as a page arrives, so etcd
        // reads it while the caller takes in this one; a prefetch that
        // fails is asked for again the usual way (with retries).
        let mut ahead = None;
        loop {
            let resp = match ahead.take() {
                Some(h) => match self.rt.block_on(h) {
                    Ok(Ok(Ok(r))) => r,
                    _ => fetch(&start, rev)?,
                },
                None => fetch(&start, rev)?,
            };
            if rev == 0 {
                rev = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            let next = match resp.kvs().last() {
                Some(last) if resp.more() => {
                    Some(format!("{}\0", String::from_utf8_lossy(last.key())))
                }
                _ => None,
            };
            if let Some(n) = &next {
                let o = opts(rev, limit.get());
                let mut kv = self
                    .client
                    .kv_client()
                    .max_decoding_message_size(LIST_PAGE_BYTES);
                let n = n.clone();
                ahead = Some(self.rt.spawn(async move {
                    tokio::time::timeout(REQUEST_TIMEOUT, kv.get(n, Some(o))).await
                }));
            }
            let page: Vec<KeyValue> = resp.kvs().iter().map(to_kv).collect();
            each(page);
            match next {
                Some(n) => start = n,
                None => break,
            }
        }
        Ok(rev)
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<Option<Revision>, StoreError> {
        let cmps: Vec<ECompare> = compares
            .iter()
            .map(|Compare::ModRevision { key, revision }| {
                ECompare::mod_revision(key.as_str(), CompareOp::Equal, *revision)
            })
            .collect();
        let tops: Vec<TxnOp> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value } => TxnOp::put(key.as_str(), value.clone(), None),
                Op::Delete { key } => TxnOp::delete(key.as_str(), None),
            })
            .collect();
        // On a conflict the `else` branch reads every key the transaction
        // writes. A retry after an attempt that got no answer (a timeout, a
        // cut connection) finds the keys as that attempt left them if it
        // committed: that is reported as the success it was, not as a
        // conflict the caller would answer by doing the work a second time.
        let reads: Vec<TxnOp> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, .. } | Op::Delete { key } => TxnOp::get(key.as_str(), None),
            })
            .collect();
        let (resp, retried) = self.call_again(|mut c, retried| {
            let txn = Txn::new()
                .when(cmps.clone())
                .and_then(tops.clone())
                .or_else(reads.clone());
            async move { c.txn(txn).await.map(|r| (r, retried)) }
        })?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        if resp.succeeded() {
            return Ok(Some(rev));
        }
        if !retried {
            return Ok(None);
        }
        let answers = resp.op_responses();
        let found = |i: usize| match answers.get(i) {
            Some(etcd_client::TxnOpResponse::Get(g)) => {
                g.kvs().first().map(|kv| (kv.value(), kv.mod_revision()))
            }
            _ => None,
        };
        let mut puts = Vec::new();
        let mut deletes_gone = true;
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Put { value, .. } => puts.push((value.as_slice(), found(i))),
                Op::Delete { .. } => deletes_gone &= found(i).is_none(),
            }
        }
        Ok(committed_before(&puts, deletes_gone, rev))
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watch>, StoreError> {
        let (tx, rx) = mpsc::channel();
        let client = self.client.clone();
        let prefix = prefix.to_string();
        let endpoint = self.endpoints.join(",");
        self.rt
            .spawn(watch_task(client, prefix, from.max(1), endpoint, tx));
        Ok(Box::new(EtcdWatch { rx }))
    }
}

type WatchItem = Result<Event, StoreError>;

/// Streams changes into `tx`, reconnecting after errors and resuming after
/// the last revision delivered. Ends when the receiver is dropped or the
/// requested history has been compacted.
async fn watch_task(
    mut client: Client,
    prefix: String,
    mut next: Revision,
    endpoint: String,
    tx: mpsc::Sender<WatchItem>,
) {
    let mut failures = 0u32;
    loop {
        let opts = WatchOptions::new().with_prefix().with_start_revision(next);
        let stream = client.watch(prefix.as_str(), Some(opts)).await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                failures += 1;
                if failures.is_multiple_of(50) {
                    // Keep trying, but tell the consumer the store is away; it may give up.
                    let err = StoreError::Unavailable {
                        endpoint: endpoint.clone(),
                        reason: e.to_string(),
                    };
                    if tx.send(Err(err)).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(10)))).await;
                continue;
            }
        };
        // A closed or failed stream ends this loop; the outer loop reconnects.
        while let Ok(Some(resp)) = stream.message().await {
            failures = 0;
            if resp.compact_revision() > 0 {
                let _ = tx.send(Err(StoreError::Compacted {
                    requested: next,
                    compacted: resp.compact_revision(),
                }));
                return;
            }
            if resp.canceled() {
                break; // the server ended this watch: start it again from `next`
            }
            let mut last = None;
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let kind = match ev.event_type() {
                    EventType::Put => EventKind::Put,
                    EventType::Delete => EventKind::Delete,
                };
                let value = if kind == EventKind::Put {
                    kv.value().to_vec()
                } else {
                    Vec::new()
                };
                let event = Event {
                    kind,
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    value,
                    mod_revision: kv.mod_revision(),
                };
                last = Some(kv.mod_revision());
                if tx.send(Ok(event)).is_err() {
                    return;
                }
            }
            // etcd delivers all events of one revision in one response.
            if let Some(r) = last {
                next = r + 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct EtcdWatch {
    rx: mpsc::Receiver<WatchItem>,
}

impl Watch for EtcdWatch {
    fn next(&mut self, timeout: Duration) -> Result<Option<Event>, StoreError> {
        match self.rx.recv_timeout(timeout) {
            Ok(item) => item.map(Some),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(StoreError::Backend("etcd watch ended".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_transaction_recognises_its_own_commit() {
        let (a, b): (&[u8], &[u8]) = (b"a", b"b");
        // Both puts hold our values at one revision: ours, at 7.
        assert_eq!(
            committed_before(&[(a, Some((a, 7))), (b, Some((b, 7)))], true, 9),
            Some(7)
        );
        // A value differs, a key is missing, two revisions, a deleted key
        // is back: someone else's change, a real conflict.
        assert_eq!(committed_before(&[(a, Some((b, 7)))], true, 9), None);
        assert_eq!(committed_before(&[(a, None)], true, 9), None);
        assert_eq!(
            committed_before(&[(a, Some((a, 7))), (b, Some((b, 8)))], true, 9),
            None
        );
        assert_eq!(committed_before(&[(a, Some((a, 7)))], false, 9), None);
        // Only deletes, all gone: done, as of now.
        assert_eq!(committed_before(&[], true, 9), Some(9));
    }

    #[test]
    fn timeouts_and_lost_connections_are_retried_other_failures_not() {
        let status = |s: tonic::Status| etcd_client::Error::GRpcStatus(s);
        // The client's own deadline, as tonic reports it.
        assert!(retryable(&status(tonic::Status::cancelled(
            "Timeout expired"
        ))));
        assert!(retryable(&status(tonic::Status::deadline_exceeded("x"))));
        assert!(retryable(&status(tonic::Status::unavailable("x"))));
        assert!(!retryable(&status(tonic::Status::invalid_argument("x"))));
        assert!(!retryable(&status(tonic::Status::permission_denied("x"))));
        assert!(!retryable(&etcd_client::Error::InvalidArgs("x".into())));
    }
}
