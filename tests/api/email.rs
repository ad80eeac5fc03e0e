//! Email verification and password reset, against a real SMTP server on loopback that the test
//! runs itself ([`MailServer`]); tokens are read from the delivered messages.

use std::time::{Duration, Instant};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::helpers::{TestApp, free_port, spawn_app, spawn_app_with, test_settings};

/// A message as the server received it.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub to: Vec<String>,
    /// The message, headers and body, with CRLF line ends.
    pub data: String,
}

impl Delivered {
    /// The body, with quoted-printable soft line breaks and `=3D` undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        body.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The token the message carries: the body's line that is one (43 characters of base64url).
    pub fn token(&self) -> String {
        self.body()
            .lines()
            .map(str::trim)
            .find(|line| {
                line.len() == 43
                    && line
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .unwrap_or_else(|| panic!("no token in {}", self.data))
            .to_owned()
    }

    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

/// A small SMTP server on 127.0.0.1, speaking what a client needs to hand over a message (EHLO,
/// HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT); every message it takes arrives in [`Self::next`].
pub struct MailServer {
    pub port: u16,
    inbox: mpsc::UnboundedReceiver<Delivered>,
    accepting: tokio::task::JoinHandle<()>,
}

impl MailServer {
    pub async fn start() -> Self {
        Self::on(0).await
    }

    /// A server on `port` (0: any free one).
    pub async fn on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, inbox) = mpsc::unbounded_channel();
        let accepting = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, sender.clone()));
            }
        });
        MailServer {
            port,
            inbox,
            accepting,
        }
    }

    /// The next message, within 20 seconds.
    pub async fn next(&mut self) -> Delivered {
        tokio::time::timeout(Duration::from_secs(20), self.inbox.recv())
            .await
            .expect("a mail arrives within 20 s")
            .expect("the server runs")
    }

    /// Whether no message arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.inbox.recv()).await.is_err()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// One SMTP session.
async fn session(
    socket: TcpStream,
    inbox: mpsc::UnboundedSender<Delivered>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 mail.test ESMTP\r\n").await?;
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-mail.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            b"250 mail.test\r\n"
        } else if command.starts_with("MAIL FROM:") || command.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            let address = line.trim_end()[8..]
                .trim()
                .trim_matches(['<', '>'])
                .to_owned();
            to.push(address);
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let _ = inbox.send(Delivered {
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// Settings of a server that mails through `smtp_port`, retrying fast.
async fn mailing_settings(smtp_port: u16) -> api::Settings {
    let mut settings = test_settings().await;
    settings.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}").into());
    settings.mail_from = "Social <no-reply@social.test>".into();
    settings.public_url = Some("https://app.example".into());
    settings.outbox_retry_base = Duration::from_millis(200);
    settings.outbox_poll = Duration::from_millis(200);
    settings
}

/// A server that mails through `smtp_port`, retrying fast.
async fn app_mailing_to(smtp_port: u16) -> TestApp {
    spawn_app_with(mailing_settings(smtp_port).await).await
}

/// A mail server and a server that mails through it.
async fn app_with_mail() -> (TestApp, MailServer) {
    let mail = MailServer::start().await;
    let app = app_mailing_to(mail.port).await;
    (app, mail)
}

fn access(token: &Value) -> &str {
    token["access_token"].as_str().unwrap()
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.get("/users/me", Some(token)).await.expect(200)
}

async fn forgot(app: &TestApp, email: &str) -> crate::helpers::TestResponse {
    app.post("/auth/password/forgot", None, &json!({ "email": email }))
        .await
}

async fn login(app: &TestApp, name: &str, password: &str) -> crate::helpers::TestResponse {
    app.post(
        "/auth/login",
        None,
        &json!({"username": name, "password": password}),
    )
    .await
}

#[tokio::test]
async fn registration_mails_a_token_that_verifies_the_address_once() {
    let (app, mut mail) = app_with_mail().await;
    let registered = app.try_register("susan").await.expect(201);
    assert_eq!(registered["user"]["email_verified"], false);
    let token = access(&registered);
    assert_eq!(me(&app, token).await["email_verified"], false);

    let message = mail.next().await;
    assert_eq!(message.to, ["susan@example.com"]);
    assert_eq!(message.subject(), "Confirm your email address");
    assert!(message.data.contains("From: Social <no-reply@social.test>"));
    let code = message.token();
    assert!(
        message
            .body()
            .contains(&format!("https://app.example/verify-email?token={code}")),
        "{}",
        message.data
    );
    // Only the token's hash is stored.
    let stored = entity::email_token::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].hash, code);
    assert!(!stored.iter().any(|row| row.hash.contains(&code)));

    let body = json!({ "token": code });
    let verify = || app.post("/auth/email/verify", None, &body);
    assert_eq!(verify().await.status, 204);
    assert_eq!(me(&app, token).await["email_verified"], true);
    // Single-use.
    verify().await.assert_problem(400, "invalid_token");
    // Nobody else sees it.
    let profile = app.profile("susan", None).await;
    assert!(profile.get("email_verified").is_none(), "{profile}");
}

