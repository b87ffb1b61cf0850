//! The two databases behind one small interface, so that each store method is written
//! once: SQLite (bundled, WAL; the embedded default) and PostgreSQL (several daemons
//! on one database).
//!
//! Statements are written once, in the SQL both understand: numbered `?N`
//! placeholders (rewritten to `$N` for PostgreSQL), `INSERT … ON CONFLICT … DO
//! NOTHING/UPDATE`, 64-bit integers. Values travel as [`Value`]s; rows come back
//! materialised as [`Row`]s.
//!
//! Write transactions: SQLite has one writer (`BEGIN IMMEDIATE`, and one connection
//! behind a mutex in the process). On PostgreSQL every write transaction starts by
//! taking the transaction-level advisory lock of the audit chain
//! (`pg_advisory_xact_lock`): every write transaction appends to the chain, which has
//! one total order across replicas, so write transactions of all replicas run one at a
//! time, each seeing everything committed before it (READ COMMITTED takes a snapshot
//! per statement, after the lock). Reads run in parallel.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::store::{Result, StoreError};

/// Key of the advisory lock of the audit chain (and so of every write transaction) on
/// PostgreSQL: the ASCII of "mandate" in a `bigint`.
const WRITE_LOCK: i64 = 0x6d_61_6e_64_61_74_65;
/// Key of the advisory lock held while migrating.
const MIGRATE_LOCK: i64 = 0x6d_61_6e_64_61_74_66;

/// Attempts of a statement that PostgreSQL aborted for a serialisation failure or a
/// deadlock (SQLSTATE 40001, 40P01).
const RETRIES: usize = 5;

/// A database failure (of either backend). Its text never holds the connection URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("{0}")]
    Postgres(String),
    /// No connection to PostgreSQL could be had (it is down or unreachable).
    #[error("no database connection: {0}")]
    Unavailable(String),
    /// A query that must return a row returned none.
    #[error("no row")]
    NoRows,
    /// A column held a value of another type than the code reads.
    #[error("column {0}: unexpected type")]
    Type(usize),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(DbError::Sqlite(error))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        // A closed connection, or the server refusing or ending it (SQLSTATE class 08:
        // connection exception; 57P0x: shutting down): the database is unavailable.
        let connection_lost = error.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P0")
        });
        if error.is_closed() || connection_lost {
            return StoreError::Database(DbError::Unavailable(error.to_string()));
        }
        // The driver's text names the server's message (and, for a constraint, its
        // name), never the connection settings.
        let text = match error.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => error.to_string(),
        };
        StoreError::Database(DbError::Postgres(text))
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:port/db`). Its
/// password never appears in `Debug` or `Display` output, in errors or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Parses `url`, which must be a `postgres://` or `postgresql://` URL. A refusal
    /// names no part of it.
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Config("the database URL must start with postgres:// or postgresql://".into()));
        }
        url.parse::<postgres::Config>()
            .map_err(|_| StoreError::Config("the database URL is not a valid PostgreSQL URL".into()))?;
        Ok(DatabaseUrl(url.to_string()))
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else { return "***".into() };
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map(|(user, _)| format!("{user}:***")).unwrap_or(userinfo.into());
                let tail = redact_query_password(tail);
                format!("{scheme}://{user}@{host}{tail}")
            }
            None => format!("{scheme}://{authority}{}", redact_query_password(tail)),
        }
    }
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else { return tail.to_string() };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

type PgPool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// Where the store keeps its tables.
pub(crate) enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(PgPool),
}

impl Backend {
    pub(crate) fn sqlite(path: &std::path::Path) -> Result<Backend> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Backend::Sqlite(Mutex::new(conn)))
    }

    pub(crate) fn postgres(url: &DatabaseUrl) -> Result<Backend> {
        let config = url
            .0
            .parse::<postgres::Config>()
            .map_err(|_| StoreError::Config("the database URL is not a valid PostgreSQL URL".into()))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        // Small: the daemon's blocking pool runs the store's calls, and each write
        // transaction holds the chain's lock anyway.
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(manager)
            .map_err(|e| StoreError::Database(DbError::Unavailable(strip_url(&e.to_string(), url))))?;
        Ok(Backend::Postgres(pool))
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// A connection: SQLite's one (locked), or one from the PostgreSQL pool.
    pub(crate) fn conn(&self) -> Result<Conn<'_>> {
        let inner = match self {
            // A panic while holding the lock rolled its transaction back (the guard
            // drops), so the connection is still consistent.
            Backend::Sqlite(conn) => Inner::Sqlite(conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
            // Checking a connection out runs a query on it (r2d2's validity test).
            Backend::Postgres(pool) => Inner::Postgres(Box::new(RefCell::new(
                off_runtime(|| pool.get()).map_err(|e| StoreError::Database(DbError::Unavailable(e.to_string())))?,
            ))),
        };
        Ok(Conn { inner, in_tx: Cell::new(false) })
    }
}

