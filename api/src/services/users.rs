//! Accounts: registration, lookup, profile changes and removal.

use std::collections::HashMap;

use entity::{display_name_prefix, follow, follow_request, notification, session, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, IntoCondition, Order, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Set, SqlErr,
};

use crate::db;
use crate::domain::{
    Email, SearchPrefix, Username, email_lookup_key, prefix_upper_bound, search_key,
    search_prefixes, username_lookup_key,
};
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::services::{email, follows, likes, notifications, posts, reposts, sessions};
use crate::time::now_millis;

/// What registration stores; the password is already hashed.
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
}

/// Profile fields to change: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChanges {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    /// Lock or unlock the account; unlocking accepts every pending follow request.
    pub locked: Option<bool>,
}

/// The account `id`, suspended or not (the caller decides what a suspension means to it).
pub async fn find_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<user::Model>, ApiError> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// The users among `ids` that are not suspended, by id, in one query: what a page shows of the
/// accounts it names (a suspended account appears in no list).
pub async fn visible_by_ids(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, user::Model>, ApiError> {
    by_ids(
        db,
        ids,
        Condition::all().add(user::Column::SuspendedAt.is_null()),
    )
    .await
}

/// The accounts among `ids`, suspended or not, by id, in one query: for the operators' pages.
pub async fn any_by_ids(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, user::Model>, ApiError> {
    by_ids(db, ids, Condition::all()).await
}

async fn by_ids(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
    also: Condition,
) -> Result<HashMap<i64, user::Model>, ApiError> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .filter(also)
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect())
}

/// The user called `username` (in any letter case), or 404 `user_not_found` naming it. A
/// suspended account does not exist to anyone but the operators ([`find_any_by_username`]).
pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<user::Model, ApiError> {
    find_any_by_username(db, username)
        .await?
        .filter(|user| user.suspended_at.is_none())
        .ok_or_else(|| ApiError::UserNotFound(username.to_owned()))
}

/// The account called `username`, suspended or not: for the operators' endpoints.
#[tracing::instrument(name = "users::find_any_by_username", skip_all, fields(username = %username))]
pub async fn find_any_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user::Model>, ApiError> {
    let Some(key) = username_lookup_key(username) else {
        return Ok(None);
    };
    Ok(user::Entity::find()
        .filter(user::Column::UsernameKey.eq(key))
        .one(db)
        .await?)
}

/// The user a `/users/{username}/...` path names: `me` (in any letter case) is the caller, which
/// needs a token (401 without one); any other name is looked up ([`find_by_username`]).
#[tracing::instrument(name = "users::find_in_path", skip_all, fields(username = %username, caller = caller.map(|c| c.id)))]
pub async fn find_in_path(
    db: &impl ConnectionTrait,
    username: &str,
    caller: Option<&user::Model>,
) -> Result<user::Model, ApiError> {
    if username.eq_ignore_ascii_case("me") {
        return caller.cloned().ok_or(ApiError::Unauthorized(
            "'me' in a path names the caller: send 'Authorization: Bearer <token>'",
        ));
    }
    find_by_username(db, username).await
}

/// The users called `usernames`, in the order asked (repeats included), in one query; 404
/// `user_not_found` naming the first that does not exist.
#[tracing::instrument(name = "users::find_by_usernames", skip_all, fields(usernames = usernames.len()))]
pub async fn find_by_usernames(
    db: &impl ConnectionTrait,
    usernames: &[&str],
) -> Result<Vec<user::Model>, ApiError> {
    let keys: Vec<String> = usernames
        .iter()
        .filter_map(|name| username_lookup_key(name))
        .collect();
    let found: std::collections::HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::UsernameKey.is_in(keys))
        .filter(user::Column::SuspendedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.username_key.clone(), u))
        .collect();
    usernames
        .iter()
        .map(|name| {
            username_lookup_key(name)
                .and_then(|key| found.get(&key).cloned())
                .ok_or_else(|| ApiError::UserNotFound((*name).to_owned()))
        })
        .collect()
}