#[tokio::test]
async fn unknown_expired_malformed_and_other_purpose_tokens_are_400_invalid_token() {
    let (app, mut mail) = app_with_mail().await;
    let registered = app.try_register("john").await.expect(201);
    let code = mail.next().await.token();

    for (body, why) in [
        (json!({"token": "A".repeat(43)}), "unknown"),
        (json!({"token": ""}), "empty"),
        (json!({"token": "not a token!"}), "malformed"),
        (json!({"token": "x".repeat(10_000)}), "far too long"),
        (json!({}), "missing"),
    ] {
        let response = app.post("/auth/email/verify", None, &body).await;
        assert_eq!(response.status, 400, "{why}: {}", response.text);
        response.assert_problem(400, "invalid_token");
    }
    // A verification token does not reset a password.
    app.post(
        "/auth/password/reset",
        None,
        &json!({"token": code, "new_password": "a brand new password"}),
    )
    .await
    .assert_problem(400, "invalid_token");

    // Past its 24 hours it is refused, and verifies nothing.
    entity::email_token::Entity::update_many()
        .col_expr(entity::email_token::Column::ExpiresAt, Expr::val(1_i64))
        .exec(&app.db)
        .await
        .unwrap();
    app.post("/auth/email/verify", None, &json!({ "token": code }))
        .await
        .assert_problem(400, "invalid_token");
    assert_eq!(me(&app, access(&registered)).await["email_verified"], false);
}

