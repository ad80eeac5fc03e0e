//! Reports of accounts and posts, kept for the operators, and what the operators do with them.

use entity::{post, report, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::db;
use crate::domain::ReportReason;
use crate::error::ApiError;
use crate::services::clock::{self, Clock};
use crate::services::idempotency::{self, Claim, Outcome};
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::users;
use crate::time::now_millis;

/// The list name that cursors of the operators' list of reports are bound to.
pub const LIST_NAME: &str = "reports";

/// Whether a report was filed now, or an open one of the same reporter and target was there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    Created,
    AlreadyOpen,
}

/// `reporter` reports `target`, and optionally its post `post_id`. At most one open report per
/// reporter and target account or post: a repeat answers the first. The reporter's and target's
/// rows are locked first, so concurrent repeats queue and the first one files it.
#[tracing::instrument(name = "reports::create", skip_all, fields(reporter = reporter.id, target = target.id, post = ?post_id))]
pub async fn create(
    db: &DatabaseConnection,
    reporter: &user::Model,
    target: &user::Model,
    post_id: Option<i64>,
    reason: ReportReason,
    claim: Option<&Claim>,
) -> Result<Outcome<(ReportOutcome, report::Model)>, ApiError> {
    if reporter.id == target.id {
        return Err(ApiError::CannotReportSelf);
    }
    db::write(db, async |txn| {
        users::lock(txn, reporter, &[target]).await?;
        if let Some(claim) = claim
            && let Some(answer) = idempotency::prior(txn, claim).await?
        {
            return Ok(Outcome::Replay(answer));
        }
        if let Some(post_id) = post_id {
            let by_target = post::Entity::find_by_id(post_id)
                .filter(post::Column::AuthorId.eq(target.id))
                .one(txn)
                .await?
                .is_some();
            if !by_target {
                return Err(ApiError::field(
                    "post_id",
                    format!("is not a post by '{}'", target.username),
                ));
            }
        }
        let open = report::Entity::find()
            .filter(report::Column::ReporterId.eq(reporter.id))
            .filter(report::Column::TargetId.eq(target.id))
            .filter(match post_id {
                Some(id) => report::Column::PostId.eq(id),
                None => report::Column::PostId.is_null(),
            })
            .filter(report::Column::ResolvedAt.is_null())
            .order_by_asc(report::Column::Id)
            .one(txn)
            .await?;
        if let Some(open) = open {
            if let Some(claim) = claim {
                idempotency::record(txn, claim, 200, None, open.id).await?;
            }
            return Ok(Outcome::Done((ReportOutcome::AlreadyOpen, open)));
        }
        let created_at = clock::next_at(txn, Clock::Reports).await?;
        let report = report::ActiveModel {
            reporter_id: Set(reporter.id),
            target_id: Set(target.id),
            post_id: Set(post_id),
            reason: Set(reason.as_str().to_owned()),
            created_at: Set(created_at),
            resolved_at: Set(None),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        if let Some(claim) = claim {
            idempotency::record(txn, claim, 201, None, report.id).await?;
        }
        Ok(Outcome::Done((ReportOutcome::Created, report)))
    })
    .await
}

/// The report `id` filed by `reporter`, if there is one (an idempotent repeat's answer when the
/// first answer's body was not kept).
pub async fn find_filed(
    db: &impl ConnectionTrait,
    reporter: i64,
    id: i64,
) -> Result<Option<report::Model>, ApiError> {
    Ok(report::Entity::find_by_id(id)
        .filter(report::Column::ReporterId.eq(reporter))
        .one(db)
        .await?)
}

/// A report with the two accounts it names (suspended or not: operators see them all).
pub struct ReportEntry {
    pub report: report::Model,
    pub reporter: user::Model,
    pub target: user::Model,
}

/// A page of every report, newest first (`idx_reports_created`).
#[tracing::instrument(name = "reports::list", skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    page: PageRequest,
) -> Result<(Vec<ReportEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |r: &report::Model| Position {
        at: r.created_at,
        id: r.id,
    };
    let (rows, neighbours) = fetch_page(page, position, async |page| {
        let mut query = report::Entity::find();
        if let Some(keyset) = page.keyset(backend, report::Column::CreatedAt, report::Column::Id) {
            query = query.filter(keyset);
        }
        Ok(query
            .order_by(report::Column::CreatedAt, page.order())
            .order_by(report::Column::Id, page.order())
            .limit(page.fetch_limit())
            .all(db)
            .await?)
    })
    .await?;
    let accounts =
        users::any_by_ids(db, rows.iter().flat_map(|r| [r.reporter_id, r.target_id])).await?;
    let entries = rows
        .into_iter()
        .filter_map(|report| {
            let reporter = accounts.get(&report.reporter_id)?.clone();
            let target = accounts.get(&report.target_id)?.clone();
            Some(ReportEntry {
                report,
                reporter,
                target,
            })
        })
        .collect();
    Ok((entries, neighbours))
}

/// Marks report `id` resolved (idempotent: the first resolution's time stays); 404 `not_found`
/// for an unknown id.
#[tracing::instrument(name = "reports::resolve", skip_all, fields(operator = operator, report = id))]
pub async fn resolve(db: &DatabaseConnection, operator: i64, id: i64) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        let found = report::Entity::find_by_id(id).one(txn).await?.is_some();
        if !found {
            return Err(ApiError::NotFound(format!("/admin/reports/{id}")));
        }
        report::Entity::update_many()
            .col_expr(report::Column::ResolvedAt, Expr::val(now_millis()))
            .filter(report::Column::Id.eq(id))
            .filter(report::Column::ResolvedAt.is_null())
            .exec(txn)
            .await?;
        Ok(())
    })
    .await?;
    users::stamp(db, operator).await
}