/// Runs `work` on a thread where no async runtime is entered. The `postgres` client
/// drives a runtime of its own and panics ("Cannot start a runtime from within a
/// runtime") when called from a thread of another: the daemon's async code (its
/// start-up, any handler calling the store without `spawn_blocking`) would crash on
/// PostgreSQL while working on SQLite. Off a runtime, `work` runs in place.
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| scope.spawn(work).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Removes the URL (and so its password) from a driver's message, should it hold it.
fn strip_url(text: &str, url: &DatabaseUrl) -> String {
    text.replace(&url.0, &url.redacted())
}

/// A value passed to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

/// Something that can be bound to a placeholder.
pub(crate) trait ToValue {
    fn to_value(&self) -> Value;
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// A statement's parameters: an array of values, or `params![…]`.
pub(crate) trait Params {
    fn values(&self) -> Vec<Value>;
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

impl Params for &[&dyn ToValue] {
    fn values(&self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}

/// Parameters of mixed types: `params![id, i(now)]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$(&$value as &dyn $crate::db::ToValue),*] as &[&dyn $crate::db::ToValue]
    };
}
pub(crate) use params;

/// Something a column can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(v) => Some(*v),
            Value::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A column index.
pub(crate) trait RowIndex {
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result.
pub(crate) struct Row(Vec<Value>);

impl Row {
    /// Column `index`, read as `T`.
    pub(crate) fn get<I: RowIndex, T: FromValue>(&self, index: I) -> Result<T> {
        let index = index.index();
        self.0.get(index).and_then(T::from_value).ok_or(StoreError::Database(DbError::Type(index)))
    }
}

/// `query_row` without a row as `None`.
pub(crate) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::Database(DbError::NoRows)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// How a transaction starts. On SQLite `Immediate` takes the write lock at once; on
/// PostgreSQL every transaction takes the chain's lock at once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TransactionBehavior {
    Deferred,
    Immediate,
}

enum Inner<'a> {
    Sqlite(MutexGuard<'a, rusqlite::Connection>),
    Postgres(Box<RefCell<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>>>),
}

/// A connection, in a transaction or not.
pub(crate) struct Conn<'a> {
    inner: Inner<'a>,
    in_tx: Cell<bool>,
}

/// `?N` → `$N` (the statements hold no `?` elsewhere).
fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

fn retryable(error: &postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        *code == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            || *code == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    })
}

impl Conn<'_> {
    /// Whether this is a PostgreSQL connection.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_))
    }

    /// Runs `op` on the PostgreSQL client; outside a transaction, again when the server
    /// aborted it for a serialisation failure or a deadlock.
    fn pg<T>(
        &self,
        client: &RefCell<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>>,
        mut op: impl FnMut(&mut postgres::Client) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T>
    where
        T: Send,
    {
        let mut attempt = 0;
        loop {
            let mut connection = client.borrow_mut();
            let connection: &mut postgres::Client = &mut connection;
            match off_runtime(|| op(connection)) {
                Ok(value) => return Ok(value),
                Err(error) if !self.in_tx.get() && retryable(&error) && attempt + 1 < RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        let values = params.values();
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?)
            }
            Inner::Postgres(client) => {
                let sql = numbered(sql);
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let changed = self.pg(client, |c| c.execute(sql.as_str(), &refs))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs several statements without parameters.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Inner::Postgres(client) => self.pg(client, |c| c.batch_execute(sql)),
        }
    }

    fn query(&self, sql: &str, params: impl Params) -> Result<Vec<Row>> {
        let values = params.values();
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut cells = Vec::with_capacity(columns);
                    for index in 0..columns {
                        cells.push(match row.get_ref(index)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                            rusqlite::types::ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                            _ => return Err(StoreError::Database(DbError::Type(index))),
                        });
                    }
                    out.push(Row(cells));
                }
                Ok(out)
            }
            Inner::Postgres(client) => {
                let sql = numbered(sql);
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let rows = self.pg(client, |c| c.query(sql.as_str(), &refs))?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// The first row of a query, mapped; `DbError::NoRows` without one.
    pub(crate) fn query_row<T>(&self, sql: &str, params: impl Params, f: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        match self.query(sql, params)?.first() {
            Some(row) => f(row),
            None => Err(StoreError::Database(DbError::NoRows)),
        }
    }

    /// A statement to run with [`Stmt::query_map`].
    pub(crate) fn prepare<'c>(&'c self, sql: &str) -> Result<Stmt<'c, Self>> {
        Ok(Stmt { conn: self, sql: sql.to_string() })
    }

    /// Begins a transaction (see the module's notes on locking).
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_, Self>> {
        self.transaction_with_behavior(TransactionBehavior::Deferred)
    }

    /// Begins a transaction with `behavior`.
    pub(crate) fn transaction_with_behavior(&mut self, behavior: TransactionBehavior) -> Result<Tx<'_, Self>> {
        match (&self.inner, behavior) {
            (Inner::Sqlite(conn), TransactionBehavior::Deferred) => conn.execute_batch("BEGIN DEFERRED")?,
            (Inner::Sqlite(conn), TransactionBehavior::Immediate) => conn.execute_batch("BEGIN IMMEDIATE")?,
            (Inner::Postgres(client), _) => {
                let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})");
                self.pg(client, |c| {
                    let result = c.batch_execute(&begin);
                    if result.is_err() {
                        let _ = c.batch_execute("ROLLBACK");
                    }
                    result
                })?
            }
        }
        self.in_tx.set(true);
        Ok(Tx { conn: self, done: false })
    }

    /// Runs `migrations` not applied yet, numbered from 1, each in one transaction
    /// (on PostgreSQL all in one, under the migration lock, so that replicas starting
    /// together migrate once).
    pub(crate) fn migrate(&mut self, migrations: &[&str]) -> Result<()> {
        let postgres = matches!(self.inner, Inner::Postgres(_));
        if postgres {
            self.execute_batch(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({MIGRATE_LOCK});
                 CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"
            ))?;
            self.in_tx.set(true);
        } else {
            self.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        }
        let result = (|| {
            let current: i64 =
                self.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", params![], |r| r.get(0))?;
            for (index, sql) in migrations.iter().enumerate() {
                let version = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
                if version <= current {
                    continue;
                }
                if !postgres {
                    self.execute_batch("BEGIN")?;
                }
                self.execute_batch(sql)?;
                self.execute("INSERT INTO schema_version (version) VALUES (?1)", [version])?;
                if !postgres {
                    self.execute_batch("COMMIT")?;
                }
            }
            Ok(())
        })();
        let end = match (&result, postgres) {
            (Ok(()), true) => "COMMIT",
            (Err(_), _) => "ROLLBACK",
            (Ok(()), false) => return Ok(()),
        };
        self.in_tx.set(false);
        let ended = self.execute_batch(end);
        result.and(ended)
    }
}

