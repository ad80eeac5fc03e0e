//! Connecting to the database, migrating it, and starting write transactions that behave the same
//! on SQLite, PostgreSQL and MySQL/MariaDB.

use std::time::Duration;

use entity::user;
use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::IntoCondition;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::error::ApiError;
use crate::settings::Settings;

/// Opens the pool and brings the schema up to date.
pub async fn connect_and_migrate(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    if let Some(file) = settings.sqlite_file()
        && let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbErr::Custom(format!(
                "cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }

    let db = Database::connect(connect_options(
        settings,
        settings.database_url.expose_secret(),
    ))
    .await?;
    migrate(&db).await?;
    Ok(db)
}

/// The pool of the read standby (`DATABASE_READ_URL`): connected lazily, so a standby that is
/// down at start-up delays nothing (reads go to the primary until it answers), and quick to give
/// up on a connection, so a standby that stops is noticed in a second, not ten.
pub async fn connect_standby(settings: &Settings, url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = connect_options(settings, url);
    options
        .min_connections(0)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy(true);
    Database::connect(options).await
}

/// The pool options every connection of ours uses.
fn connect_options(settings: &Settings, url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.database_pool_size)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // PostgreSQL aborts a statement that runs longer (SeaORM sets it on MySQL and SQLite not).
        .statement_timeout(settings.database_statement_timeout)
        .map_sqlx_postgres_opts(|opts| {
            // Plan every statement for its own parameters: with skewed data (a celebrity has a
            // hundred thousand followers, most users a few dozen) a generic plan cached for all
            // parameters picks the wrong index for the small cases.
            opts.options([("plan_cache_mode", "force_custom_plan")])
        })
        .map_sqlx_sqlite_opts(|opts| {
            opts
                // Cascades (follows, posts) depend on this, on every pooled connection.
                .foreign_keys(true)
                // Readers do not block the writer, nor the writer the readers.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                // Writers queue for the lock instead of failing at once.
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
        });
    options
}

/// Brings the schema up to date. Replicas that start together on one PostgreSQL or MySQL database
/// take turns (an advisory lock held by the migrating transaction), so they do not race to create
/// the same tables.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            // Migrations may build indexes over whole tables, and replicas may wait here for
            // one another: neither is bound by the per-statement timeout meant for requests.
            txn.execute_unprepared("SET LOCAL statement_timeout = 0")
                .await?;
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(7310315637052436733)")
                .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        DbBackend::MySql => {
            // DDL commits implicitly on MySQL, but the session lock lives until released.
            let txn = db.begin().await?;
            let locked = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::MySql,
                    "SELECT GET_LOCK('social_api_migrations', 600)",
                ))
                .await?
                .and_then(|row| row.try_get_by_index::<Option<i64>>(0).ok().flatten());
            if locked != Some(1) {
                return Err(DbErr::Custom(
                    "another process held the migration lock for 10 minutes".to_owned(),
                ));
            }
            let result = Migrator::up(&txn, None).await;
            txn.execute_unprepared("SELECT RELEASE_LOCK('social_api_migrations')")
                .await?;
            txn.commit().await?;
            result
        }
        _ => Migrator::up(db, None).await,
    }
}

/// Starts a transaction that is going to write.
///
/// On SQLite it takes the write lock at `BEGIN` (`BEGIN IMMEDIATE`): a deferred transaction that
/// reads first and writes later fails with `SQLITE_BUSY` when another connection wrote in between,
/// which the busy timeout does not cover. PostgreSQL and MySQL take row locks as they go; services
/// lock the rows they change in a fixed order ([`lock_users`]) so that concurrent writers queue
/// instead of deadlocking. Services write through [`write`], which calls this; the outbox worker,
/// whose task must be `Send` (which `write`'s closures cannot yet show), calls it itself.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// Runs `op` in a write transaction (`begin_write`) and commits what it did. When the
/// transaction loses a conflict with a concurrent one ([`ApiError::Contention`]), the whole of it runs
/// again in a new transaction, a few times with a short back-off; any other error rolls it back.
/// Row locks taken in a fixed order ([`lock_users`]) make conflicts rare; MySQL's gap locks make
/// them possible.
///
/// Every write of the API is one call: the steps it composes take the transaction, so a change
/// that touches several users (a block ends two follows) is still one transaction.
pub async fn write<T>(
    db: &DatabaseConnection,
    mut op: impl AsyncFnMut(&DatabaseTransaction) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    const ATTEMPTS: u64 = 5;
    let mut tries = 1;
    loop {
        // The events its steps emit reach the streams only if this attempt commits.
        let attempt = crate::events::attempt(async {
            let txn = begin_write(db).await?;
            let out = op(&txn).await?;
            crate::events::forget_ended_sessions();
            txn.commit().await?;
            Ok(out)
        });
        match attempt.await {
            Err(ApiError::Contention(err)) if tries < ATTEMPTS => {
                tracing::debug!(error = %err, tries, "retrying a transaction after a conflict");
                crate::metrics::count_retry();
                tokio::time::sleep(Duration::from_millis(5 * tries)).await;
                tries += 1;
            }
            Err(ApiError::Contention(err)) => {
                tracing::warn!(error = %err, tries, "a transaction kept conflicting; giving up");
                return Err(ApiError::Contention(err));
            }
            other => return other,
        }
    }
}

/// Locks the rows of the users that `which` selects, in ascending id order, the one order every
/// writer uses so that concurrent writers queue instead of deadlocking; returns the ids locked
/// (a user removed in the meantime is missing). Every write takes the locks of the users whose
/// rows, counts or relations it changes before it touches anything else.
pub async fn lock_users(
    txn: &DatabaseTransaction,
    which: impl IntoCondition,
) -> Result<Vec<i64>, ApiError> {
    Ok(lock_user_rows(txn, which)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Locks the rows of the users that `which` selects, as [`lock_users`] does, and returns the ids
/// of those that are not suspended, as read under the lock (the latest committed state on every
/// backend: a locking read on PostgreSQL and MySQL/MariaDB, the one writer on SQLite).
pub async fn lock_live_users(
    txn: &DatabaseTransaction,
    which: impl IntoCondition,
) -> Result<Vec<i64>, ApiError> {
    Ok(lock_user_rows(txn, which)
        .await?
        .into_iter()
        .filter_map(|(id, suspended_at)| suspended_at.is_none().then_some(id))
        .collect())
}

/// `(id, suspended_at)` of the users that `which` selects, locked in ascending id order.
async fn lock_user_rows(
    txn: &DatabaseTransaction,
    which: impl IntoCondition,
) -> Result<Vec<(i64, Option<i64>)>, ApiError> {
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::SuspendedAt)
        .filter(which)
        .order_by_asc(user::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?)
}
