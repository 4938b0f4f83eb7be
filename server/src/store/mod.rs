//! The read model's storage through sqlx: SQLite (WAL), the embedded default, or
//! PostgreSQL, chosen by the database URL. The projector is its only writer; everything
//! else reads.

/// Runs `$body` with `$db` bound to whichever backend's value `$on` holds (a pool, a
/// connection, a transaction): the body is compiled once per backend, so each copy of its
/// statements is typed for its own database, and where their SQL differs the body picks it
/// by [`Dialect`].
macro_rules! on_backend {
    ($on:expr, $db:ident => $body:expr) => {
        match $on {
            $crate::store::Backend::Sqlite($db) => $body,
            $crate::store::Backend::Postgres($db) => $body,
        }
    };
}

/// Runs one statement with `$binds` in a write transaction of its own, on `$store`'s
/// backend: the rows it changed (a `StoreError` on failure, through `?`).
macro_rules! write_alone {
    ($store:expr, $sql:expr $(, $bind:expr)* $(,)?) => {{
        let mut writer = $store.begin().await?;
        let changed = on_backend!(&mut writer.tx, tx => {
            sqlx::query($sql)
                $(.bind($bind))*
                .execute(&mut **tx)
                .await
                .map_err($crate::store::StoreError::from)?
                .rows_affected()
        });
        writer.commit().await?;
        changed
    }};
}

pub mod alerts;
pub mod commands;
pub mod forecast;
mod forward;
pub mod identity;
pub mod lease;
pub mod live;
mod recall;
mod retention;
pub mod rollup;
pub mod rows;
pub mod scratch;
mod search;
mod writer;

pub use writer::{Writer, LOG_BYTES_PER_STEP};

use app::model::{
    derive_branches, Cursor, DefinitionInfo, Execution, ListQuery, Metadata, SlaStatus, Sort,
    StepsPage, Tab, WorkflowDetail, WorkflowList, WorkflowStats, WorkflowStatus,
    COMPLETED_TAB_SIZE,
};
use rows::{Millis, StepRow, WorkflowRow};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder, Sqlite, SqlitePool};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

/// How many of a step's newest log lines the detail view carries.
pub const LOG_TAIL: i64 = 100;

/// A status set as an SQL list (`('RUNNING', 'PAUSED')`), written from the sets'
/// one home ([`WorkflowStatus`]) so the SQL and the model cannot disagree.
fn sql_list(statuses: impl IntoIterator<Item = WorkflowStatus>) -> String {
    let quoted: Vec<String> = statuses
        .into_iter()
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    format!("({})", quoted.join(", "))
}

/// Runs in progress or held mid-run.
static ACTIVE_SQL: LazyLock<String> = LazyLock::new(|| sql_list(WorkflowStatus::ACTIVE));
/// Runs that have not ended: pending or active.
static OPEN_SQL: LazyLock<String> = LazyLock::new(|| {
    sql_list(std::iter::once(WorkflowStatus::Pending).chain(WorkflowStatus::ACTIVE))
});
/// The runs the stats count now: open ones and failures (which the failed tab holds).
static COUNTED_SQL: LazyLock<String> = LazyLock::new(|| {
    sql_list(
        std::iter::once(WorkflowStatus::Pending)
            .chain(WorkflowStatus::ACTIVE)
            .chain(WorkflowStatus::FAILURES),
    )
});

/// A count that needs rows read (a search, a date range) stops here, a floor past it: as
/// far as a search looks, so that the list's cost does not follow how many runs a wide
/// date range holds (counting up to 10,000 doubled a "last 24 h" page at 1,000,000 runs).
const COUNTED_AT_MOST: i64 = search::SEARCHED_AT_MOST;
/// A UTC day, as the end-time counters are kept by.
const MS_PER_DAY: Millis = 86_400_000;

/// Which database a store is on: where their SQL differs, the statement is chosen by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `sqlite` or `postgres`, as this dialect says it.
    pub fn pick<T>(self, sqlite: T, postgres: T) -> T {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }
}

/// One value per backend (a pool, a transaction): see [`on_backend!`].
#[derive(Clone, Debug)]
pub(crate) enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

impl<S, P> Backend<S, P> {
    fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// The connections of a store.
type Pool = Backend<SqlitePool, PgPool>;
/// A write transaction on either backend.
pub(crate) type WriteTransaction =
    Backend<sqlx::Transaction<'static, Sqlite>, sqlx::Transaction<'static, Postgres>>;

impl WriteTransaction {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        on_backend!(self, tx => tx.commit().await)
    }
}

/// What the statement builders shared by both backends need beyond SQL text: binding
/// values, and the dialect where the text differs.
pub(crate) trait Statement {
    fn dialect(&self) -> Dialect;
    fn bind_text(&mut self, value: String) -> &mut Self;
    fn bind_int(&mut self, value: i64) -> &mut Self;
}

macro_rules! statement_on {
    ($db:ty, $dialect:expr) => {
        impl Statement for QueryBuilder<'_, $db> {
            fn dialect(&self) -> Dialect {
                $dialect
            }
            fn bind_text(&mut self, value: String) -> &mut Self {
                self.push_bind(value)
            }
            fn bind_int(&mut self, value: i64) -> &mut Self {
                self.push_bind(value)
            }
        }
    };
}
statement_on!(Sqlite, Dialect::Sqlite);
statement_on!(Postgres, Dialect::Postgres);

