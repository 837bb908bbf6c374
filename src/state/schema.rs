//! The state database's schema as numbered migrations, and the code that applies them.
//!
//! `PRAGMA user_version` holds how many migrations a database has seen. Migrations are only ever
//! appended: editing one that shipped would leave existing databases on a schema no code knows.

use rusqlite::Connection;

use super::StateError;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`; each runs in its own transaction.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: clusters, their nodes, every launch attempt, and jobs. No column holds secrets: task
    // environments never reach the database at all.
    "
    CREATE TABLE clusters (
        name          TEXT PRIMARY KEY NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('planned', 'requesting', 'provisioned', 'ready',
                          'running', 'done', 'terminating', 'torn_down', 'failed')),
        cloud         TEXT,
        region        TEXT,
        zone          TEXT,
        instance_type TEXT,
        spot          INTEGER NOT NULL DEFAULT 0,
        num_nodes     INTEGER NOT NULL DEFAULT 0,
        hourly_total  REAL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        task_name     TEXT
    );
    CREATE TABLE nodes (
        cluster     TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
        rank        INTEGER NOT NULL,
        provider_id TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'stopped', 'terminated')),
        ssh_addr    TEXT,
        private_ip  TEXT,
        host_key    TEXT,
        PRIMARY KEY (cluster, rank)
    );
    CREATE TABLE attempts (
        id            INTEGER PRIMARY KEY,
        cluster       TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
        token         TEXT NOT NULL,
        cloud         TEXT NOT NULL,
        region        TEXT NOT NULL,
        zone          TEXT,
        instance_type TEXT NOT NULL,
        spot          INTEGER NOT NULL,
        started_at    INTEGER NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('pending', 'ok', 'capacity', 'quota', 'auth',
                          'transient', 'invalid', 'other')),
        message       TEXT
    );
    CREATE INDEX attempts_by_cluster ON attempts (cluster, id);
    CREATE TABLE jobs (
        cluster      TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
        job_id       INTEGER NOT NULL,
        name         TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        exit_code    INTEGER,
        submitted_at INTEGER NOT NULL,
        ended_at     INTEGER,
        PRIMARY KEY (cluster, job_id)
    );
    ",
    // 2: clusters can be `stopped` (`broker stop`). SQLite cannot alter a CHECK constraint, so
    // the table is rebuilt (with foreign keys off, see `migrate`, so its children stay).
    "
    CREATE TABLE clusters_v2 (
        name          TEXT PRIMARY KEY NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('planned', 'requesting', 'provisioned', 'ready',
                          'running', 'done', 'stopped', 'terminating', 'torn_down', 'failed')),
        cloud         TEXT,
        region        TEXT,
        zone          TEXT,
        instance_type TEXT,
        spot          INTEGER NOT NULL DEFAULT 0,
        num_nodes     INTEGER NOT NULL DEFAULT 0,
        hourly_total  REAL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        task_name     TEXT
    );
    INSERT INTO clusters_v2 SELECT * FROM clusters;
    DROP TABLE clusters;
    ALTER TABLE clusters_v2 RENAME TO clusters;
    ",
    // 3: the run ledger (DESIGN §8). No foreign key to `clusters`: a run must outlive its
    // cluster's teardown, since the ledger is what cost reports and `--from-run` read later.
    // `hourly_price` is the price at launch and stays the cost basis; nothing joins the catalog.
    // AUTOINCREMENT so a run id, once printed, never names another run.
    "
    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        cluster        TEXT NOT NULL,
        job_id         INTEGER,
        kind           TEXT NOT NULL CHECK (kind IN ('launch', 'exec')),
        task_name      TEXT,
        task_file      TEXT,
        task_hash      TEXT,
        task_content   TEXT,
        overrides      TEXT,
        workdir_commit TEXT,
        workdir_dirty  INTEGER,
        image          TEXT,
        cloud          TEXT NOT NULL,
        region         TEXT NOT NULL,
        zone           TEXT,
        instance_type  TEXT NOT NULL,
        spot           INTEGER NOT NULL,
        num_nodes      INTEGER NOT NULL,
        hourly_price   REAL NOT NULL,
        candidates     TEXT NOT NULL DEFAULT '[]',
        labels         TEXT NOT NULL DEFAULT '{}',
        started_at     INTEGER NOT NULL,
        ended_at       INTEGER,
        exit_code      INTEGER,
        state          TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled',
                           'interrupted', 'lost'))
    );
    CREATE INDEX runs_by_cluster ON runs (cluster, started_at);
    CREATE INDEX runs_by_start ON runs (started_at);
    ",
];

/// Brings the database up to the newest schema; a no-op when it is already there.
///
/// Each migration runs in an immediate transaction that re-reads the version first, so two
/// brokers opening an old database at once apply each migration exactly once. Foreign keys are
/// off meanwhile, because rebuilding a parent table would otherwise cascade-delete its children;
/// they are checked before the transaction commits.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StateError> {
    let known = MIGRATIONS.len();
    if version(conn)? == known {
        return Ok(());
    }
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let outcome = apply(conn, known);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    outcome
}

fn version(conn: &Connection) -> Result<usize, StateError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    usize::try_from(found).map_err(|_| StateError::Corrupt(format!("negative user_version {found}")))
}

fn apply(conn: &mut Connection, known: usize) -> Result<(), StateError> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found = version(&tx)?;
        if found > known {
            // A newer broker wrote this; guessing at its schema could lose track of running nodes.
            return Err(StateError::TooNew { found, known });
        }
        if found > index {
            continue;
        }
        tx.execute_batch(sql)?;
        let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| row.get(0))?;
        if broken != 0 {
            return Err(StateError::Corrupt(format!(
                "migration {} left {broken} dangling references",
                index + 1
            )));
        }
        let version = i64::try_from(index + 1).map_err(|_| StateError::Corrupt("too many migrations".into()))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}
