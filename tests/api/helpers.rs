//! `spawn_app()` and typed helpers over the HTTP API.

use std::time::Duration;

use api::{Application, Settings};
use reqwest::{Client, Method};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

/// The token secret of test servers, so tests can forge tokens with it and with others.
pub const TEST_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// A P-256 private key for VAPID (32 bytes of 0x01, base64url): required on PostgreSQL and MySQL.
pub const TEST_VAPID_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";

pub struct TestApp {
    pub address: String,
    pub client: Client,
    /// The server's own pool, for checks that read rows directly.
    pub db: DatabaseConnection,
    /// The URL of the server's database, for tests that need connections of their own.
    pub database_url: String,
    handle: actix_web::dev::ServerHandle,
}

/// A registered user and its token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub token: String,
}

/// A response with its body read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts a problem+json error with this status and code, and returns the body.
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "error without problem+json: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "unexpected code: {}", self.text);
        assert_eq!(
            body["status"], status,
            "status member differs: {}",
            self.text
        );
        assert_eq!(body["type"], "about:blank");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{}",
            self.text
        );
        body
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// Which database the suite runs on.
pub fn backend() -> DbBackend {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => DbBackend::Postgres,
        Ok(url) if url.starts_with("mysql") || url.starts_with("mariadb") => DbBackend::MySql,
        _ => DbBackend::Sqlite,
    }
}

/// A URL for a fresh, empty database on the configured backend, named
/// `{TEST_DATABASE_PREFIX}_{uuid}` (`social_test` by default), so that suites run side by side on
/// one server can tell theirs apart.
pub async fn fresh_database_url() -> String {
    let prefix = std::env::var("TEST_DATABASE_PREFIX").unwrap_or_else(|_| "social_test".into());
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL") {
        Err(_) => {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("social-api-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            )
        }
        Ok(server_url) => {
            // An unreachable database is a failure, never a skip.
            let admin = Database::connect(&server_url)
                .await
                .unwrap_or_else(|e| panic!("TEST_DATABASE_URL={server_url} is not reachable: {e}"));
            let create = if admin.get_database_backend() == DbBackend::MySql {
                format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            } else {
                format!("CREATE DATABASE {name}")
            };
            admin.execute_unprepared(&create).await.unwrap();
            admin.close().await.unwrap();
            replace_database_name(&server_url, &name)
        }
    }
}

/// `scheme://user@host:port/old?query` -> `scheme://user@host:port/new?query`
fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A free port on 127.0.0.1, for tests that start the server binary.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 10 s) until a server on `port` is ready; panics if it never is.
pub async fn wait_until_ready(client: &Client, port: u16) {
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server on port {port} did not become ready");
}

/// The Redis of the tests of what replicas share through it (`TEST_REDIS_URL`, which `.ci/run` sets); `None` skips them
/// outside CI.
pub fn test_redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("TEST_REDIS_URL must name a Redis in CI (a skip is not a pass there)")
        }
        _ => {
            eprintln!(
                "SKIP: TEST_REDIS_URL is not set: no Redis to share quotas and stream counts in"
            );
            None
        }
    }
}

/// Two servers on one fresh database and one Redis (`TEST_REDIS_URL`), as two replicas, with a
/// Redis key space of their own; `None` where [`test_redis_url`] skips.
pub async fn spawn_replicas_with_redis(mut settings: Settings) -> Option<(TestApp, TestApp)> {
    settings.redis_url = Some(test_redis_url()?.into());
    settings.redis_key_prefix = format!("social-test:{}", uuid::Uuid::new_v4());
    let first = spawn_app_with(settings.clone()).await;
    settings.database_url = first.database_url.clone().into();
    let second = spawn_app_with(settings).await;
    Some((first, second))
}

