//! Media: keeping an upload, attaching media to a post, avatars, and the sweep of media nobody
//! uses. The bytes go through [`MediaStore`]; the rows are `media` (which list queries read) and
//! `users.avatar_media_id`.

use std::collections::HashMap;

use entity::{media, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::db;
use crate::error::ApiError;
use crate::media::{BlobKind, MediaStore, Processed, Store, new_id};
use crate::services::users;
use crate::time::now_millis;

/// What a media is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// From `POST /media`: attachable to one post of its owner.
    Post,
    /// From `PUT /users/me/avatar`: never attachable.
    Avatar,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Post => "post",
            Purpose::Avatar => "avatar",
        }
    }
}

/// The most media one post may show.
pub const MAX_PER_POST: usize = 4;

/// How long a media may stay unused (in no post, not an avatar) before the sweep removes it.
pub const UNUSED_KEPT: std::time::Duration = std::time::Duration::from_secs(24 * 3_600);

/// Step: keeps `processed` as a new media of `owner` for `purpose`, its row and both images.
async fn insert(
    txn: &DatabaseTransaction,
    store: &Store,
    owner: i64,
    purpose: Purpose,
    processed: &Processed,
    description: Option<&str>,
) -> Result<media::Model, ApiError> {
    let row = media::Model {
        id: new_id()?,
        owner_id: owner,
        purpose: purpose.as_str().to_owned(),
        post_id: None,
        position: 0,
        content_type: processed.content_type.to_owned(),
        width: side(processed.image.width),
        height: side(processed.image.height),
        thumb_width: side(processed.thumbnail.width),
        thumb_height: side(processed.thumbnail.height),
        description: description.map(str::to_owned),
        blurhash: processed.blurhash.clone(),
        created_at: now_millis(),
    };
    let active: media::ActiveModel = row.clone().into();
    media::Entity::insert(active)
        .exec_without_returning(txn)
        .await?;
    store
        .put(
            txn,
            &row.id,
            BlobKind::Original,
            processed.image.bytes.clone(),
        )
        .await?;
    store
        .put(
            txn,
            &row.id,
            BlobKind::Thumbnail,
            processed.thumbnail.bytes.clone(),
        )
        .await?;
    Ok(row)
}

/// A side in pixels as stored (at most [`crate::media::processing::MAX_SIDE`]).
fn side(pixels: u32) -> i32 {
    i32::try_from(pixels).unwrap_or(i32::MAX)
}

/// Keeps `processed` as a new media of `owner`, to be attached to a post within
/// [`UNUSED_KEPT`].
#[tracing::instrument(name = "media::create", skip_all, fields(owner = owner.id))]
pub async fn create(
    db: &DatabaseConnection,
    store: &Store,
    owner: &user::Model,
    processed: &Processed,
    description: Option<&str>,
) -> Result<media::Model, ApiError> {
    db::write(db, async |txn| {
        users::lock(txn, owner, &[]).await?;
        insert(txn, store, owner.id, Purpose::Post, processed, description).await
    })
    .await
}

/// Makes `processed` `me`'s avatar, removing the one it replaces. Returns `me` as it is now.
#[tracing::instrument(name = "media::set_avatar", skip_all, fields(user = me.id))]
pub async fn set_avatar(
    db: &DatabaseConnection,
    store: &Store,
    me: &user::Model,
    processed: &Processed,
) -> Result<user::Model, ApiError> {
    db::write(db, async |txn| {
        // Under the caller's lock, so that two uploads at once cannot both keep theirs.
        users::lock(txn, me, &[]).await?;
        let media = insert(txn, store, me.id, Purpose::Avatar, processed, None).await?;
        replace_avatar(txn, store, me.id, Some(media.id)).await
    })
    .await
}

/// Removes `me`'s avatar, if it has one.
#[tracing::instrument(name = "media::remove_avatar", skip_all, fields(user = me.id))]
pub async fn remove_avatar(
    db: &DatabaseConnection,
    store: &Store,
    me: &user::Model,
) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        users::lock(txn, me, &[]).await?;
        replace_avatar(txn, store, me.id, None).await?;
        Ok(())
    })
    .await
}

/// Step, under the user's lock: points `users.avatar_media_id` at `new` and deletes the media it
/// pointed at before. Returns the user as it is now.
async fn replace_avatar(
    txn: &DatabaseTransaction,
    store: &Store,
    user_id: i64,
    new: Option<String>,
) -> Result<user::Model, ApiError> {
    let current = users::find_by_id(txn, user_id)
        .await?
        .ok_or(ApiError::Unauthorized(
            "the account of this access token no longer exists or is suspended",
        ))?;
    user::Entity::update_many()
        .col_expr(user::Column::AvatarMediaId, Expr::value(new.clone()))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    if let Some(old) = &current.avatar_media_id {
        store.delete(txn, std::slice::from_ref(old)).await?;
        media::Entity::delete_by_id(old.clone()).exec(txn).await?;
    }
    Ok(user::Model {
        avatar_media_id: new,
        ..current
    })
}