/// The PostgreSQL advisory lock every write transaction holds ("STEPLINE" in ASCII).
const WRITE_LOCK: i64 = 0x5354_4550_4c49_4e45;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database URL {0:?} is not supported: use sqlite://PATH, sqlite::memory: or postgres://..."
    )]
    UnsupportedUrl(String),
    #[error("could not create the database folder {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether trying again later may work: the database is busy or locked by another
    /// process, not reachable yet, or still starting. A bad URL, a missing permission or a
    /// failed migration is not.
    pub fn is_transient(&self) -> bool {
        let sql = match self {
            Self::Sql(error) => error,
            Self::Migrate(sqlx::migrate::MigrateError::Execute(error)) => error,
            _ => return false,
        };
        match sql {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(error) => matches!(
                error.code().as_deref(),
                // SQLite: busy, locked (another process writes); PostgreSQL: the server
                // is starting, shutting down, or out of connections.
                Some("5" | "6" | "517" | "262" | "57P03" | "57P01" | "53300")
            ),
            _ => false,
        }
    }
}

/// `url` as it may be shown (in logs, in errors): a password it holds
/// (`postgres://user:password@host/db`) is replaced by `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Connections that read at once: one per core (at least two, so that one slow read does
/// not hold up the pages). Reads beyond them wait their turn: more threads reading than
/// cores would only take the processor from the writer, whose every statement is a
/// hand-off to its connection's thread and back.
fn read_connections() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX))
        .clamp(2, 16)
}

/// How many runs of one engine are in one status and SLA status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    pub engine: String,
    pub status: WorkflowStatus,
    pub sla: SlaStatus,
    pub runs: u64,
}

/// The handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Where every read runs.
    pool: Pool,
    /// Where every write runs. On SQLite, one connection kept open for the life of the
    /// store: the single writer never queues behind readers for a connection, and writes
    /// queue behind each other here rather than on SQLite's lock. On PostgreSQL, the same
    /// pool as the reads (its server orders concurrent writers itself).
    writes: Pool,
    /// What the search planner learnt of the text index lately.
    densities: std::sync::Arc<search::Densities>,
    /// The stats line as last read, and the counters' version it was read at.
    stats: std::sync::Arc<StatsKept>,
    /// Each workflow type's history as the forecasts last read it.
    histories: std::sync::Arc<forecast::HistoriesKept>,
    /// The alerts file: which alerts are raised, and where they are sent (each fired
    /// alert's deliveries are written with it).
    alerting: std::sync::Arc<std::sync::RwLock<crate::alerts::settings::SharedSettings>>,
}

/// The stats line (every engine's) kept between the writes that change it: every list
/// request and page shows it, and between two batches of the projector hundreds of them
/// would read the same few counter rows again. A write that changes runs or their
/// counters ends with [`StatsKept::counters_changed`].
#[derive(Debug, Default)]
struct StatsKept {
    /// Counts the writes committed; a stats line read before the latest is not reused.
    version: std::sync::atomic::AtomicU64,
    /// The line, the version and the UTC day it was read at.
    kept: std::sync::Mutex<Option<(u64, i64, WorkflowStats)>>,
}

impl StatsKept {
    fn counters_changed(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

impl Store {
    /// Opens and migrates the database at `url`: `postgres://...` (or `postgresql://`) on
    /// a PostgreSQL server, else a SQLite file (created if need be) or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url).await;
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        let in_memory = path == ":memory:" || path.is_empty();
        if !in_memory {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
            }
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL under WAL: a committed transaction survives a crash of the process;
            // only a power cut can lose the last few.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // An in-memory database lives in one connection only, and dies with it: the pool
        // must never close it for its age or for being idle (sqlx's defaults, 30 and 10
        // minutes), or every table is gone. The writer's connection is kept the same way.
        let kept_open = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .min_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
        };
        // Incremental auto-vacuum (retention then gives freed pages back) can only be
        // chosen when the file is created, so a new database gets it and an older one
        // keeps reusing its free pages. It is chosen by one connection that creates the
        // file, not in the options of every connection: on a database that has it, the
        // pragma rewrites the header, a write beside the projector's each time the pool
        // opens a connection.
        if !in_memory && !options.get_filename().exists() {
            use sqlx::{ConnectOptions, Connection};
            options
                .clone()
                .auto_vacuum(SqliteAutoVacuum::Incremental)
                .connect()
                .await?
                .close()
                .await?;
        }
        let writes = kept_open(1).connect_with(options.clone()).await?;
        sqlx::migrate!("../migrations/sqlite").run(&writes).await?;
        let pool = if in_memory {
            writes.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(read_connections())
                .connect_with(options)
                .await?
        };
        Ok(Self::with_pools(
            Backend::Sqlite(pool),
            Backend::Sqlite(writes),
        ))
    }

