//! The embedded local store: one SQLite file in WAL mode, shared safely by
//! every process on the host (short-lived CNI plugins, calico-node, calicoctl).
//!
//! Schema:
//! - `kv(key, value, create_rev, mod_rev)`: the current state;
//! - `log(rev, seq, key, value)`: every change (value NULL for a delete), the
//!   history watches read; trimmed to the last [`HISTORY`] revisions;
//! - `meta(name, value)`: `revision` (last committed) and `compacted`.
//!
//! Every transaction runs under `BEGIN IMMEDIATE`, so read-modify-write is
//! serialised across processes; `busy_timeout` makes writers wait their turn
//! instead of failing. Watches poll the log from their own connection.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::store::{
    Compare, Event, EventKind, KeyValue, Op, Revision, Store, StoreError, Watch, prefix_end,
};

/// Default path of the local store.
pub const DEFAULT_PATH: &str = "/var/lib/calico/datastore.db";
/// Revisions of history kept for watches.
pub const HISTORY: Revision = 10_000;
/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an idle watch looks for new changes.
const POLL: Duration = Duration::from_millis(20);

/// The SQLite-backed store.
pub struct LocalStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    history: Revision,
}

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("local store {}: {e}", path.display()))
}

/// Creates the store file readable and writable by its owner only (0600,
/// whatever the umask; SQLite gives the `-wal` and `-shm` files the main
/// file's mode), as an empty file SQLite then initialises. A file that is
/// already there keeps its mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // `mode` is filtered by the umask, which never adds bits; set it
        // again in case the file system did something odd.
        Ok(f) => f.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_conn(path: &Path, long_lived: bool) -> Result<Connection, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable {
        endpoint: format!("local store {}", path.display()),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    create_private(path)
        .map_err(|e| unavailable(format!("cannot create {}: {e}", path.display())))?;
    let conn = Connection::open(path).map_err(|e| unavailable(e.to_string()))?;
    // Every statement is prepared once per connection (`prepare_cached`).
    conn.set_prepared_statement_cache_capacity(32);
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| unavailable(e.to_string()))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| unavailable(e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unavailable(format!(
            "cannot switch to WAL mode (got {mode})"
        )));
    }
    // The WAL is kept short, because a process's first connection re-reads
    // all of its valid frames on open. Two ways, by who opens:
    // - a long-lived process (calico-node) checkpoints passively (never
    //   waiting for readers) every `WAL_FRAMES` frames; its next write then
    //   restarts the WAL from the top, rewriting the file in place, which
    //   needs no metadata journal commit on fsync (on a virtual disk that
    //   costs milliseconds);
    // - a one-shot process (a CNI plugin, calicoctl) cannot: a restart needs
    //   the checkpoint's progress, which lives in shared memory that the
    //   next process rebuilds from the WAL. It leaves the WAL to grow and
    //   truncates it past `WAL_LIMIT` (`keep_wal_short`), which any writer
    //   also does after a burst.
    let autocheckpoint = if long_lived { WAL_FRAMES } else { 0 };
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={autocheckpoint};"
    ))
    .map_err(|e| unavailable(e.to_string()))?;
    // By default the last connection to close checkpoints the WAL and
    // deletes it (several fsyncs), and the next process recreates it.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(|e| unavailable(e.to_string()))?;
    Ok(conn)
}

impl LocalStore {
    /// Opens (creating if needed) the store at `path`, for a process that
    /// does a few things and exits (a CNI plugin, calicoctl, a test).
    pub fn open(path: impl AsRef<Path>) -> Result<LocalStore, StoreError> {
        Self::open_with(path.as_ref(), HISTORY, false)
    }

    /// Opens the store for a process that keeps it open (calico-node): it
    /// checkpoints the WAL as it goes (see `open_conn`).
    pub fn open_long_lived(path: impl AsRef<Path>) -> Result<LocalStore, StoreError> {
        Self::open_with(path.as_ref(), HISTORY, true)
    }

    /// Opens the store keeping `history` revisions for watches (tests use a small one).
    pub fn open_with_history(
        path: impl AsRef<Path>,
        history: Revision,
    ) -> Result<LocalStore, StoreError> {
        Self::open_with(path.as_ref(), history, false)
    }

    fn open_with(
        path: &Path,
        history: Revision,
        long_lived: bool,
    ) -> Result<LocalStore, StoreError> {
        let history = history.max(1);
        let path = path.to_path_buf();
        let mut conn = open_conn(&path, long_lived)?;
        // The schema exists already in all but the first open: skip the write transaction.
        if meta(&conn, "revision").is_ok() {
            return Ok(LocalStore {
                path,
                conn: Mutex::new(conn),
                history,
            });
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(&path))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                 create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS log (rev INTEGER NOT NULL, seq INTEGER NOT NULL,
                 key TEXT NOT NULL, value BLOB, PRIMARY KEY (rev, seq)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);",
        )
        .map_err(err(&path))?;
        tx.commit().map_err(err(&path))?;
        Ok(LocalStore {
            path,
            conn: Mutex::new(conn),
            history,
        })
    }

    /// The file backing the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard).map_err(err(&self.path))
    }
}

/// WAL frames (pages) after which a long-lived process's commit checkpoints.
const WAL_FRAMES: u32 = 32;

/// WAL size (bytes) above which a writer checkpoints and truncates it:
/// about 64 frames of 4 KiB pages.
const WAL_LIMIT: u64 = 64 * 4120;

