//! Media: avatars and images in posts (API.md v3, "Media").
//!
//! - `media`: one row per uploaded image, its id random (128 bits, base64url), so an image that
//!   no post shows cannot be found by guessing. It goes with its owner and with the post that
//!   shows it (`ON DELETE CASCADE` on both), so deleting a post or an account removes its media.
//!   `purpose` is `post` (from `POST /media`, attachable to one post) or `avatar` (from
//!   `PUT /users/me/avatar`, never attachable). `post_id` is set once, by the conditional update
//!   that attaches it (`WHERE post_id IS NULL`), so two posts cannot take one image.
//! - `media_blobs`: the encoded bytes, `original` and `thumbnail`, in their own table, so that no
//!   list query (a page of posts and their media) ever reads an image. `longblob` on MySQL, whose
//!   `blob` holds 64 KiB.
//! - `users.avatar_media_id`: the avatar, so a user card names it without a join. No foreign key:
//!   `users -> media -> users` would be a cycle of cascades that MySQL refuses when an account is
//!   removed (a `SET NULL` on the very row being deleted). The service keeps it true instead: the
//!   avatar row is removed only by the same transaction that clears or replaces the column, and
//!   the sweep of unused media never takes avatars.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::m20261121_000003_create_posts::Posts;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Media {
    Table,
    Id,
    OwnerId,
    Purpose,
    PostId,
    Position,
    ContentType,
    Width,
    Height,
    ThumbWidth,
    ThumbHeight,
    Description,
    Blurhash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MediaBlobs {
    Table,
    MediaId,
    Kind,
    Bytes,
}

#[derive(DeriveIden)]
enum Avatar {
    AvatarMediaId,
}

/// Length of a media id: 16 random bytes in base64url without padding.
const ID_LEN: u32 = 22;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Media::Table)
            .col(string_len(Media::Id, ID_LEN).primary_key())
            .col(big_integer(Media::OwnerId))
            // `post` or `avatar`.
            .col(string_len(Media::Purpose, 8))
            .col(big_integer_null(Media::PostId))
            // Its place among its post's media (the order `media_ids` gave).
            .col(integer(Media::Position).default(0))
            // The type it is served as: `image/jpeg` or `image/png` (the thumbnail's too).
            .col(string_len(Media::ContentType, 32))
            .col(integer(Media::Width))
            .col(integer(Media::Height))
            .col(integer(Media::ThumbWidth))
            .col(integer(Media::ThumbHeight))
            .col(text_null(Media::Description))
            .col(string_len(Media::Blurhash, 64))
            .col(big_integer(Media::CreatedAt))
            // An account's removal removes its media.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_media_owner")
                    .from(Media::Table, Media::OwnerId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            // Deleting a post removes its media.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_media_post")
                    .from(Media::Table, Media::PostId)
                    .to(Posts::Table, Posts::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // A page of posts' media in order; the unattached ones (`post_id IS NULL`) for the sweep.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_post_position")
                    .table(Media::Table)
                    .col(Media::PostId)
                    .col(Media::Position)
                    .to_owned(),
            )
            .await?;
        // The cascade of an account's removal.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_owner")
                    .table(Media::Table)
                    .col(Media::OwnerId)
                    .to_owned(),
            )
            .await?;

        let bytes = match manager.get_database_backend() {
            DbBackend::MySql => ColumnDef::new(MediaBlobs::Bytes)
                .custom(Alias::new("longblob"))
                .not_null()
                .to_owned(),
            _ => ColumnDef::new(MediaBlobs::Bytes)
                .blob()
                .not_null()
                .to_owned(),
        };
        let mut table = Table::create();
        table
            .table(MediaBlobs::Table)
            .col(string_len(MediaBlobs::MediaId, ID_LEN))
            // `original` or `thumbnail`.
            .col(string_len(MediaBlobs::Kind, 16))
            .col(bytes)
            .primary_key(
                Index::create()
                    .col(MediaBlobs::MediaId)
                    .col(MediaBlobs::Kind),
            )
            // The bytes go with their media.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_media_blobs_media")
                    .from(MediaBlobs::Table, MediaBlobs::MediaId)
                    .to(Media::Table, Media::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len_null(Avatar::AvatarMediaId, ID_LEN))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Avatar::AvatarMediaId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(MediaBlobs::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Media::Table).to_owned())
            .await
    }
}