    /// Opens and migrates the PostgreSQL database at `url` (migrations hold PostgreSQL's
    /// advisory lock, so instances starting together migrate once).
    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            // Connections are server processes: a few per core of ours, as reads and the
            // writes share them.
            .max_connections(read_connections() * 2)
            .connect(url)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let pool = Backend::Postgres(pool);
        Ok(Self::with_pools(pool.clone(), pool))
    }

    fn with_pools(pool: Pool, writes: Pool) -> Self {
        Self {
            pool,
            writes,
            densities: std::sync::Arc::default(),
            stats: std::sync::Arc::default(),
            histories: std::sync::Arc::default(),
            alerting: std::sync::Arc::default(),
        }
    }

    /// Which database this store is on.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// A write transaction that holds the write lock from its start (waiting for it up to
    /// the busy timeout). A deferred one would start as a reader and fail to become a
    /// writer ("database is locked", at once) if another write, such as a retention
    /// batch, committed since its first read. One that changes runs or their counters
    /// says so once committed (`self.stats.counters_changed()`, as [`Writer`] does).
    ///
    /// On PostgreSQL, where several instances may write, each write transaction first
    /// takes one advisory lock, held to its end: writes follow each other as on SQLite, so
    /// a run read and written back by one instance is not changed by another meanwhile,
    /// new runs' rowids and live events' seqs are numbered in commit order, and no reader
    /// of the shared live log sees a later seq committed before an earlier one.
    pub(crate) async fn write_transaction(&self) -> Result<WriteTransaction, StoreError> {
        Ok(match &self.writes {
            Backend::Sqlite(pool) => Backend::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Backend::Postgres(tx)
            }
        })
    }

    /// The SQLite database's read connections, for benchmarks and tests that load or
    /// inspect it in bulk (`None` on PostgreSQL); the server reaches it only through the
    /// methods here.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Backend::Sqlite(pool) => Some(pool),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs one SQL statement that reads nothing back, on either backend; returns the rows
    /// it changed. For tests and tools that set a database up; the server's own statements
    /// are the methods here.
    pub async fn execute(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(on_backend!(&self.writes, pool => sqlx::query(sql).execute(pool).await?.rows_affected()))
    }

    /// Runs one SQL statement that reads one number, on either backend (see
    /// [`Store::execute`]).
    pub async fn read_number(&self, sql: &str) -> Result<i64, StoreError> {
        Ok(on_backend!(&self.pool, pool => sqlx::query_scalar(sql).fetch_one(pool).await?))
    }

    /// Closes every connection: each later read or write fails.
    pub async fn close(&self) {
        on_backend!(&self.pool, pool => pool.close().await);
        on_backend!(&self.writes, pool => pool.close().await);
    }

    /// A page of the list, its total and the stats line.
    pub async fn list_workflows(
        &self,
        query: &ListQuery,
        now: Millis,
    ) -> Result<WorkflowList, StoreError> {
        self.list_workflows_seen(query, now, None).await
    }

    /// The list as someone who may read only the engines `sight` names sees it
    /// (`None`: every engine): its rows, totals and stats count only those engines' runs.
    pub async fn list_workflows_seen(
        &self,
        query: &ListQuery,
        now: Millis,
        sight: Option<&[String]>,
    ) -> Result<WorkflowList, StoreError> {
        let limit = query.effective_limit();
        let cursor = query.cursor.as_deref().and_then(Cursor::decode);

        let plan = match &query.text {
            Some(text) => Some(self.plan(text).await?),
            None => None,
        };
        let search_only = plan.is_some() && sight.is_none() && is_search_only(query);
        let (mut rows, searched) = on_backend!(&self.pool, pool => {
            // A search is one statement: the page, and how many runs the search found and
            // how many of them pass the filters, all from one reading of the index.
            let mut page = QueryBuilder::new("");
            // The table the page is sorted from: the runs themselves, or for a search and
            // nothing else what it found (which holds their sort keys).
            let keyed = if search_only { "matches" } else { "workflows" };
            if let Some(plan) = &plan {
                page.push("WITH ");
                plan.push_matches(&mut page, search::SEARCHED_AT_MOST);
                // The page's runs are chosen by their sort keys and only those read whole:
                // sorting every found run's whole row cost twice as much.
                page.push(" SELECT workflows.*, ");
                push_search_counts(&mut page, query, sight, search_only);
                page.push(" FROM workflows WHERE rowid IN (");
                if search_only {
                    page.push("SELECT run FROM matches WHERE 1=1");
                } else {
                    page.push("SELECT workflows.rowid");
                    push_runs_matching(&mut page, query, true, sight);
                }
            } else {
                page.push("SELECT workflows.*");
                push_runs_matching(&mut page, query, false, sight);
            }
            let (before, order) = match query.sort {
                Sort::Newest => ("<", "DESC"),
                Sort::Oldest => (">", "ASC"),
            };
            if let Some(cursor) = &cursor {
                page.push(format!(" AND ({keyed}.created_ms {before} "))
                    .bind_int(cursor.created_ms)
                    .push(format!(" OR ({keyed}.created_ms = "))
                    .bind_int(cursor.created_ms)
                    .push(format!(" AND {keyed}.id {before} "))
                    .bind_text(cursor.id.clone())
                    .push("))");
            }
            page.push(format!(
                " ORDER BY {keyed}.created_ms {order}, {keyed}.id {order} LIMIT "
            ))
            .bind_int(i64::from(limit) + 1);
            if plan.is_some() {
                page.push(format!(
                    ") ORDER BY workflows.created_ms {order}, workflows.id {order}"
                ));
            }
            let read = page.build().fetch_all(pool).await?;
            let rows = read
                .iter()
                .map(WorkflowRow::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let searched = match (&plan, read.first()) {
                (None, _) => None,
                (Some(_), Some(first)) => Some(SearchCounts::from_row(first)?),
                // No run on this page (past the last one, or none found): the counts alone.
                (Some(plan), None) => {
                    let mut counts = QueryBuilder::new("WITH ");
                    plan.push_matches(&mut counts, search::SEARCHED_AT_MOST);
                    counts.push(" SELECT ");
                    push_search_counts(&mut counts, query, sight, search_only);
                    Some(counts.build_query_as().fetch_one(pool).await?)
                }
            };
            (rows, searched)
        });
        // The Completed tab is the newest runs only: one page, no further.
        let single_page = query.tab == Some(Tab::Completed);
        let next_cursor = if rows.len() > limit as usize && !single_page {
            rows.truncate(limit as usize);
            rows.last().map(|last| {
                Cursor {
                    created_ms: last.created_ms,
                    id: last.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };

        let (mut total, total_capped) = match searched {
            Some(searched) => searched.total(),
            None => self.matching(query, sight).await?,
        };
        if single_page {
            total = total.min(u64::from(limit));
            rows.truncate(limit as usize);
        }

        Ok(WorkflowList {
            workflows: rows.iter().map(|row| row.to_wire(now)).collect(),
            total,
            total_capped: total_capped && !single_page,
            stats: self.stats_seen(now, sight).await?,
            next_cursor,
            seq: None,
        })
    }

    /// How many runs match `query` (no search: see [`SearchCounts`]), and whether that is
    /// only a floor. Filters on what the counters are kept by (tab, status, engine, type)
    /// are added up from them, exactly; a date range or the "will breach" filter is
    /// counted only up to [`COUNTED_AT_MOST`].
    async fn matching(
        &self,
        query: &ListQuery,
        sight: Option<&[String]>,
    ) -> Result<(u64, bool), StoreError> {
        // The counters are kept by tab, status, engine and type, not by date or forecast.
        if query.since.is_none() && query.until.is_none() && !query.will_breach {
            let total: i64 = on_backend!(&self.pool, pool => {
                let mut sum = QueryBuilder::new(
                    "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM workflow_counts WHERE 1=1",
                );
                push_filters(&mut sum, query, sight);
                sum.build_query_scalar().fetch_one(pool).await?
            });
            return Ok((u64::try_from(total).unwrap_or(0), false));
        }
        let counted: i64 = on_backend!(&self.pool, pool => {
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1");
            push_runs_matching(&mut count, query, false, sight);
            count
                .push(" LIMIT ")
                .bind_int(COUNTED_AT_MOST + 1)
                .push(") AS counted");
            count.build_query_scalar().fetch_one(pool).await?
        });
        Ok((
            u64::try_from(counted.min(COUNTED_AT_MOST)).unwrap_or(0),
            counted > COUNTED_AT_MOST,
        ))
    }

    /// Active and pending counts, runs that ended today (UTC), SLA compliance today,
    /// and the tabs' counts, all from counters the projector keeps: a few rows read
    /// however long the history.
    pub async fn stats(&self, now: Millis) -> Result<WorkflowStats, StoreError> {
        self.stats_seen(now, None).await
    }

    /// The stats as someone who may read only the engines `sight` names sees them
    /// (`None`: every engine).
    pub async fn stats_seen(
        &self,
        now: Millis,
        sight: Option<&[String]>,
    ) -> Result<WorkflowStats, StoreError> {
        if sight.is_some() {
            return self.read_stats(now, sight).await;
        }
        // The version before the read: a write committed meanwhile makes this line old.
        let version = self
            .stats
            .version
            .load(std::sync::atomic::Ordering::Acquire);
        let day = now.div_euclid(MS_PER_DAY);
        let kept = self
            .stats
            .kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((kept_version, kept_day, stats)) = kept {
            if kept_version == version && kept_day == day {
                return Ok(stats);
            }
        }
        let stats = self.read_stats(now, None).await?;
        *self.stats.kept.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((version, day, stats.clone()));
        Ok(stats)
    }

    /// How many runs each engine holds in each status and SLA status, from the counters
    /// the projector keeps (a few rows however long the history): for the metrics.
    pub async fn run_counts(&self) -> Result<Vec<RunCount>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT engine, status, sla_status, CAST(SUM(runs) AS BIGINT) FROM workflow_counts
                 GROUP BY engine, status, sla_status HAVING SUM(runs) > 0",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(engine, status, sla, runs)| {
                Some(RunCount {
                    engine,
                    status: WorkflowStatus::parse(&status)?,
                    sla: SlaStatus::parse(&sla)?,
                    runs: u64::try_from(runs).ok()?,
                })
            })
            .collect())
    }

    /// The stats line as the counters have it now (see [`Self::stats_seen`]).
    async fn read_stats(
        &self,
        now: Millis,
        sight: Option<&[String]>,
    ) -> Result<WorkflowStats, StoreError> {
        let mut stats = WorkflowStats::default();
        // One statement: the current counts by status (the Completed tab's too), then the
        // runs that ended today (UTC) from the per-day counters, a few rows however many
        // runs ended today; both for the engines the reader may see.
        let counts: Vec<(bool, String, String, bool, i64)> = on_backend!(&self.pool, pool => {
            let mut counts = QueryBuilder::new(format!(
                "SELECT FALSE, status, sla_status, FALSE, CAST(SUM(runs) AS BIGINT)
                 FROM workflow_counts WHERE (status IN {} OR status = 'COMPLETED')",
                *COUNTED_SQL
            ));
            push_sight(&mut counts, sight);
            counts
                .push(
                    " GROUP BY status, sla_status UNION ALL
                     SELECT TRUE, status, sla_status, with_sla, CAST(SUM(runs) AS BIGINT)
                     FROM ended_counts WHERE runs > 0 AND day = ",
                )
                .bind_int(now.div_euclid(MS_PER_DAY));
            push_sight(&mut counts, sight);
            counts.push(" GROUP BY status, sla_status, with_sla");
            counts.build_query_as().fetch_all(pool).await?
        });
        let (mut completed, mut with_sla, mut within) = (0u64, 0u64, 0u64);
        for (ended_today, status, sla, had_sla, n) in counts {
            let (Some(status), Some(sla), Ok(n)) = (
                WorkflowStatus::parse(&status),
                SlaStatus::parse(&sla),
                u64::try_from(n),
            ) else {
                continue;
            };
            if ended_today {
                if status == WorkflowStatus::Completed {
                    stats.completed_today += n;
                } else if status.is_failure() {
                    stats.failed_today += n;
                }
                if had_sla {
                    with_sla += n;
                    if sla != SlaStatus::Breached {
                        within += n;
                    }
                }
                continue;
            }
            if status == WorkflowStatus::Completed {
                completed += n;
            } else if status == WorkflowStatus::Pending {
                stats.pending += n;
            } else if status.is_active() {
                stats.active += n;
            }
            for tab in Tab::ALL {
                if tab.holds(status, sla) {
                    match tab {
                        Tab::Active => stats.tabs.active += n,
                        Tab::Pending => stats.tabs.pending += n,
                        Tab::Failed => stats.tabs.failed += n,
                        Tab::Slow => stats.tabs.slow += n,
                        Tab::Completed => {}
                    }
                }
            }
        }
        stats.tabs.completed = completed.min(u64::from(COMPLETED_TAB_SIZE));
        if with_sla > 0 {
            stats.sla_compliance_today = Some(((within * 100 + with_sla / 2) / with_sla) as u32);
        }
        Ok(stats)
    }

    /// Everything about one run, with each step's newest `LOG_TAIL` log lines, or `None`
    /// for an unknown id.
    pub async fn workflow_detail(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<WorkflowDetail>, StoreError> {
        self.workflow_with_logs(id, now, LOG_TAIL, None).await
    }

    /// A run with one page of its steps (`limit` of them from step number `from`): what a
    /// read costs stays bounded however many steps the run has.
    pub async fn workflow_detail_page(
        &self,
        id: &str,
        now: Millis,
        from: u32,
        limit: u32,
    ) -> Result<Option<WorkflowDetail>, StoreError> {
        self.workflow_with_logs(id, now, LOG_TAIL, Some((from, limit)))
            .await
    }

    /// The full execution trace of a run: the detail with every log line kept.
    pub async fn workflow_trace(
        &self,
        id: &str,
        now: Millis,
    ) -> Result<Option<WorkflowDetail>, StoreError> {
        self.workflow_with_logs(id, now, i64::MAX, None).await
    }

    async fn workflow_with_logs(
        &self,
        id: &str,
        now: Millis,
        log_lines_per_step: i64,
        page: Option<(u32, u32)>,
    ) -> Result<Option<WorkflowDetail>, StoreError> {
        // One connection for the whole read, so that it is of one moment on SQLite.
        let (row, steps, steps_page, log_rows, dropped) = on_backend!(&self.pool, pool => {
            let mut conn = pool.acquire().await?;
            let Some(row) = sqlx::query_as(WORKFLOW_BY_ID)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Ok(None);
            };
            let (steps, steps_page) = match page {
                None => (
                    sqlx::query_as(STEPS_OF_RUN).bind(id).fetch_all(&mut *conn).await?,
                    None,
                ),
                Some((from, limit)) => {
                    let mut steps: Vec<StepRow> = sqlx::query_as(
                        "SELECT * FROM steps WHERE workflow_id = $1 AND step_number >= $2
                         ORDER BY step_number LIMIT $3",
                    )
                    .bind(id)
                    .bind(i64::from(from))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(&mut *conn)
                    .await?;
                    let next_from = (steps.len() > limit as usize)
                        .then(|| steps.pop().map(|next| next.step_number))
                        .flatten();
                    let (total,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM steps WHERE workflow_id = $1")
                            .bind(id)
                            .fetch_one(&mut *conn)
                            .await?;
                    let page = StepsPage {
                        from,
                        limit,
                        total: u32::try_from(total).unwrap_or(u32::MAX),
                        next_from,
                    };
                    (steps, Some(page))
                }
            };
            let (first, last) = match (steps.first(), steps.last()) {
                (Some(first), Some(last)) => (first.step_number, last.step_number),
                _ => (0, 0),
            };
            let log_rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT step_number, line FROM (
                     SELECT step_number, line, id,
                            ROW_NUMBER() OVER (PARTITION BY step_number ORDER BY id DESC) AS newest
                     FROM step_logs WHERE workflow_id = $1 AND step_number BETWEEN $2 AND $3
                 ) AS numbered WHERE newest <= $4 ORDER BY step_number, id",
            )
            .bind(id)
            .bind(i64::from(first))
            .bind(i64::from(last))
            .bind(log_lines_per_step)
            .fetch_all(&mut *conn)
            .await?;
            let dropped: HashMap<i64, i64> = sqlx::query_as(
                "SELECT step_number, logs_dropped FROM steps
                 WHERE workflow_id = $1 AND step_number BETWEEN $2 AND $3 AND logs_dropped > 0",
            )
            .bind(id)
            .bind(i64::from(first))
            .bind(i64::from(last))
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
            (row, steps, steps_page, log_rows, dropped)
        });
        let row: WorkflowRow = row;
        let steps: Vec<StepRow> = steps;
        let mut logs: HashMap<u32, Vec<String>> = HashMap::new();
        for (step, line) in log_rows {
            if let Ok(step) = u32::try_from(step) {
                logs.entry(step).or_default().push(line);
            }
        }
        let steps: Vec<_> = steps
            .iter()
            .map(|step| {
                let mut wire =
                    step.to_wire(logs.remove(&step.step_number).unwrap_or_default(), now);
                wire.logs_dropped = dropped
                    .get(&i64::from(step.step_number))
                    .map_or(0, |n| u64::try_from(*n).unwrap_or(0));
                wire
            })
            .collect();
        let summary = row.to_wire(now);
        Ok(Some(WorkflowDetail {
            id: row.id.clone(),
            workflow_type: row.workflow_type.clone(),
            engine: row.engine.clone(),
            status: row.status,
            status_reason: row.status_reason.clone(),
            progress: summary.progress,
            sla_status: summary.sla_status,
            capabilities: row.capabilities,
            can_pause: summary.can_pause,
            can_cancel: summary.can_cancel,
            definition: DefinitionInfo {
                name: row.definition_name.clone(),
                version: row.definition_version.clone(),
                steps: row.total_steps,
                sla_target_seconds: row.sla_target_seconds,
            },
            execution: Execution {
                started_at: summary.started_at,
                updated_at: summary.updated_at,
                completed_at: summary.completed_at,
                duration_seconds: summary.duration_seconds,
                current_step: summary.progress.current_step,
                parallel_branches: derive_branches(&steps),
                steps,
                steps_page,
            },
            metadata: Metadata {
                engine_ref: row.engine_ref,
                triggered_by: row.triggered_by,
                trigger_type: row.trigger_type,
                priority: row.priority,
                tags: row.tags,
            },
            forecast: summary.forecast,
        }))
    }

    /// One workflow's row, if it exists.
    pub async fn workflow_row(&self, id: &str) -> Result<Option<WorkflowRow>, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as(WORKFLOW_BY_ID).bind(id).fetch_optional(pool).await?
        }))
    }

    /// A workflow's steps in step order.
    async fn steps_of(&self, id: &str) -> Result<Vec<StepRow>, StoreError> {
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as(STEPS_OF_RUN).bind(id).fetch_all(pool).await?
        }))
    }

    /// Every run of `engine` that has not ended, with its steps: what the engine picks
    /// up again after a restart.
    async fn open_run_rows(
        &self,
        engine: &str,
    ) -> Result<Vec<(WorkflowRow, Vec<StepRow>)>, StoreError> {
        let open = &*OPEN_SQL;
        let runs = format!(
            "SELECT * FROM workflows WHERE status IN {open} AND engine = $1 ORDER BY created_ms, id"
        );
        let steps = format!(
            "SELECT s.workflow_id AS owner, s.* FROM steps s JOIN workflows w ON w.id = s.workflow_id
             WHERE w.status IN {open} AND w.engine = $1 ORDER BY s.workflow_id, s.step_number"
        );
        let (rows, steps): (Vec<WorkflowRow>, Vec<OwnedStep>) = on_backend!(&self.pool, pool => (
            sqlx::query_as(&runs).bind(engine).fetch_all(pool).await?,
            sqlx::query_as(&steps).bind(engine).fetch_all(pool).await?,
        ));
        Ok(with_their_steps(rows, steps))
    }

    /// The list rows of the given ids that exist, in no particular order.
    pub async fn workflows_by_id(
        &self,
        ids: &[String],
        now: Millis,
    ) -> Result<Vec<app::model::Workflow>, StoreError> {
        let mut rows = Vec::with_capacity(ids.len());
        // Chunked: SQLite binds at most 32766 values per statement.
        for chunk in ids.chunks(500) {
            let found: Vec<WorkflowRow> = on_backend!(&self.pool, pool => {
                let mut select = QueryBuilder::new("SELECT * FROM workflows WHERE id IN (");
                let mut separated = select.separated(", ");
                for id in chunk {
                    separated.push_bind(id.clone());
                }
                separated.push_unseparated(")");
                select.build_query_as().fetch_all(pool).await?
            });
            rows.extend(found.iter().map(|row| row.to_wire(now)));
        }
        Ok(rows)
    }

    /// For each workflow type of `engine`, the steps of its longest completed run.
    async fn longest_completed_run_steps(
        &self,
        engine: &str,
    ) -> Result<HashMap<String, u32>, StoreError> {
        let rows: Vec<(String, i64)> = on_backend!(&self.pool, pool => {
            sqlx::query_as(
                "SELECT workflow_type, MAX(total_steps) FROM workflows
                 WHERE engine = $1 AND status = 'COMPLETED' GROUP BY workflow_type",
            )
            .bind(engine)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(t, n)| (t, n.clamp(0, i64::from(u32::MAX)) as u32))
            .collect())
    }

    /// Where `engine` got to in its source, by key (see [`Writer::save_position`]).
    async fn engine_positions(&self, engine: &str) -> Result<HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = on_backend!(&self.pool, pool => {
            sqlx::query_as("SELECT key, position FROM engine_positions WHERE engine = $1")
                .bind(engine)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// The runs whose SLA status may have moved with time since it was last derived:
    /// active, with a target, not yet breached, and past 90 % of their target at `now`.
    pub async fn sla_candidates(&self, now: Millis) -> Result<Vec<WorkflowRow>, StoreError> {
        let due = sla_due_sql();
        Ok(on_backend!(&self.pool, pool => {
            sqlx::query_as(&due).bind(now).fetch_all(pool).await?
        }))
    }
}

impl Writer {
    /// [`Store::sla_candidates`] as this transaction sees them: with the write lock held,
    /// what another instance's sweep moved meanwhile is not moved again.
    pub async fn sla_candidates(&mut self, now: Millis) -> Result<Vec<WorkflowRow>, StoreError> {
        let due = sla_due_sql();
        Ok(on_backend!(&mut self.tx, tx => {
            sqlx::query_as(&due).bind(now).fetch_all(&mut **tx).await?
        }))
    }
}

/// The runs whose SLA status may have moved by `$1` (see [`Store::sla_candidates`]).
fn sla_due_sql() -> String {
    format!(
        "SELECT * FROM workflows
         WHERE status IN {}
           AND sla_target_seconds > 0
           AND sla_status IN ('on_track', 'at_risk')
           AND started_ms + sla_target_seconds * 900 <= $1",
        *ACTIVE_SQL
    )
}

/// A step row with the id of the run it belongs to.
#[derive(sqlx::FromRow)]
struct OwnedStep {
    pub owner: String,
    #[sqlx(flatten)]
    pub step: StepRow,
}

/// Each run with its steps (in the order given), from steps read with their run's id.
fn with_their_steps(
    rows: Vec<WorkflowRow>,
    steps: Vec<OwnedStep>,
) -> Vec<(WorkflowRow, Vec<StepRow>)> {
    let mut by_run: HashMap<String, Vec<StepRow>> = HashMap::new();
    for OwnedStep { owner, step } in steps {
        by_run.entry(owner).or_default().push(step);
    }
    rows.into_iter()
        .map(|row| {
            let steps = by_run.remove(&row.id).unwrap_or_default();
            (row, steps)
        })
        .collect()
}

/// Pushes the `FROM` and `WHERE` of the runs that match `query` and, for a search
/// (`searched`), are among its `matches` (see [`search::Plan::push_matches`]): those are
/// looked up one by one by rowid (on SQLite the join order forced with CROSS JOIN, since
/// its planner would rather walk a status or engine index over every run of that status or
/// engine, and test each against the few found).
fn push_runs_matching<'a, DB: sqlx::Database>(
    builder: &mut QueryBuilder<'a, DB>,
    query: &ListQuery,
    searched: bool,
    sight: Option<&[String]>,
) where
    QueryBuilder<'a, DB>: Statement,
{
    let join = builder.dialect().pick("CROSS JOIN", "JOIN");
    if searched {
        builder.push(format!(
            " FROM matches {join} workflows ON workflows.rowid = matches.run WHERE 1=1"
        ));
    } else {
        builder.push(" FROM workflows WHERE 1=1");
    }
    push_filters(builder, query, sight);
}