fn sqlite_value(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(v) => rusqlite::types::Value::Integer(*v),
        Value::Bool(v) => rusqlite::types::Value::Integer(i64::from(*v)),
        Value::Text(v) => rusqlite::types::Value::Text(v.clone()),
    }
}

fn pg_row(row: &postgres::Row) -> Result<Row> {
    let mut cells = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(index)?.map(Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(index)?.map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(index)?.map(|v| Value::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(index)?.map(Value::Bool)
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            row.try_get::<_, Option<String>>(index)?.map(Value::Text)
        } else {
            return Err(StoreError::Database(DbError::Type(index)));
        };
        cells.push(cell.unwrap_or(Value::Null));
    }
    Ok(Row(cells))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            Value::Bool(v) if *ty == Type::BOOL => v.to_sql(ty, out),
            Value::Text(v) => v.as_str().to_sql(ty, out),
            other => Err(format!("cannot bind {other:?} as {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A statement of [`Conn::prepare`].
pub(crate) struct Stmt<'c, C> {
    conn: &'c C,
    sql: String,
}

impl Stmt<'_, Conn<'_>> {
    /// Runs the statement and maps each row.
    pub(crate) fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.query(&self.sql, params)?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }
}

/// A transaction: committed by [`Tx::commit`], rolled back when dropped without.
pub(crate) struct Tx<'c, C: Ends> {
    conn: &'c C,
    done: bool,
}

/// How a connection ends a transaction.
pub(crate) trait Ends {
    fn end(&self, commit: bool) -> Result<()>;
}

impl Ends for Conn<'_> {
    fn end(&self, commit: bool) -> Result<()> {
        self.in_tx.set(false);
        self.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
    }
}

impl<C: Ends> Tx<'_, C> {
    /// Commits.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.end(true)
    }
}

impl<C: Ends> std::ops::Deref for Tx<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
    }
}

impl<C: Ends> Drop for Tx<'_, C> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.end(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_password_is_never_shown() {
        let url = DatabaseUrl::parse("postgres://mandate:s3cr3t-pw@db.internal:5432/mandate?sslmode=disable").unwrap();
        for shown in [format!("{url}"), format!("{url:?}"), url.redacted()] {
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(shown.contains("db.internal:5432/mandate"), "{shown}");
        }
        let query =
            DatabaseUrl::parse("postgresql://mandate@localhost/mandate?password=s3cr3t-pw&application_name=m").unwrap();
        assert!(!format!("{query:?}").contains("s3cr3t-pw"), "{query:?}");
        let bad = DatabaseUrl::parse("mysql://root:s3cr3t-pw@h/db").unwrap_err();
        assert!(!bad.to_string().contains("s3cr3t-pw"), "{bad}");
        let bad = DatabaseUrl::parse("postgres://root:s3cr3t-pw@h:notaport/db").unwrap_err();
        assert!(!bad.to_string().contains("s3cr3t-pw"), "{bad}");
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(numbered("SELECT a FROM t WHERE b = ?1 AND c = ?12"), "SELECT a FROM t WHERE b = $1 AND c = $12");
    }
}
