//! Web Push: the server key, subscriptions and their field rules, their end with the session, and
//! delivery to a push service that the test runs on loopback. That service does what a browser's
//! push service and the browser do together: it checks the VAPID signature against
//! `GET /push/server_key`, and decrypts each payload with the subscription's private key
//! (`ece`), so a push that arrives readable was encrypted for that subscription.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::push_subscription;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with, test_settings};

/// A push service's answer, planned by the test.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Created,
    TooMany { retry_after: u64 },
    Gone,
    ServerError,
}

/// A request the push service received.
#[derive(Debug)]
struct Received {
    path: String,
    headers: actix_web::http::header::HeaderMap,
    body: Vec<u8>,
}

#[derive(Default)]
struct Plan {
    answers: VecDeque<Answer>,
}

/// The test's push service: answers from its plan (201 when the plan is empty), and hands every
/// request it received to the test.
struct PushService {
    url: String,
    plan: Arc<Mutex<Plan>>,
    received: mpsc::UnboundedReceiver<Received>,
}

impl PushService {
    async fn start() -> Self {
        let plan = Arc::new(Mutex::new(Plan::default()));
        let (tx, received) = mpsc::unbounded_channel();
        let state = web::Data::new((plan.clone(), tx));
        let server = HttpServer::new(move || {
            App::new().app_data(state.clone()).default_service(web::to(
                |req: HttpRequest,
                 body: web::Bytes,
                 state: web::Data<(
                    Arc<Mutex<Plan>>,
                    mpsc::UnboundedSender<Received>,
                )>| async move {
                    let answer = state.0.lock().unwrap().answers.pop_front();
                    let _ = state.1.send(Received {
                        path: req.path().to_owned(),
                        headers: req.headers().clone(),
                        body: body.to_vec(),
                    });
                    match answer.unwrap_or(Answer::Created) {
                        Answer::Created => HttpResponse::Created().finish(),
                        Answer::TooMany { retry_after } => HttpResponse::TooManyRequests()
                            .insert_header(("Retry-After", retry_after.to_string()))
                            .finish(),
                        Answer::Gone => HttpResponse::Gone().finish(),
                        Answer::ServerError => HttpResponse::InternalServerError().finish(),
                    }
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        PushService {
            url: format!("http://127.0.0.1:{port}"),
            plan,
            received,
        }
    }

    fn answer(&self, answers: &[Answer]) {
        self.plan.lock().unwrap().answers.extend(answers);
    }

    /// The next request, or a failed test after 20 seconds (generous: it is not a timing test).
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.received.recv())
            .await
            .expect("a push arrives")
            .expect("the push service runs")
    }
}

/// A browser's subscription: its key pair and auth secret, made by the test.
struct Browser {
    keys: ece::EcKeyComponents,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let (pair, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        Browser {
            keys: pair.raw_components().unwrap(),
            public: pair.pub_as_raw().unwrap(),
            auth,
        }
    }

    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(&self.public),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }

    /// The payload of `push`, decrypted as the browser would; the test fails if it cannot be.
    fn open(&self, push: &Received) -> Value {
        let plain = ece::decrypt(&self.keys, &self.auth, &push.body).expect("the push decrypts");
        assert!(plain.len() <= 3_000, "{} bytes", plain.len());
        serde_json::from_slice(&plain).unwrap()
    }
}

async fn put_subscription(
    app: &TestApp,
    user: &TestUser,
    body: &Value,
) -> crate::helpers::TestResponse {
    app.request(
        reqwest::Method::PUT,
        "/push/subscription",
        Some(&user.token),
        Some(body),
    )
    .await
}

/// An app whose push endpoints may be on loopback over `http://`, retrying quickly.
async fn push_app() -> TestApp {
    let mut settings = test_settings().await;
    settings.push_allow_private_endpoints = true;
    settings.outbox_retry_base = Duration::from_millis(100);
    settings.outbox_poll = Duration::from_millis(200);
    spawn_app_with(settings).await
}

async fn subscriptions_of(app: &TestApp, username: &str) -> u64 {
    let id = app.user_id(username).await;
    push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(id))
        .count(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_server_key_is_an_uncompressed_p256_point_and_stays_the_same() {
    let app = spawn_app().await;
    let first = app.get("/push/server_key", None).await.expect(200);
    let key = URL_SAFE_NO_PAD
        .decode(first["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(key.len(), 65);
    assert_eq!(key[0], 4);
    let again = app.get("/push/server_key", None).await.expect(200);
    assert_eq!(first, again);
}

#[tokio::test]
async fn a_subscription_is_the_sessions_own_and_a_new_one_replaces_it() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    app.get("/push/subscription", Some(&susan.token))
        .await
        .assert_problem(404, "push_subscription_not_found");
    let browser = Browser::new();
    let created = put_subscription(
        &app,
        &susan,
        &browser.subscription("https://push.example/a"),
    )
    .await
    .expect(200);
    assert_eq!(created["endpoint"], "https://push.example/a");
    assert_eq!(
        created["alerts"],
        json!({"follow": true, "follow_request": true, "follow_accepted": true,
               "like": true, "repost": true, "reply": true})
    );
    assert!(created["created_at"].is_string());
    let mut body = browser.subscription("https://push.example/b");
    body["alerts"] = json!({"like": false, "reply": false});
    let replaced = put_subscription(&app, &susan, &body).await.expect(200);
    assert_eq!(replaced["endpoint"], "https://push.example/b");
    assert_eq!(replaced["alerts"]["like"], false);
    assert_eq!(replaced["alerts"]["reply"], false);
    assert_eq!(replaced["alerts"]["follow"], true);
    let read = app
        .get("/push/subscription", Some(&susan.token))
        .await
        .expect(200);
    assert_eq!(read, replaced);
    assert_eq!(subscriptions_of(&app, "susan").await, 1);

    app.delete("/push/subscription", Some(&susan.token))
        .await
        .expect(204);
    app.delete("/push/subscription", Some(&susan.token))
        .await
        .expect(204);
    app.get("/push/subscription", Some(&susan.token))
        .await
        .assert_problem(404, "push_subscription_not_found");
    app.get("/push/subscription", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn endpoints_that_could_reach_the_servers_own_network_are_refused() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let browser = Browser::new();
    let private =
        "must not be a loopback, private, link-local, unique-local or unspecified address";
    let https = "must be an https:// URL";
    let long = format!("https://push.example/{}", "a".repeat(1_000));
    for (endpoint, message) in [
        ("http://push.example/a", https),
        ("ftp://push.example/a", https),
        ("push.example/a", https),
        ("", https),
        (long.as_str(), "must be at most 1,000 characters"),
        (
            "https://user:secret@push.example/a",
            "must not carry a user name or password",
        ),
        ("https://localhost/a", private),
        ("https://LOCALHOST./a", private),
        ("https://api.localhost/a", private),
        ("https://127.0.0.1/a", private),
        ("https://127.1/a", private),
        ("https://2130706433/a", private),
        ("https://0x7f000001/a", private),
        ("https://0.0.0.0/a", private),
        ("https://10.0.0.1/a", private),
        ("https://172.16.5.4/a", private),
        ("https://192.168.1.1/a", private),
        ("https://169.254.169.254/latest/meta-data", private),
        ("https://100.64.0.1/a", private),
        ("https://[::1]/a", private),
        ("https://[::]/a", private),
        ("https://[fe80::1]/a", private),
        ("https://[fd00::1]/a", private),
        ("https://[::ffff:127.0.0.1]/a", private),
        ("https://[::ffff:169.254.169.254]/a", private),
        (
            "https://push.example/a\u{0}",
            "must not contain control characters",
        ),
        (
            "https://push.example/a\tb",
            "must not contain control characters",
        ),
    ] {
        let response = put_subscription(&app, &susan, &browser.subscription(endpoint)).await;
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(
            problem["errors"]["endpoint"],
            json!([message]),
            "{endpoint}"
        );
    }
    put_subscription(&app, &susan, &browser.subscription("https://8.8.8.8/a"))
        .await
        .expect(200);
    assert_eq!(subscriptions_of(&app, "susan").await, 1);
}

#[tokio::test]
async fn keys_must_be_a_p256_point_and_a_16_byte_secret() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let browser = Browser::new();
    let good = browser.subscription("https://push.example/a");
    let point = "must be a P-256 public key: an uncompressed point of 65 bytes, base64url";
    let mut off_curve = browser.public.clone();
    off_curve[64] ^= 1;
    let mut compressed = browser.public[..33].to_vec();
    compressed[0] = 2;
    for (field, value, message) in [
        ("p256dh", json!("not base64!"), "must be base64url"),
        ("p256dh", json!(URL_SAFE_NO_PAD.encode(&off_curve)), point),
        ("p256dh", json!(URL_SAFE_NO_PAD.encode(&compressed)), point),
        ("p256dh", json!(URL_SAFE_NO_PAD.encode([4u8; 65])), point),
        (
            "auth",
            json!(URL_SAFE_NO_PAD.encode([1u8; 15])),
            "must be 16 bytes, base64url",
        ),
        (
            "auth",
            json!(URL_SAFE_NO_PAD.encode([1u8; 32])),
            "must be 16 bytes, base64url",
        ),
        ("auth", json!("***"), "must be base64url"),
    ] {
        let mut body = good.clone();
        body["keys"][field] = value.clone();
        let problem = put_subscription(&app, &susan, &body)
            .await
            .assert_problem(422, "validation_failed");
        assert_eq!(
            problem["errors"][format!("keys.{field}")],
            json!([message]),
            "{field} = {value}"
        );
    }
    let problem = put_subscription(&app, &susan, &json!({}))
        .await
        .assert_problem(422, "validation_failed");
    for field in ["endpoint", "keys.p256dh", "keys.auth"] {
        assert_eq!(problem["errors"][field], json!(["is required"]), "{field}");
    }
    // Padding is tolerated, as some browsers' libraries add it.
    let mut padded = good.clone();
    padded["keys"]["auth"] = json!(format!("{}==", URL_SAFE_NO_PAD.encode(browser.auth)));
    put_subscription(&app, &susan, &padded).await.expect(200);
    // Any padding: the keys are stored without it, so the columns' lengths hold (a 500 on
    // PostgreSQL and MySQL before), and the subscription reads back as it works.
    padded["keys"]["auth"] = json!(format!(
        "{}{}",
        URL_SAFE_NO_PAD.encode(browser.auth),
        "=".repeat(11)
    ));
    padded["keys"]["p256dh"] = json!(format!(
        "{}{}",
        URL_SAFE_NO_PAD.encode(&browser.public),
        "=".repeat(14)
    ));
    put_subscription(&app, &susan, &padded).await.expect(200);
    assert_eq!(subscriptions_of(&app, "susan").await, 1);
}

#[tokio::test]
async fn a_subscription_ends_with_its_session_however_the_session_ends() {
    let app = spawn_app().await;
    let admin = app.register_operator("admin").await;
    let browser = Browser::new();
    let subscribe = async |user: &TestUser| {
        put_subscription(&app, user, &browser.subscription("https://push.example/a"))
            .await
            .expect(200);
    };
    let login = async |name: &str| TestUser {
        token: app
            .post(
                "/auth/login",
                None,
                &json!({"username": name, "password": format!("password-of-{name}")}),
            )
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    };

    // Logout.
    let john = app.register("john").await;
    subscribe(&john).await;
    assert_eq!(subscriptions_of(&app, "john").await, 1);
    app.post("/auth/logout", Some(&john.token), &json!({}))
        .await
        .expect(204);
    assert_eq!(subscriptions_of(&app, "john").await, 0);

    // A deleted session; the other session's subscription stays.
    let phone = login("john").await;
    let laptop = login("john").await;
    subscribe(&phone).await;
    subscribe(&laptop).await;
    assert_eq!(subscriptions_of(&app, "john").await, 2);
    let sessions = app
        .get("/users/me/sessions", Some(&laptop.token))
        .await
        .expect(200);
    let phone_id = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(
        &format!("/users/me/sessions/{phone_id}"),
        Some(&laptop.token),
    )
    .await
    .expect(204);
    assert_eq!(subscriptions_of(&app, "john").await, 1);
    app.get("/push/subscription", Some(&laptop.token))
        .await
        .expect(200);

    // A password change ends the other sessions, and their subscriptions.
    let phone = login("john").await;
    subscribe(&phone).await;
    assert_eq!(subscriptions_of(&app, "john").await, 2);
    app.request(
        reqwest::Method::PUT,
        "/users/me/password",
        Some(&laptop.token),
        Some(&json!({"current_password": "password-of-john", "new_password": "a-new-password"})),
    )
    .await
    .expect(204);
    assert_eq!(subscriptions_of(&app, "john").await, 1);

    // A suspension.
    let mary = app.register("mary").await;
    subscribe(&mary).await;
    app.post(
        "/admin/users/mary/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    assert_eq!(subscriptions_of(&app, "mary").await, 0);

    // The account's removal.
    let bob = app.register("bob").await;
    subscribe(&bob).await;
    let bob_id = app.user_id("bob").await;
    app.delete("/users/me", Some(&bob.token)).await.expect(204);
    let left = push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(bob_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_notification_is_pushed_encrypted_for_the_subscription_and_signed_with_the_server_key() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app
        .register_with("susan", json!({"display_name": "Susan S"}))
        .await;
    let john = app
        .register_with("john", json!({"display_name": "John J"}))
        .await;
    let browser = Browser::new();
    put_subscription(
        &app,
        &susan,
        &browser.subscription(&format!("{}/push/susan", service.url)),
    )
    .await
    .expect(200);

    app.follow(&john, "susan").await;
    let push = service.next().await;
    assert_eq!(push.path, "/push/susan");
    let header = |name: &str| push.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("ttl"), "172800");
    assert_eq!(header("urgency"), "normal");
    assert_eq!(header("content-encoding"), "aes128gcm");
    let notifications = app
        .get("/notifications", Some(&susan.token))
        .await
        .expect(200);
    let notification = &notifications["items"][0];
    assert_eq!(
        browser.open(&push),
        json!({
            "notification_id": notification["id"],
            "type": "follow",
            "account": {"username": "john", "display_name": "John J"},
            "post_id": null,
            "title": "New follower",
            "body": "John J followed you",
        })
    );

    // VAPID (RFC 8292): `vapid t=<ES256 JWT>, k=<the server key>`, for this push service's origin.
    let server_key = app.get("/push/server_key", None).await.expect(200)["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorization = header("authorization");
    let rest = authorization
        .strip_prefix("vapid t=")
        .expect("a vapid scheme");
    let (token, k) = rest.split_once(", k=").expect("t and k");
    assert_eq!(k, server_key);
    let point = URL_SAFE_NO_PAD.decode(&server_key).unwrap();
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[service.url.as_str()]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the VAPID token verifies with the server key")
        .claims;
    assert_eq!(claims["sub"], "mailto:admin@localhost");
    let exp = claims["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(exp > now && exp <= now + 24 * 3_600, "exp {exp}, now {now}");

    // A like quotes the post.
    let post = app.post_as(&susan, "a post worth liking").await;
    app.post(
        &format!("/posts/{post}/like"),
        Some(&john.token),
        &json!({}),
    )
    .await
    .expect(201);
    let like = browser.open(&service.next().await);
    assert_eq!(like["type"], "like");
    assert_eq!(like["post_id"], post);
    assert_eq!(like["body"], "John J liked your post: a post worth liking");
}

#[tokio::test]
async fn a_push_service_that_says_gone_removes_the_subscription() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let browser = Browser::new();
    put_subscription(
        &app,
        &susan,
        &browser.subscription(&format!("{}/push/susan", service.url)),
    )
    .await
    .expect(200);
    service.answer(&[Answer::Gone]);
    app.follow(&john, "susan").await;
    browser.open(&service.next().await);
    // The worker removes it once it has read the answer.
    for _ in 0..200 {
        if subscriptions_of(&app, "susan").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.get("/push/subscription", Some(&susan.token))
        .await
        .assert_problem(404, "push_subscription_not_found");
}

/// A push service that accepts connections and never answers; counts the connections its
/// client has closed (the server's send timeout).
async fn hanging_push_service() -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (a, c) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    (url, accepted, closed)
}

/// A push service that hangs holds one of the worker's slots, not everyone's pushes: while the
/// worker still waits on it, another subscriber's push goes out.
#[tokio::test]
async fn a_push_service_that_hangs_does_not_hold_up_other_pushes() {
    use std::sync::atomic::Ordering;
    let app = push_app().await;
    let (hanging_url, accepted, closed) = hanging_push_service().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let ann = app.register("ann").await;
    let john = app.register("john").await;
    let (slow, quick) = (Browser::new(), Browser::new());
    put_subscription(
        &app,
        &susan,
        &slow.subscription(&format!("{hanging_url}/push/susan")),
    )
    .await
    .expect(200);
    put_subscription(
        &app,
        &ann,
        &quick.subscription(&format!("{}/push/ann", service.url)),
    )
    .await
    .expect(200);
    app.follow(&john, "susan").await;
    // The worker is now waiting on the hanging service.
    for _ in 0..400 {
        if accepted.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the hanging service was never called"
    );
    app.follow(&john, "ann").await;
    let payload = quick.open(&service.next().await);
    assert_eq!(payload["type"], "follow");
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "ann's push went out only after the hanging one was given up"
    );
}

/// Browsers send their subscription again on every page load: a push already due (here,
/// waiting for its retry) still reaches the session.
#[tokio::test]
async fn a_subscription_sent_again_keeps_the_pushes_already_due() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let browser = Browser::new();
    let subscription = browser.subscription(&format!("{}/push/susan", service.url));
    put_subscription(&app, &susan, &subscription)
        .await
        .expect(200);
    service.answer(&[Answer::ServerError]);
    app.follow(&john, "susan").await;
    let refused = browser.open(&service.next().await);
    put_subscription(&app, &susan, &subscription)
        .await
        .expect(200);
    let retried = browser.open(&service.next().await);
    assert_eq!(retried["notification_id"], refused["notification_id"]);
    assert_eq!(retried["type"], "follow");
    assert_eq!(subscriptions_of(&app, "susan").await, 1);
}

#[tokio::test]
async fn a_push_refused_for_now_is_sent_again_until_it_is_taken() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let browser = Browser::new();
    put_subscription(
        &app,
        &susan,
        &browser.subscription(&format!("{}/push/susan", service.url)),
    )
    .await
    .expect(200);
    service.answer(&[Answer::ServerError, Answer::TooMany { retry_after: 1 }]);
    app.follow(&john, "susan").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let payload = browser.open(&service.next().await);
        assert_eq!(payload["type"], "follow");
        ids.push(payload["notification_id"].clone());
    }
    // The same message each time, and nothing after it was taken (the worker's row is gone).
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    for _ in 0..200 {
        let left = entity::outbox::Entity::find().count(&app.db).await.unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        entity::outbox::Entity::find().count(&app.db).await.unwrap(),
        0
    );
    assert!(service.received.try_recv().is_err());
    assert_eq!(subscriptions_of(&app, "susan").await, 1);
}

#[tokio::test]
async fn a_type_whose_alert_is_off_is_not_pushed() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let browser = Browser::new();
    let mut body = browser.subscription(&format!("{}/push/susan", service.url));
    body["alerts"] = json!({"follow": false});
    put_subscription(&app, &susan, &body).await.expect(200);
    // The follow makes a notification but no push; the like after it makes both. The worker
    // sends in the order the rows fell due, so a follow push would have come first.
    app.follow(&john, "susan").await;
    let post = app.post_as(&susan, "hello").await;
    app.post(
        &format!("/posts/{post}/like"),
        Some(&john.token),
        &json!({}),
    )
    .await
    .expect(201);
    let first = browser.open(&service.next().await);
    assert_eq!(first["type"], "like");
    let notifications = app
        .get("/notifications", Some(&susan.token))
        .await
        .expect(200);
    assert_eq!(notifications["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_notification_rolled_back_is_never_pushed() {
    let app = push_app().await;
    let mut service = PushService::start().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let browser = Browser::new();
    put_subscription(
        &app,
        &susan,
        &browser.subscription(&format!("{}/push/susan", service.url)),
    )
    .await
    .expect(200);
    let (susan_id, john_id) = (app.user_id("susan").await, app.user_id("john").await);
    {
        use sea_orm::TransactionTrait;
        let txn = app.db.begin().await.unwrap();
        api::services::notifications::notify(
            &txn,
            susan_id,
            john_id,
            api::services::notifications::Kind::FollowRequest,
            None,
        )
        .await
        .unwrap();
        // Its push was written in the transaction...
        assert_eq!(entity::outbox::Entity::find().count(&txn).await.unwrap(), 1);
        txn.rollback().await.unwrap();
    }
    // ...and went with it.
    assert_eq!(
        entity::outbox::Entity::find().count(&app.db).await.unwrap(),
        0
    );
    app.follow(&john, "susan").await;
    let first = browser.open(&service.next().await);
    assert_eq!(first["type"], "follow");
}