/// Whether `query` is a search and nothing else (whatever other filters come to exist):
/// then every run the search found matches, and it counts them itself.
fn is_search_only(query: &ListQuery) -> bool {
    let search_only = ListQuery {
        text: query.text.clone(),
        sort: query.sort,
        limit: query.limit,
        cursor: query.cursor.clone(),
        ..ListQuery::default()
    };
    search_only == *query
}

/// Pushes the two counts of a search statement (after its `matches`, see
/// [`search::Plan::push_matches`]): `matched`, how many runs the search found (one past
/// what it keeps when there are more), and `counted`, how many of those pass the other
/// filters.
fn push_search_counts<'a, DB: sqlx::Database>(
    builder: &mut QueryBuilder<'a, DB>,
    query: &ListQuery,
    sight: Option<&[String]>,
    search_only: bool,
) where
    QueryBuilder<'a, DB>: Statement,
{
    builder.push("(SELECT count(*) FROM matches) AS matched, ");
    if search_only {
        builder.push("(SELECT count(*) FROM matches) AS counted");
    } else {
        builder.push("(SELECT count(*)");
        push_runs_matching(builder, query, true, sight);
        builder.push(") AS counted");
    }
}

/// The counts a search statement reads (see [`push_search_counts`]).
#[derive(sqlx::FromRow)]
struct SearchCounts {
    matched: i64,
    counted: i64,
}