/// The list name that cursors of a search for `prefix` are bound to: a cursor of one search is
/// refused by another (`q=ab` and `q=AB` are one search).
pub fn search_list_name(prefix: &SearchPrefix) -> String {
    format!("search:{}", prefix.key())
}

/// A page of the users whose username or display name starts with `prefix` (by their keys, so
/// in any letter case), suspended accounts left out: the user whose username is the prefix first
/// (on the first page, `after` = `None`), then the others by `username_key`. `after` is the
/// `username_key` of the last user of the previous page (`""`: the page held only the exact
/// match). Returns at most `limit` users and, when more follow, the `after` of the next page.
#[tracing::instrument(name = "users::search", skip_all)]
pub async fn search(
    db: &impl ConnectionTrait,
    prefix: &SearchPrefix,
    after: Option<&str>,
    limit: u64,
) -> Result<(Vec<user::Model>, Option<String>), ApiError> {
    let backend = db.get_database_backend();
    let query = search_query(prefix, after, limit + 1);
    let mut users = user::Model::find_by_statement(backend.build(&query))
        .all(db)
        .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if users.len() <= limit {
        return Ok((users, None));
    }
    users.truncate(limit);
    let next = users.last().map(|last| {
        if last.username_key == prefix.key() {
            String::new()
        } else {
            last.username_key.clone()
        }
    });
    Ok((users, next))
}

/// The query of a [`search`] page of `fetch` rows: a `UNION` (which also drops a user found both
/// ways) of up to three index ranges, each read in `username_key` order and stopped by its
/// `LIMIT`, then ordered and cut again by the database:
///
/// - on the first page, the exact match: `username_key = :key` (the unique index);
/// - `username_key > :from AND username_key < :upper`: one range of the unique index on
///   `username_key`;
/// - `display_name_prefixes.prefix = :key AND username_key > :after`: one range of that table's
///   primary key `(prefix, username_key)`, which holds every prefix of every display name's key
///   (migration 16), joined to `users` by id for the row (and to leave suspended accounts out).
///   A key longer than the stored prefixes (lower-casing lengthened `q`) is looked up by its first
///   [`SEARCH_PREFIX_CHARS`](crate::domain::SEARCH_PREFIX_CHARS) characters and the rows found
///   are checked against the whole key.
///
/// `:upper` is [`prefix_upper_bound`]: the key columns have binary collations, so these are
/// exact prefix ranges, and `%`, `_` and `\` are ordinary characters (no `LIKE`).
pub fn search_query(prefix: &SearchPrefix, after: Option<&str>, fetch: u64) -> SelectStatement {
    let key = prefix.key();
    let upper = prefix_upper_bound(key);
    let visible = Expr::col((user::Entity, user::Column::SuspendedAt)).is_null();
    let wrap = |alias: &str, rows: &SelectStatement| {
        Query::select()
            .column(Asterisk)
            .from_subquery(rows.to_owned(), Alias::new(alias))
            .to_owned()
    };
    // `tier, users.*` of the visible accounts: the shape of every branch.
    let rows = |tier: u8| {
        let mut rows = Query::select();
        rows.expr_as(Expr::cust(tier.to_string()), Alias::new("search_tier"))
            .column((user::Entity, Asterisk))
            .and_where(visible.clone());
        rows
    };
    // The exact match is the smallest key of the username range, so "after it" is `> :key`.
    let from = match after {
        Some(after) if after > key => after,
        _ => key,
    };
    let username = (user::Entity, user::Column::UsernameKey);
    let mut by_username = rows(1);
    by_username
        .from(user::Entity)
        .and_where(Expr::col(username).gt(from))
        .order_by(username, Order::Asc)
        .limit(fetch);
    if let Some(upper) = &upper {
        by_username.and_where(Expr::col(username).lt(upper.as_str()));
    }

    let (stored, truncated) = prefix.stored_prefix();
    let prefixes = display_name_prefix::Entity;
    let prefix_username = (prefixes, display_name_prefix::Column::UsernameKey);
    let mut by_display_name = rows(1);
    by_display_name
        .from(prefixes)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((prefixes, display_name_prefix::Column::UserId)),
        )
        .and_where(Expr::col((prefixes, display_name_prefix::Column::Prefix)).eq(stored))
        // The exact match is the first page's first row, from the username half.
        .and_where(Expr::col(prefix_username).ne(key))
        .order_by(prefix_username, Order::Asc)
        .limit(fetch);
    if let Some(after) = after {
        by_display_name.and_where(Expr::col(prefix_username).gt(after));
    }
    if truncated {
        let display_name = (user::Entity, user::Column::DisplayNameKey);
        by_display_name.and_where(Expr::col(display_name).gte(key));
        if let Some(upper) = &upper {
            by_display_name.and_where(Expr::col(display_name).lt(upper.as_str()));
        }
    }

    let mut query = match after {
        None => {
            let mut exact = rows(0);
            exact
                .from(user::Entity)
                .and_where(Expr::col(username).eq(key));
            let mut query = wrap("exact", &exact);
            query.union(UnionType::Distinct, wrap("by_username", &by_username));
            query
        }
        Some(_) => wrap("by_username", &by_username),
    };
    query
        .union(
            UnionType::Distinct,
            wrap("by_display_name", &by_display_name),
        )
        .order_by(Alias::new("search_tier"), Order::Asc)
        .order_by(Alias::new("username_key"), Order::Asc)
        .limit(fetch)
        .to_owned()
}