/// Settings for a test server on a fresh database, listening on a free port.
pub async fn test_settings() -> Settings {
    let mut settings = Settings::for_database(fresh_database_url().await);
    settings.bind_addr = "127.0.0.1:0".into();
    settings.jwt_secret = Some(TEST_SECRET.into());
    settings.vapid_private_key = Some(TEST_VAPID_KEY.into());
    settings.database_pool_size = 5;
    // Tests register and write far faster than people; the limits have tests of their own.
    settings.rate_limit_auth_per_minute = 1_000_000;
    settings.rate_limit_writes_per_minute = 1_000_000;
    settings.rate_limit_refresh_per_minute = 1_000_000;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings().await).await
}

pub async fn spawn_app_with(settings: Settings) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        api::telemetry::init();
    }
    let database_url = settings.database_url.expose_secret().to_owned();
    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        db,
        database_url,
        handle,
    }
}

impl Drop for TestApp {
    /// Stops the server's workers, which closes its pool: tests do not pile up connections.
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// Stops the server gracefully (in-flight requests finish).
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the request is answered");
        TestResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    /// Sends a prepared request and reads the answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> TestResponse {
        let response = request.send().await.expect("the request is answered");
        TestResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Registers `username` with a derived email and the password `password-of-{username}`.
    pub async fn try_register(&self, username: &str) -> TestResponse {
        self.try_register_with(username, json!({})).await
    }

    /// [`TestApp::try_register`] with the fields of `extra` (a JSON object) added to the body.
    pub async fn try_register_with(&self, username: &str, extra: Value) -> TestResponse {
        let mut body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": format!("password-of-{username}"),
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.post("/auth/register", None, &body).await
    }

    /// Registers `username` and makes it an operator, as `social operator grant` does.
    pub async fn register_operator(&self, username: &str) -> TestUser {
        let user = self.register(username).await;
        api::services::operators::grant(&self.db, username)
            .await
            .unwrap();
        user
    }

    pub async fn register(&self, username: &str) -> TestUser {
        self.register_with(username, json!({})).await
    }