impl SearchCounts {
    /// The list's total and whether it is only a floor: a search keeps only its newest
    /// matches, and past them the count is a floor.
    fn total(&self) -> (u64, bool) {
        (
            u64::try_from(self.counted.min(COUNTED_AT_MOST)).unwrap_or(0),
            self.matched > search::SEARCHED_AT_MOST,
        )
    }
}

/// Appends `query`'s filters but the search (see [`push_runs_matching`]). They name columns
/// that `workflow_counts` has too, so the same filters add up the counters; but the date
/// range, which the counters are not kept by (and which names `workflows`, as a search's
/// `matches` has a `created_ms` too).
fn push_filters<'a, DB: sqlx::Database>(
    builder: &mut QueryBuilder<'a, DB>,
    query: &ListQuery,
    sight: Option<&[String]>,
) where
    QueryBuilder<'a, DB>: Statement,
{
    push_sight(builder, sight);
    let statuses = |builder: &mut QueryBuilder<'a, DB>, statuses: &[WorkflowStatus]| {
        builder.push(" AND status IN (");
        for (at, status) in statuses.iter().enumerate() {
            if at > 0 {
                builder.push(", ");
            }
            builder.bind_text(status.as_str().to_owned());
        }
        builder.push(")");
    };
    if !query.statuses.is_empty() {
        statuses(builder, &query.statuses);
    }
    if let Some(tab) = query.tab {
        statuses(builder, tab.statuses());
        if tab == Tab::Slow {
            builder.push(" AND sla_status IN ('at_risk', 'breached')");
        }
    }
    if let Some(engine) = &query.engine {
        builder.push(" AND engine = ").bind_text(engine.clone());
    }
    if let Some(since) = query.since {
        builder
            .push(" AND workflows.created_ms >= ")
            .bind_int(since.timestamp_millis());
    }
    if let Some(until) = query.until {
        builder
            .push(" AND workflows.created_ms < ")
            .bind_int(until.timestamp_millis());
    }
    if let Some(workflow_type) = &query.workflow_type {
        builder
            .push(" AND workflow_type = ")
            .bind_text(workflow_type.clone());
    }
    if query.will_breach {
        // As written, so that the planner takes the partial index `workflows_will_breach`.
        builder.push(" AND status = 'RUNNING' AND forecast_breach = 2");
    }
}