#[tokio::test]
async fn verification_mail_is_sent_at_most_once_a_minute() {
    let (app, mut mail) = app_with_mail().await;
    let registered = app.try_register("mary").await.expect(201);
    let token = access(&registered);
    let first = mail.next().await.token();

    // Registration's mail counts.
    let again = app
        .request(
            reqwest::Method::POST,
            "/auth/email/verification",
            Some(token),
            None,
        )
        .await;
    again.assert_problem(429, "rate_limited");
    let retry_after: u64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // A minute later, one more.
    entity::email_token::Entity::update_many()
        .col_expr(
            entity::email_token::Column::CreatedAt,
            Expr::col(entity::email_token::Column::CreatedAt).sub(61_000),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let response = app
        .request(
            reqwest::Method::POST,
            "/auth/email/verification",
            Some(token),
            None,
        )
        .await;
    assert_eq!(response.status, 202, "{}", response.text);
    let second = mail.next().await;
    assert_eq!(second.to, ["mary@example.com"]);
    assert_ne!(second.token(), first);
    app.request(
        reqwest::Method::POST,
        "/auth/email/verification",
        Some(token),
        None,
    )
    .await
    .assert_problem(429, "rate_limited");

    // Either token verifies; a verified address is not mailed again.
    assert_eq!(
        app.post("/auth/email/verify", None, &json!({ "token": first }))
            .await
            .status,
        204
    );
    entity::email_token::Entity::update_many()
        .col_expr(
            entity::email_token::Column::CreatedAt,
            Expr::col(entity::email_token::Column::CreatedAt).sub(61_000),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let response = app
        .request(
            reqwest::Method::POST,
            "/auth/email/verification",
            Some(token),
            None,
        )
        .await;
    assert_eq!(response.status, 202, "{}", response.text);
    assert!(mail.quiet_for(Duration::from_millis(800)).await);
    // Without a token: 401.
    app.request(
        reqwest::Method::POST,
        "/auth/email/verification",
        None,
        None,
    )
    .await
    .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_reset_sets_the_password_and_ends_every_session_of_the_account() {
    let (app, mut mail) = app_with_mail().await;
    let registered = app.try_register("susan").await.expect(201);
    mail.next().await;
    let logged_in = login(&app, "susan", "password-of-susan").await.expect(200);

    assert_eq!(forgot(&app, "SUSAN@example.com").await.status, 202);
    let message = mail.next().await;
    assert_eq!(message.to, ["susan@example.com"]);
    assert_eq!(message.subject(), "Reset your password");
    let code = message.token();
    assert!(
        message
            .body()
            .contains(&format!("https://app.example/reset?token={code}")),
        "{}",
        message.data
    );

    // The password rule first; the token is not spent by a refusal.
    let short = app
        .post(
            "/auth/password/reset",
            None,
            &json!({"token": code, "new_password": "short"}),
        )
        .await;
    let body = short.assert_problem(422, "validation_failed");
    assert!(body["errors"]["new_password"].is_array(), "{body}");
    let reset = app
        .post(
            "/auth/password/reset",
            None,
            &json!({"token": code, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(reset.status, 204, "{}", reset.text);

    // Every session ended: access tokens and refresh tokens alike.
    for token in [&registered, &logged_in] {
        app.get("/users/me", Some(access(token)))
            .await
            .assert_problem(401, "unauthorized");
        app.post(
            "/auth/refresh",
            None,
            &json!({"refresh_token": token["refresh_token"]}),
        )
        .await
        .assert_problem(401, "invalid_refresh_token");
    }
    login(&app, "susan", "password-of-susan")
        .await
        .assert_problem(401, "invalid_credentials");
    let fresh = login(&app, "susan", "a brand new password")
        .await
        .expect(200);
    // The mail reached the address, so it is verified too.
    assert_eq!(fresh["user"]["email_verified"], true);
    // Single-use.
    app.post(
        "/auth/password/reset",
        None,
        &json!({"token": code, "new_password": "another new password"}),
    )
    .await
    .assert_problem(400, "invalid_token");
}

#[tokio::test]
async fn a_new_reset_token_replaces_the_older_one() {
    let (app, mut mail) = app_with_mail().await;
    app.try_register("john").await.expect(201);
    mail.next().await;
    assert_eq!(forgot(&app, "john@example.com").await.status, 202);
    let older = mail.next().await.token();
    assert_eq!(forgot(&app, "john@example.com").await.status, 202);
    let newer = mail.next().await.token();
    assert_ne!(older, newer);

    let reset = async |code: String| {
        app.post(
            "/auth/password/reset",
            None,
            &json!({"token": code, "new_password": "a brand new password"}),
        )
        .await
    };
    reset(older).await.assert_problem(400, "invalid_token");
    assert_eq!(reset(newer).await.status, 204);
    login(&app, "john", "a brand new password")
        .await
        .expect(200);

    // A reset token lives 30 minutes.
    assert_eq!(forgot(&app, "john@example.com").await.status, 202);
    let late = mail.next().await.token();
    entity::email_token::Entity::update_many()
        .col_expr(entity::email_token::Column::ExpiresAt, Expr::val(1_i64))
        .exec(&app.db)
        .await
        .unwrap();
    reset(late).await.assert_problem(400, "invalid_token");
}

#[tokio::test]
async fn forgot_answers_an_unknown_address_as_it_answers_a_known_one_and_mails_nobody() {
    let (app, mut mail) = app_with_mail().await;
    app.try_register("susan").await.expect(201);
    mail.next().await;

    let known = forgot(&app, "susan@example.com").await;
    let unknown = forgot(&app, "nobody@example.com").await;
    for response in [&known, &unknown] {
        assert_eq!(response.status, 202);
        assert_eq!(response.text, "");
    }
    assert_eq!(mail.next().await.to, ["susan@example.com"]);
    assert!(mail.quiet_for(Duration::from_millis(800)).await);

    // The same time: the medians of many calls, interleaved, are within a generous factor.
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..25 {
        for (i, address) in ["susan@example.com", "nobody@example.com"]
            .iter()
            .enumerate()
        {
            let started = Instant::now();
            assert_eq!(forgot(&app, address).await.status, 202);
            times[i].push(started.elapsed());
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (known, unknown) = (median(&mut times[0]), median(&mut times[1]));
    let slack = Duration::from_millis(5);
    assert!(
        known <= unknown * 2 + slack && unknown <= known * 2 + slack,
        "median of a known address {known:?}, of an unknown one {unknown:?}"
    );
}

#[tokio::test]
async fn a_mail_server_that_is_down_delays_no_request_and_gets_the_mail_once_it_is_up() {
    let port = free_port();
    let app = app_mailing_to(port).await;
    let started = Instant::now();
    app.try_register("susan").await.expect(201);
    assert_eq!(forgot(&app, "susan@example.com").await.status, 202);
    let answered_in = started.elapsed();
    assert!(answered_in < Duration::from_secs(5), "{answered_in:?}");

    // Tried and failed at least once by now; delivered once the server comes up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut mail = MailServer::on(port).await;
    let mut subjects = vec![mail.next().await.subject(), mail.next().await.subject()];
    subjects.sort();
    assert_eq!(
        subjects,
        ["Confirm your email address", "Reset your password"]
    );
    // Sent once each, and gone from the outbox.
    assert!(mail.quiet_for(Duration::from_millis(800)).await);
    assert_eq!(
        entity::outbox::Entity::find().count(&app.db).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn without_a_mail_server_the_endpoints_answer_as_usual_and_nothing_is_queued() {
    let app = spawn_app().await;
    let registered = app.try_register("john").await.expect(201);
    assert_eq!(forgot(&app, "john@example.com").await.status, 202);
    assert_eq!(forgot(&app, "nobody@example.com").await.status, 202);
    let response = app
        .request(
            reqwest::Method::POST,
            "/auth/email/verification",
            Some(access(&registered)),
            None,
        )
        .await;
    assert_eq!(response.status, 202);
    assert_eq!(
        entity::outbox::Entity::find().count(&app.db).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn forgot_and_reset_refuse_bodies_that_break_the_rules() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({}), "email"),
        (json!({"email": "not an address"}), "email"),
    ] {
        let response = app.post("/auth/password/forgot", None, &body).await;
        let problem = response.assert_problem(422, "validation_failed");
        assert!(problem["errors"][field].is_array(), "{problem}");
    }
    let problem = app
        .post(
            "/auth/password/reset",
            None,
            &json!({"token": "A".repeat(43)}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert!(problem["errors"]["new_password"].is_array(), "{problem}");
    app.post(
        "/auth/password/reset",
        None,
        &json!({"token": "A".repeat(43), "new_password": "long enough password"}),
    )
    .await
    .assert_problem(400, "invalid_token");
}

#[tokio::test]
async fn two_servers_on_one_database_send_each_mail_once() {
    let mut mail = MailServer::start().await;
    let first = app_mailing_to(mail.port).await;
    let mut settings = mailing_settings(mail.port).await;
    settings.database_url = first.database_url.clone().into();
    let second = spawn_app_with(settings).await;
    for i in 0..8 {
        let app = if i % 2 == 0 { &first } else { &second };
        app.try_register(&format!("user{i}")).await.expect(201);
    }
    let mut recipients = Vec::new();
    for _ in 0..8 {
        recipients.extend(mail.next().await.to);
    }
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 8, "{recipients:?}");
    assert!(mail.quiet_for(Duration::from_millis(800)).await);
}

#[tokio::test]
async fn forgot_takes_the_login_quota_of_the_client_address() {
    let mut settings = test_settings().await;
    settings.rate_limit_auth_per_minute = 2;
    let app = spawn_app_with(settings).await;
    assert_eq!(forgot(&app, "a@example.com").await.status, 202);
    assert_eq!(forgot(&app, "b@example.com").await.status, 202);
    let refused = forgot(&app, "c@example.com").await;
    refused.assert_problem(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
}