    /// Registers as [`TestApp::try_register_with`] does; panics unless 201.
    pub async fn register_with(&self, username: &str, extra: Value) -> TestUser {
        let body = self.try_register_with(username, extra).await.expect(201);
        TestUser {
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A new session of `username` (registered by [`TestApp::register`]); panics unless 200.
    pub async fn login(&self, username: &str) -> TestUser {
        let body = self
            .post(
                "/auth/login",
                None,
                &json!({"username": username, "password": format!("password-of-{username}")}),
            )
            .await
            .expect(200);
        TestUser {
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn follow(&self, user: &TestUser, target: &str) -> TestResponse {
        self.request(
            Method::POST,
            &format!("/users/{target}/follow"),
            Some(&user.token),
            None,
        )
        .await
    }

    pub async fn unfollow(&self, user: &TestUser, target: &str) -> TestResponse {
        self.delete(&format!("/users/{target}/follow"), Some(&user.token))
            .await
    }

    /// Writes a post as `user` and returns its id.
    pub async fn post_as(&self, user: &TestUser, body: &str) -> i64 {
        let response = self
            .post("/posts", Some(&user.token), &json!({"body": body}))
            .await;
        response.expect(201)["id"].as_i64().unwrap()
    }

    /// The bodies on one page of `user`'s timeline.
    pub async fn timeline_bodies(&self, user: &TestUser) -> Vec<String> {
        let body = self.get("/timeline", Some(&user.token)).await.expect(200);
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["body"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every post id of `token`'s whole timeline, page after page of `limit`, in the order served;
    /// `Err` says what went wrong (a status other than 200, or a page that is not a page).
    pub async fn whole_timeline(&self, token: &str, limit: u32) -> Result<Vec<i64>, String> {
        let mut ids = Vec::new();
        let mut path = format!("/timeline?limit={limit}");
        loop {
            let response = self.get(&path, Some(token)).await;
            if response.status != 200 {
                return Err(format!("{path}: {} {}", response.status, response.text));
            }
            let page = response.json();
            let items = page["items"]
                .as_array()
                .ok_or_else(|| format!("{path}: not a page: {}", response.text))?;
            ids.extend(items.iter().filter_map(|post| post["id"].as_i64()));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/timeline?limit={limit}&cursor={cursor}"),
                None => return Ok(ids),
            }
        }
    }

    /// Every item of `token`'s whole timeline as `(post id, reposted_by username)`, page after
    /// page of `limit`, in the order served; `Err` as [`TestApp::whole_timeline`].
    pub async fn whole_timeline_entries(
        &self,
        token: &str,
        limit: u32,
    ) -> Result<Vec<(i64, Option<String>)>, String> {
        let mut entries = Vec::new();
        let mut path = format!("/timeline?limit={limit}");
        loop {
            let response = self.get(&path, Some(token)).await;
            if response.status != 200 {
                return Err(format!("{path}: {} {}", response.status, response.text));
            }
            let page = response.json();
            let items = page["items"]
                .as_array()
                .ok_or_else(|| format!("{path}: not a page: {}", response.text))?;
            entries.extend(items.iter().filter_map(|post| {
                let reposter = post["reposted_by"]["username"].as_str().map(str::to_owned);
                post["id"].as_i64().map(|id| (id, reposter))
            }));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/timeline?limit={limit}&cursor={cursor}"),
                None => return Ok(entries),
            }
        }
    }

    /// The usernames on one page of `/users/{username}/{list}?{query}`.
    pub async fn list_names(&self, username: &str, list: &str, query: &str) -> Vec<String> {
        let body = self
            .get(&format!("/users/{username}/{list}?{query}"), None)
            .await
            .expect(200);
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["user"]["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The database id of `username` (lower case), for checks that go below the API.
    pub async fn user_id(&self, username: &str) -> i64 {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::user::Entity::find()
            .filter(entity::user::Column::UsernameKey.eq(username))
            .one(&self.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {username}"))
            .id
    }

    /// Asserts that every stored count equals the number of rows it counts.
    pub async fn assert_counts_match_rows(&self) {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        for user in entity::user::Entity::find().all(&self.db).await.unwrap() {
            let followers = entity::follow::Entity::find()
                .filter(entity::follow::Column::FollowedId.eq(user.id))
                .count(&self.db)
                .await
                .unwrap();
            let following = entity::follow::Entity::find()
                .filter(entity::follow::Column::FollowerId.eq(user.id))
                .count(&self.db)
                .await
                .unwrap();
            let posts = entity::post::Entity::find()
                .filter(entity::post::Column::AuthorId.eq(user.id))
                .count(&self.db)
                .await
                .unwrap();
            assert_eq!(
                user.followers_count, followers as i64,
                "followers_count of {}",
                user.username
            );
            assert_eq!(
                user.following_count, following as i64,
                "following_count of {}",
                user.username
            );
            assert_eq!(
                user.posts_count, posts as i64,
                "posts_count of {}",
                user.username
            );
        }
        let suspended: std::collections::HashSet<i64> = entity::user::Entity::find()
            .filter(entity::user::Column::SuspendedAt.is_not_null())
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        let posts = entity::post::Entity::find().all(&self.db).await.unwrap();
        let likes = entity::like::Entity::find().all(&self.db).await.unwrap();
        let reposts = entity::repost::Entity::find().all(&self.db).await.unwrap();
        for post in &posts {
            let liked = likes.iter().filter(|l| l.post_id == post.id).count() as i64;
            assert_eq!(post.likes_count, liked, "likes_count of post {}", post.id);
            let reposted = reposts.iter().filter(|r| r.post_id == post.id).count() as i64;
            assert_eq!(
                post.reposts_count, reposted,
                "reposts_count of post {}",
                post.id
            );
            // Replies by suspended accounts show nowhere and do not count.
            let replies = posts
                .iter()
                .filter(|r| r.in_reply_to_id == Some(post.id))
                .filter(|r| !suspended.contains(&r.author_id))
                .count() as i64;
            assert_eq!(
                post.replies_count, replies,
                "replies_count of post {}",
                post.id
            );
        }
    }

    pub async fn profile(&self, username: &str, viewer: Option<&TestUser>) -> Value {
        self.get(
            &format!("/users/{username}"),
            viewer.map(|u| u.token.as_str()),
        )
        .await
        .expect(200)
    }
}