/// Keeps only the engines `sight` names (see `app::model::identity::engine_matches`): an
/// exact id, or an id prefix before a final `*`.
fn push_sight<'a, DB: sqlx::Database>(builder: &mut QueryBuilder<'a, DB>, sight: Option<&[String]>)
where
    QueryBuilder<'a, DB>: Statement,
{
    let Some(patterns) = sight else {
        return;
    };
    builder.push(" AND (FALSE");
    for pattern in patterns {
        match pattern.strip_suffix('*') {
            Some(prefix) => builder
                .push(" OR substr(engine, 1, length(")
                .bind_text(prefix.to_owned())
                .push(")) = ")
                .bind_text(prefix.to_owned()),
            None => builder.push(" OR engine = ").bind_text(pattern.clone()),
        };
    }
    builder.push(")");
}

/// One run's row, by id.
const WORKFLOW_BY_ID: &str = "SELECT * FROM workflows WHERE id = $1";
/// A run's steps in step order.
const STEPS_OF_RUN: &str = "SELECT * FROM steps WHERE workflow_id = $1 ORDER BY step_number";

/// Of a page read newest first with one row more than its `limit` (to know whether older
/// ones follow): the page, and the id to ask for the next one `before`, if there is one.
fn next_before<T>(rows: &mut Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Option<i64> {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(id)
    } else {
        None
    }
}