/// Step of writing post `post_id` by `owner`: attaches the media `ids` to it, in their order.
/// Each must be `owner`'s, from `POST /media`, and in no post yet: 422 `validation_failed` on
/// `media_ids` otherwise (and for more than [`MAX_PER_POST`], or one named twice). Each is taken
/// by a conditional update (`WHERE post_id IS NULL`), so of two posts that name one media at once,
/// one fails.
pub async fn attach(
    txn: &DatabaseTransaction,
    owner: i64,
    post_id: i64,
    ids: &[String],
) -> Result<(), ApiError> {
    let refuse = |message: &str| ApiError::field("media_ids", message);
    if ids.len() > MAX_PER_POST {
        return Err(refuse(&format!("at most {MAX_PER_POST} media per post")));
    }
    for (position, id) in ids.iter().enumerate() {
        if ids[..position].contains(id) {
            return Err(refuse("names one media twice"));
        }
        // Not the shape of an id (a NUL would be a 500 on PostgreSQL): nobody's media.
        if !crate::media::is_id(id) {
            return Err(refuse(&format!(
                "'{}' is not a media of yours that no post uses yet",
                shortened(id)
            )));
        }
        let taken = media::Entity::update_many()
            .col_expr(media::Column::PostId, Expr::value(post_id))
            .col_expr(
                media::Column::Position,
                Expr::value(i32::try_from(position).unwrap_or(i32::MAX)),
            )
            .filter(media::Column::Id.eq(id.as_str()))
            .filter(media::Column::OwnerId.eq(owner))
            .filter(media::Column::Purpose.eq(Purpose::Post.as_str()))
            .filter(media::Column::PostId.is_null())
            .exec(txn)
            .await?;
        if taken.rows_affected != 1 {
            return Err(refuse(&format!(
                "'{}' is not a media of yours that no post uses yet",
                shortened(id)
            )));
        }
    }
    Ok(())
}

/// An id as repeated in an answer: at most 40 characters.
fn shortened(id: &str) -> String {
    id.chars().take(40).collect()
}

/// The media of `posts`, each post's in order, in one query (served by
/// `idx_media_post_position`); the bytes are not read.
pub async fn of_posts(
    db: &impl ConnectionTrait,
    posts: &[i64],
) -> Result<HashMap<i64, Vec<media::Model>>, ApiError> {
    let mut by_post: HashMap<i64, Vec<media::Model>> = HashMap::new();
    if posts.is_empty() {
        return Ok(by_post);
    }
    let rows = of_posts_query(posts).all(db).await?;
    for row in rows {
        if let Some(post) = row.post_id {
            by_post.entry(post).or_default().push(row);
        }
    }
    Ok(by_post)
}

/// The query of [`of_posts`] (its plan is checked in the tests).
pub fn of_posts_query(posts: &[i64]) -> sea_orm::Select<media::Entity> {
    media::Entity::find()
        .filter(media::Column::PostId.is_in(posts.iter().copied()))
        .order_by_asc(media::Column::PostId)
        .order_by_asc(media::Column::Position)
}

/// The media `id`: 404 `media_not_found` when there is none.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<media::Model, ApiError> {
    if !crate::media::is_id(id) {
        return Err(ApiError::MediaNotFound);
    }
    media::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(ApiError::MediaNotFound)
}

/// Removes the media of `POST /media` that no post took within [`UNUSED_KEPT`]; returns how many.
/// Avatars are never taken (a replaced avatar went with its replacement's transaction).
pub async fn sweep(db: &DatabaseConnection, store: &Store) -> Result<u64, ApiError> {
    let cutoff = now_millis() - i64::try_from(UNUSED_KEPT.as_millis()).unwrap_or(i64::MAX);
    let unused = || {
        media::Entity::find()
            .filter(media::Column::PostId.is_null())
            .filter(media::Column::Purpose.eq(Purpose::Post.as_str()))
            .filter(media::Column::CreatedAt.lt(cutoff))
    };
    let mut gone = 0;
    loop {
        // In batches, so that no transaction holds many rows.
        let ids: Vec<String> = unused()
            .select_only()
            .column(media::Column::Id)
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(gone);
        }
        // Its own transaction rather than `db::write`, whose closures cannot show the `Send` that
        // a spawned task needs; a conflict is retried by the next sweep.
        let txn = db::begin_write(db).await?;
        // Again under the conditions: one taken by a post meanwhile stays.
        let deleted = media::Entity::delete_many()
            .filter(media::Column::Id.is_in(ids.iter().cloned()))
            .filter(media::Column::PostId.is_null())
            .filter(media::Column::Purpose.eq(Purpose::Post.as_str()))
            .exec(&txn)
            .await?;
        let kept: Vec<String> = media::Entity::find()
            .select_only()
            .column(media::Column::Id)
            .filter(media::Column::Id.is_in(ids.iter().cloned()))
            .into_tuple()
            .all(&txn)
            .await?;
        let removed: Vec<String> = ids
            .iter()
            .filter(|id| !kept.contains(id))
            .cloned()
            .collect();
        store.delete(&txn, &removed).await?;
        txn.commit().await?;
        gone += deleted.rows_affected;
        if ids.len() < 500 {
            return Ok(gone);
        }
    }
}
