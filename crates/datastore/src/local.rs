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

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable {
        endpoint: format!("local store {}", path.display()),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path).map_err(|e| unavailable(e.to_string()))?;
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
    conn.execute_batch("PRAGMA synchronous=NORMAL;")
        .map_err(|e| unavailable(e.to_string()))?;
    // Short-lived processes (CNI plugins) open the store once per call. By
    // default the last connection to close checkpoints the WAL and deletes
    // it (several fsyncs), and the next process recreates it. Instead the WAL
    // stays, and writers keep it short (`keep_wal_short`), because the first
    // connection of a process re-reads the whole WAL on open.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(|e| unavailable(e.to_string()))?;
    Ok(conn)
}

impl LocalStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<LocalStore, StoreError> {
        Self::open_with_history(path, HISTORY)
    }

    /// Opens the store keeping `history` revisions for watches (tests use a small one).
    pub fn open_with_history(
        path: impl AsRef<Path>,
        history: Revision,
    ) -> Result<LocalStore, StoreError> {
        let history = history.max(1);
        let path = path.as_ref().to_path_buf();
        let mut conn = open_conn(&path)?;
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
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
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
            c.query_row(
                "SELECT key, value, create_rev, mod_rev FROM kv WHERE key = ?1",
                [key],
                kv_from_row,
            )
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

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<Option<Revision>, StoreError> {
        let history = self.history;
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for cmp in compares {
                let Compare::ModRevision { key, revision } = cmp;
                let actual: Revision = tx
                    .query_row("SELECT mod_rev FROM kv WHERE key = ?1", [key], |r| r.get(0))
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
                        tx.execute(
                            "INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?1, ?2, ?3, ?3)
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev",
                            params![key, value, rev],
                        )?;
                        tx.execute("INSERT INTO log (rev, seq, key, value) VALUES (?1, ?2, ?3, ?4)", params![rev, seq, key, value])?;
                        seq += 1;
                    }
                    Op::Delete { key } => {
                        if tx.execute("DELETE FROM kv WHERE key = ?1", [key])? > 0 {
                            tx.execute("INSERT INTO log (rev, seq, key, value) VALUES (?1, ?2, ?3, NULL)", params![rev, seq, key])?;
                            seq += 1;
                        }
                    }
                }
            }
            if seq == 0 {
                return Ok(Some(current)); // nothing changed: no new revision, as etcd
            }
            tx.execute("UPDATE meta SET value = ?1 WHERE name = 'revision'", [rev])?;
            if rev % (history / 10).max(1) == 0 && rev > history {
                let floor = rev - history;
                tx.execute("DELETE FROM log WHERE rev <= ?1", [floor])?;
                tx.execute("UPDATE meta SET value = ?1 WHERE name = 'compacted'", [floor])?;
            }
            tx.commit()?;
            keep_wal_short(c, &self.path);
            Ok(Some(rev))
        })
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Box<dyn Watch>, StoreError> {
        let conn = open_conn(&self.path)?;
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