/// The user whose username or email is `login`, if any.
#[tracing::instrument(name = "users::find_for_login", skip_all)]
pub async fn find_for_login(
    db: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<user::Model>, ApiError> {
    let condition = if login.contains('@') {
        email_lookup_key(login).map(|key| user::Column::EmailKey.eq(key))
    } else {
        username_lookup_key(login).map(|key| user::Column::UsernameKey.eq(key))
    };
    match condition {
        Some(condition) => Ok(user::Entity::find().filter(condition).one(db).await?),
        None => Ok(None),
    }
}

/// Creates the account, with the rows user search finds its display name by
/// ([`add_display_name_prefixes`]) and its verification mail ([`email::issue_verification`]) in
/// the same transaction, or 409 `username_taken` /
/// `email_taken` when either is in use in any letter case. The unique indexes decide, so
/// concurrent registrations cannot both win.
#[tracing::instrument(name = "users::register", skip_all)]
pub async fn register(
    db: &DatabaseConnection,
    account: NewAccount,
    mailing: &email::Mailing,
) -> Result<user::Model, ApiError> {
    let username_key = account.username.key();
    let now = now_millis();
    let row = user::ActiveModel {
        username: Set(account.username.as_str().to_owned()),
        username_key: Set(username_key.clone()),
        email: Set(account.email.as_str().to_owned()),
        email_key: Set(account.email.key()),
        password_hash: Set(account.password_hash),
        display_name_key: Set(account.display_name.as_deref().map(search_key)),
        display_name: Set(account.display_name),
        bio: Set(account.bio),
        created_at: Set(now),
        followers_count: Set(0),
        following_count: Set(0),
        posts_count: Set(0),
        list_clock: Set(0),
        suspended_at: Set(None),
        locked: Set(false),
        notifications_read_id: Set(0),
        unread_notifications: Set(0),
        // Its first reads see it from the primary, not a standby that has not replayed it yet.
        last_write_at: Set(now),
        is_operator: Set(false),
        ..Default::default()
    };
    let created = db::write(db, async |txn| {
        let user = match row.clone().insert(txn).await {
            Ok(user) => user,
            // Which of the two is taken is looked up once this transaction has rolled back:
            // `EmailTaken` stands for either until then.
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(ApiError::EmailTaken);
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(key) = &user.display_name_key {
            add_display_name_prefixes(txn, &user, key).await?;
        }
        email::issue_verification(txn, mailing, &user).await?;
        Ok(user)
    })
    .await;
    match created {
        Err(ApiError::EmailTaken) => {
            let username_exists = user::Entity::find()
                .filter(user::Column::UsernameKey.eq(username_key))
                .one(db)
                .await?
                .is_some();
            if username_exists {
                Err(ApiError::UsernameTaken(
                    account.username.as_str().to_owned(),
                ))
            } else {
                Err(ApiError::EmailTaken)
            }
        }
        other => other,
    }
}

/// Step: the rows of `display_name_prefixes` for `user`'s display name, whose search key is
/// `key`: one per prefix of the key ([`search_prefixes`]), which is how search finds it in
/// username order ([`search_query`]).
async fn add_display_name_prefixes(
    txn: &DatabaseTransaction,
    user: &user::Model,
    key: &str,
) -> Result<(), ApiError> {
    let rows: Vec<display_name_prefix::ActiveModel> = search_prefixes(key)
        .map(|prefix| display_name_prefix::ActiveModel {
            prefix: Set(prefix.to_owned()),
            username_key: Set(user.username_key.clone()),
            user_id: Set(user.id),
        })
        .collect();
    if !rows.is_empty() {
        display_name_prefix::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Applies `changes` to the user's profile and returns the updated row, in one transaction under
/// the user's lock. Unlocking a locked account accepts every pending follow request in the same
/// transaction ([`follows::accept_all_requests`]).
#[tracing::instrument(name = "users::update_profile", skip_all, fields(user = user.id))]
pub async fn update_profile(
    db: &DatabaseConnection,
    user: &user::Model,
    changes: ProfileChanges,
) -> Result<user::Model, ApiError> {
    let id = user.id;
    db::write(db, async |txn| {
        lock(txn, user, &[]).await?;
        if changes.locked == Some(false) && is_locked(txn, id).await? {
            follows::accept_all_requests(txn, id).await?;
        }
        let mut update = user::Entity::update_many().filter(user::Column::Id.eq(id));
        let mut changed = false;
        if let Some(display_name) = &changes.display_name {
            update = update
                .col_expr(user::Column::DisplayName, Expr::val(display_name.clone()))
                .col_expr(
                    user::Column::DisplayNameKey,
                    Expr::val(display_name.as_deref().map(search_key)),
                );
            changed = true;
        }
        if let Some(bio) = &changes.bio {
            update = update.col_expr(user::Column::Bio, Expr::val(bio.clone()));
            changed = true;
        }
        if let Some(locked) = changes.locked {
            update = update.col_expr(user::Column::Locked, Expr::val(locked));
            changed = true;
        }
        if changed {
            update.exec(txn).await?;
        }
        let updated = find_by_id(txn, id).await?.ok_or(ApiError::Unauthorized(
            "the account of this access token no longer exists",
        ))?;
        if changes.display_name.is_some() {
            display_name_prefix::Entity::delete_many()
                .filter(display_name_prefix::Column::UserId.eq(id))
                .exec(txn)
                .await?;
            if let Some(key) = &updated.display_name_key {
                add_display_name_prefixes(txn, &updated, key).await?;
            }
        }
        Ok(updated)
    })
    .await
}

/// Step: whether the account `id` is locked, read under its lock (which the caller holds).
pub async fn is_locked(txn: &DatabaseTransaction, id: i64) -> Result<bool, ApiError> {
    let locked: Option<bool> = user::Entity::find_by_id(id)
        .select_only()
        .column(user::Column::Locked)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(locked.unwrap_or(false))
}

/// Removes the account. The database cascades its posts and every follow, block, mute and report
/// in which it is either side, and its likes; first, in the same transaction, its follows and
/// likes end with their counts and its replies stop counting in their parents (`end_follows`),
/// so the other users' counts and the counts of their posts stay exact at once.
#[tracing::instrument(name = "users::delete_account", skip_all, fields(user = user_id))]
pub async fn delete_account(db: &DatabaseConnection, user_id: i64) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        end_follows(txn, user_id).await?;
        user::Entity::delete_by_id(user_id).exec(txn).await?;
        events::emit(txn, Event::Ended { user: user_id }).await?;
        Ok(())
    })
    .await
}

/// An operator suspends the account, in one transaction: its follows and its likes end with their
/// counts, its replies stop counting (`end_follows`), and from then on it is hidden everywhere and its tokens answer 401.
/// Idempotent.
#[tracing::instrument(name = "users::suspend", skip_all, fields(operator = operator, user = user_id))]
pub async fn suspend(db: &DatabaseConnection, operator: i64, user_id: i64) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        end_follows(txn, user_id).await?;
        user::Entity::update_many()
            .col_expr(user::Column::SuspendedAt, Expr::val(now_millis()))
            .filter(user::Column::Id.eq(user_id))
            .filter(user::Column::SuspendedAt.is_null())
            .exec(txn)
            .await?;
        // Its sessions end too (lifting the suspension does not bring its tokens back), kept so
        // that a refresh can still say why: 403 `account_suspended`.
        sessions::expire_all(txn, user_id).await?;
        events::emit(txn, Event::Ended { user: user_id }).await?;
        Ok(())
    })
    .await?;
    stamp(db, operator).await
}