pub(super) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serialising our own plain data types to a string cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_never_shown() {
        assert_eq!(
            without_password("postgres://stepline:s3cr:et@db.internal:5432/stepline"),
            "postgres://stepline:***@db.internal:5432/stepline"
        );
        for shown_as_is in [
            "postgres://postgres@127.0.0.1:5432/stepline",
            "sqlite://data/stepline.db",
            "sqlite::memory:",
            "sqlite:///srv/a@b/stepline.db",
        ] {
            assert_eq!(without_password(shown_as_is), shown_as_is);
        }
    }

    #[test]
    fn the_sql_status_sets_are_the_models() {
        let open: Vec<WorkflowStatus> = WorkflowStatus::ALL
            .into_iter()
            .filter(|status| !status.is_terminal())
            .collect();
        assert_eq!(*OPEN_SQL, sql_list(open));
        assert_eq!(
            *ACTIVE_SQL,
            "('RUNNING', 'PAUSING', 'PAUSED', 'CANCELLING')"
        );
        for status in WorkflowStatus::ALL {
            let counted = COUNTED_SQL.contains(&format!("'{}'", status.as_str()));
            assert_eq!(
                counted,
                status == WorkflowStatus::Pending || status.is_active() || status.is_failure(),
                "{status:?}"
            );
        }
    }
}