/// Checkpoints and truncates the WAL once it passes [`WAL_LIMIT`]. Best
/// effort: a busy checkpoint is simply left to the next writer.
fn keep_wal_short(conn: &Connection, path: &Path) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > WAL_LIMIT {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

fn meta(conn: &Connection, name: &str) -> Result<Revision, rusqlite::Error> {
    conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
}

fn kv_from_row(r: &rusqlite::Row<'_>) -> Result<KeyValue, rusqlite::Error> {
    Ok(KeyValue {
        key: r.get(0)?,
        value: r.get(1)?,
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
    })
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local store {}", self.path.display())
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.with_conn(|c| {
            c.prepare_cached("SELECT key, value, create_rev, mod_rev FROM kv WHERE key = ?1")?
                .query_row([key], kv_from_row)
                .optional()
        })
    }

    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let end = prefix_end(prefix);
        self.with_conn(|c| {
            // One read transaction: the rows and the revision come from the same snapshot.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let rev = meta(&tx, "revision")?;
            let rows = {
                let mut st = tx.prepare_cached(
                    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key",
                )?;
                st.query_map(params![prefix, end], kv_from_row)?.collect::<Result<Vec<_>, _>>()?
            };
            tx.commit()?;
            Ok((rows, rev))
        })
    }

    fn list_paged(
        &self,
        prefix: &str,
        each: &mut dyn FnMut(Vec<KeyValue>),
    ) -> Result<Revision, StoreError> {
        const PAGE: usize = 500;
        let end = prefix_end(prefix);
        self.with_conn(|c| {
            // One read transaction: every page and the revision come from the same snapshot.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let rev = meta(&tx, "revision")?;
            {
                let mut st = tx.prepare_cached(
                    "SELECT key, value, create_rev, mod_rev FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key",
                )?;
                let mut page = Vec::with_capacity(PAGE);
                for row in st.query_map(params![prefix, end], kv_from_row)? {
                    page.push(row?);
                    if page.len() == PAGE {
                        each(std::mem::replace(&mut page, Vec::with_capacity(PAGE)));
                    }
                }
                if !page.is_empty() {
                    each(page);
                }
            }
            tx.commit()?;
            Ok(rev)
        })
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<Option<Revision>, StoreError> {
        let history = self.history;
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for cmp in compares {
                let Compare::ModRevision { key, revision } = cmp;
                let actual: Revision = tx
                    .prepare_cached("SELECT mod_rev FROM kv WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0);
                if actual != *revision {
                    return Ok(None); // dropping `tx` rolls back
                }
            }
            let current = meta(&tx, "revision")?;
            let rev = current + 1;
            let mut seq = 0i64;
            for op in ops {
                match op {
                    Op::Put { key, value } => {
                        tx.prepare_cached(
                            "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
                        )?
                        .execute(params![key, value, rev])?;
                        tx.prepare_cached("INSERT INTO log (rev, seq, key, value) VALUES (?1, ?2, ?3, ?4)")?.execute(params![rev, seq, key, value])?;
                        seq += 1;
                    }
                    Op::Delete { key } => {
                        if tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?.execute([key])? > 0 {
                            tx.prepare_cached("INSERT INTO log (rev, seq, key, value) VALUES (?1, ?2, ?3, NULL)")?.execute(params![rev, seq, key])?;
                            seq += 1;
                        }
                    }
                }
            }
            if seq == 0 {
                return Ok(Some(current)); // nothing changed: no new revision, as etcd
            }
            tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?.execute([rev])?;
            if rev % (history / 10).max(1) == 0 && rev > history {
                let floor = rev - history;
                tx.prepare_cached("DELETE FROM log WHERE rev <= ?1")?.execute([floor])?;
                tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?.execute([floor])?;
            }
            tx.commit()?;
            keep_wal_short(c, &self.path);
            Ok(Some(rev))
        })
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watch>, StoreError> {
        let conn = open_conn(&self.path, false)?;
        Ok(Box::new(LocalWatch {
            path: self.path.clone(),
            conn,
            prefix: prefix.to_string(),
            end: prefix_end(prefix),
            next_rev: from.max(1),
            next_seq: 0,
            buffer: std::collections::VecDeque::new(),
        }))
    }
}

struct LocalWatch {
    path: PathBuf,
    conn: Connection,
    prefix: String,
    end: Option<String>,
    /// Position of the next change to deliver: (revision, sequence within it).
    next_rev: Revision,
    next_seq: i64,
    buffer: std::collections::VecDeque<Event>,
}

impl LocalWatch {
    fn fill(&mut self) -> Result<(), StoreError> {
        let map = err(&self.path);
        let compacted = meta(&self.conn, "compacted").map_err(&map)?;
        if self.next_rev <= compacted {
            return Err(StoreError::Compacted {
                requested: self.next_rev,
                compacted: compacted + 1,
            });
        }
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT rev, seq, key, value FROM log WHERE (rev > ?1 OR (rev = ?1 AND seq >= ?2))
                 AND key >= ?3 AND (?4 IS NULL OR key < ?4) ORDER BY rev, seq LIMIT 512",
            )
            .map_err(&map)?;
        let rows = st
            .query_map(
                params![self.next_rev, self.next_seq, self.prefix, self.end],
                |r| {
                    let value: Option<Vec<u8>> = r.get(3)?;
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        value,
                    ))
                },
            )
            .map_err(&map)?;
        for row in rows {
            let (rev, seq, key, value) = row.map_err(&map)?;
            self.next_rev = rev;
            self.next_seq = seq + 1;
            let kind = if value.is_some() {
                EventKind::Put
            } else {
                EventKind::Delete
            };
            self.buffer.push_back(Event {
                kind,
                key,
                value: value.unwrap_or_default(),
                mod_revision: rev,
            });
        }
        Ok(())
    }
}

impl Watch for LocalWatch {
    fn next(&mut self, timeout: Duration) -> Result<Option<Event>, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Ok(Some(e));
            }
            self.fill()?;
            if !self.buffer.is_empty() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }
}