/// Sets the password of `user_id` and ends every session of theirs but `keep`.
#[tracing::instrument(name = "users::change_password", skip_all, fields(user = user_id))]
pub async fn change_password(
    db: &DatabaseConnection,
    user_id: i64,
    password_hash: String,
    keep: &str,
) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        db::lock_users(txn, user::Column::Id.eq(user_id)).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::val(password_hash.clone()))
            .filter(user::Column::Id.eq(user_id))
            .exec(txn)
            .await?;
        sessions::end_where(
            txn,
            Condition::all()
                .add(session::Column::UserId.eq(user_id))
                .add(session::Column::Id.ne(keep.to_owned())),
        )
        .await
    })
    .await
}

/// An operator lifts the suspension: the account and its posts are back (its replies count in
/// their parents' `replies_count` again), its follows and likes are not. Idempotent.
#[tracing::instrument(name = "users::unsuspend", skip_all, fields(operator = operator, user = user_id))]
pub async fn unsuspend(
    db: &DatabaseConnection,
    operator: i64,
    user_id: i64,
) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        let locked = db::lock_users(
            txn,
            Condition::any()
                .add(user::Column::Id.eq(user_id))
                .add(user::Column::Id.in_subquery(posts::parent_authors_of(user_id))),
        )
        .await?;
        let live = db::lock_live_users(txn, user::Column::Id.eq(user_id)).await?;
        if locked.contains(&user_id) && !live.contains(&user_id) {
            // Its replies count again, as they show again.
            posts::count_replies_of(txn, user_id, 1).await?;
        }
        user::Entity::update_many()
            .col_expr(user::Column::SuspendedAt, Expr::value(Option::<i64>::None))
            .filter(user::Column::Id.eq(user_id))
            .exec(txn)
            .await?;
        Ok(())
    })
    .await?;
    stamp(db, operator).await
}

/// Step: ends every follow and follow request in which `user_id` is either side, and takes back
/// its notifications to others (their unread counts drop). Locks the user and everyone on the
/// other side of its follows (in id order), lowers their counts by one each and the user's own to
/// zero, then deletes the follows.
///
/// When the account was not suspended already (read under its lock), its likes and reposts end
/// too (the posts' counts drop) and its replies stop counting in their parents' `replies_count`
/// (they show nowhere while it is suspended, and go with it when it is removed): the authors of
/// those posts are locked with the others. Returns whether it was not suspended.
async fn end_follows(txn: &DatabaseTransaction, user_id: i64) -> Result<bool, ApiError> {
    let live = db::lock_live_users(
        txn,
        Condition::any()
            .add(user::Column::Id.eq(user_id))
            .add(user::Column::Id.in_subquery(followees_of(user_id)))
            .add(user::Column::Id.in_subquery(followers_of(user_id)))
            .add(user::Column::Id.in_subquery(notifications::recipients_of(user_id)))
            .add(user::Column::Id.in_subquery(likes::authors_liked_by(user_id)))
            .add(user::Column::Id.in_subquery(reposts::authors_reposted_by(user_id)))
            .add(user::Column::Id.in_subquery(posts::parent_authors_of(user_id))),
    )
    .await?;
    let was_live = live.contains(&user_id);
    if was_live {
        likes::end_all_by(txn, user_id).await?;
        reposts::end_all_by(txn, user_id).await?;
        posts::count_replies_of(txn, user_id, -1).await?;
    }
    notifications::forget(
        txn,
        Condition::all().add(notification::Column::AccountId.eq(user_id)),
        user::Column::Id.in_subquery(notifications::recipients_of(user_id)),
    )
    .await?;
    let followees = user::Column::Id.in_subquery(followees_of(user_id));
    add_to_count(txn, user::Column::FollowersCount, followees, -1).await?;
    let followers = user::Column::Id.in_subquery(followers_of(user_id));
    add_to_count(txn, user::Column::FollowingCount, followers, -1).await?;
    follow::Entity::delete_many()
        .filter(
            Condition::any()
                .add(follow::Column::FollowerId.eq(user_id))
                .add(follow::Column::FollowedId.eq(user_id)),
        )
        .exec(txn)
        .await?;
    follow_request::Entity::delete_many()
        .filter(
            Condition::any()
                .add(follow_request::Column::RequesterId.eq(user_id))
                .add(follow_request::Column::TargetId.eq(user_id)),
        )
        .exec(txn)
        .await?;
    user::Entity::update_many()
        .col_expr(user::Column::FollowersCount, Expr::val(0))
        .col_expr(user::Column::FollowingCount, Expr::val(0))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    Ok(was_live)
}

/// Step: locks the caller's row and the rows of `others`, in id order ([`db::lock_users`]), and
/// checks, under those locks, that none was removed or suspended since the request looked them
/// up: 401 when the caller's account is gone or suspended (its sessions ended with it), 404
/// `user_not_found` naming the first other user that is. A suspension or a removal locks the
/// same row, so every write that passes here lies wholly before or wholly after it. Stamps the
/// caller's `last_write_at`: every write of a user passes here, and a server reading from a
/// standby reads a recent writer's requests from the primary (`crate::replica`).
#[tracing::instrument(name = "users::lock", skip_all, fields(caller = caller.id, others = others.len()))]
pub async fn lock(
    txn: &DatabaseTransaction,
    caller: &user::Model,
    others: &[&user::Model],
) -> Result<(), ApiError> {
    lock_counting(txn, caller, others, None).await
}

/// Step: [`lock`], adding `delta` to the caller's `count` in the statement that stamps it (a new
/// post's author's `posts_count`: one round trip fewer on the hot write).
pub async fn lock_counting(
    txn: &DatabaseTransaction,
    caller: &user::Model,
    others: &[&user::Model],
    count: Option<(user::Column, i64)>,
) -> Result<(), ApiError> {
    let stamp = |update: sea_orm::UpdateMany<user::Entity>| {
        let update = update.col_expr(user::Column::LastWriteAt, Expr::val(now_millis()));
        match count {
            Some((count, delta)) => update.col_expr(count, Expr::col(count).add(delta)),
            None => update,
        }
    };
    let gone =
        ApiError::Unauthorized("the account of this access token no longer exists or is suspended");
    if others.is_empty() {
        // The caller alone: the stamp is the lock. An update locks the row as the locking read
        // does, and matches it only if the account is live as it is then (PostgreSQL checks a
        // row a concurrent suspension changed again once that commits; MySQL's update reads the
        // latest version; SQLite has one writer), so one statement instead of two.
        let stamped = stamp(user::Entity::update_many())
            .filter(user::Column::Id.eq(caller.id))
            .filter(user::Column::SuspendedAt.is_null())
            .exec(txn)
            .await?;
        return match stamped.rows_affected {
            0 => Err(gone),
            _ => Ok(()),
        };
    }
    let ids = std::iter::once(caller.id).chain(others.iter().map(|u| u.id));
    let live = db::lock_live_users(txn, user::Column::Id.is_in(ids)).await?;
    if !live.contains(&caller.id) {
        return Err(gone);
    }
    if let Some(gone) = others.iter().find(|u| !live.contains(&u.id)) {
        return Err(ApiError::UserNotFound(gone.username.clone()));
    }
    stamp(user::Entity::update_many())
        .filter(user::Column::Id.eq(caller.id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Step: [`lock`] of the caller alone, with the rows of the users `also` names locked too (in the
/// same id order), whether or not they are suspended: for a write that changes their counts but
/// needs nothing else of them (deleting a reply lowers its parent's author's unread count).
pub async fn lock_with(
    txn: &DatabaseTransaction,
    caller: &user::Model,
    also: impl IntoIterator<Item = i64>,
) -> Result<(), ApiError> {
    let ids = std::iter::once(caller.id).chain(also);
    let live = db::lock_live_users(txn, user::Column::Id.is_in(ids)).await?;
    if !live.contains(&caller.id) {
        return Err(ApiError::Unauthorized(
            "the account of this access token no longer exists or is suspended",
        ));
    }
    stamp(txn, caller.id).await
}

/// Step: stamps `last_write_at` of the user `id`, whose reads then come from the primary for a
/// while (`crate::replica`). In a write's transaction under the user's lock ([`lock`]), or, for
/// an operator's action on another account, alone right after it commits (its transaction locks
/// other users, and the operator's row would come out of id order).
pub async fn stamp(db: &impl ConnectionTrait, id: i64) -> Result<(), ApiError> {
    user::Entity::update_many()
        .col_expr(user::Column::LastWriteAt, Expr::val(now_millis()))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Step: adds `delta` to one count of the users that `which` selects. The caller holds their
/// locks.
pub async fn add_to_count(
    txn: &DatabaseTransaction,
    count: user::Column,
    which: impl IntoCondition,
    delta: i64,
) -> Result<(), ApiError> {
    user::Entity::update_many()
        .col_expr(count, Expr::col(count).add(delta))
        .filter(which)
        .exec(txn)
        .await?;
    Ok(())
}

/// `SELECT followed_id FROM follows WHERE follower_id = user_id`
fn followees_of(user_id: i64) -> SelectStatement {
    Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(user_id))
        .to_owned()
}

/// `SELECT follower_id FROM follows WHERE followed_id = user_id`
fn followers_of(user_id: i64) -> SelectStatement {
    Query::select()
        .column(follow::Column::FollowerId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowedId.eq(user_id))
        .to_owned()
}

/// A user row for unit tests: `user{id}`, nothing set.
#[cfg(test)]
pub(crate) fn sample(id: i64) -> user::Model {
    user::Model {
        id,
        username: format!("user{id}"),
        username_key: format!("user{id}"),
        email: format!("user{id}@example.com"),
        email_key: format!("user{id}@example.com"),
        password_hash: String::new(),
        display_name: None,
        display_name_key: None,
        bio: None,
        created_at: 0,
        followers_count: 0,
        following_count: 0,
        posts_count: 0,
        list_clock: 0,
        suspended_at: None,
        locked: false,
        notifications_read_id: 0,
        unread_notifications: 0,
        last_write_at: 0,
        is_operator: false,
        email_verified_at: None,
        archive_started_at: None,
        avatar_media_id: None,
        feed_floor_at: None,
        feed_floor_id: None,
    }
}
