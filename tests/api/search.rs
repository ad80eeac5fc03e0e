//! API.md "Accounts": `GET /users?q=`, user search by the start of a username or display name.

use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, TestUser, backend, spawn_app};

/// Registers `username` with `display_name`.
async fn register_named(app: &TestApp, username: &str, display_name: &str) -> TestUser {
    app.register_with(username, json!({"display_name": display_name}))
        .await
}

/// `GET /users?{query}` (the query already encoded).
async fn search(app: &TestApp, query: &str, viewer: Option<&TestUser>) -> TestResponse {
    app.get(&format!("/users?{query}"), viewer.map(|u| u.token.as_str()))
        .await
}

/// `q` for a query string.
fn q(text: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC);
    format!("q={encoded}")
}

/// The usernames of a page, in order.
fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|card| card["username"].as_str().unwrap().to_owned())
        .collect()
}

/// The usernames of the first page (of up to 100) of a search for `text`.
async fn found(app: &TestApp, text: &str) -> Vec<String> {
    names(
        &search(app, &format!("{}&limit=100", q(text)), None)
            .await
            .expect(200),
    )
}

#[tokio::test]
async fn a_final_sigma_and_leading_white_space_do_not_hide_a_display_name() {
    let app = spawn_app().await;
    register_named(&app, "nikos", "Νίκος Π").await;
    register_named(&app, "spiros", "ΣΠΥΡΟΣ").await;
    register_named(&app, "bob", " \u{a0}Bobby Tables").await;
    assert_eq!(found(&app, "ΝΊΚΟΣ").await, ["nikos"]);
    assert_eq!(found(&app, "νίκοσ π").await, ["nikos"]);
    assert_eq!(found(&app, "σπυρος").await, ["spiros"]);
    assert_eq!(found(&app, "ΣΠΥΡΟς").await, ["spiros"]);
    assert_eq!(found(&app, "bobby t").await, ["bob"]);
}

#[tokio::test]
async fn search_finds_users_by_the_start_of_their_username_or_display_name() {
    let app = spawn_app().await;
    register_named(&app, "susan", "Mary Sue").await;
    app.register("sue_ellen").await;
    register_named(&app, "bob", "Sunny").await;
    register_named(&app, "alice", "Alice Su").await;

    // By username (susan, sue_ellen) and by display name (bob), ordered by username.
    assert_eq!(found(&app, "su").await, ["bob", "sue_ellen", "susan"]);
    // Only by display name; the middle of a name is not its start.
    assert_eq!(found(&app, "mary").await, ["susan"]);
    assert_eq!(found(&app, "sue").await, ["sue_ellen"]);
    assert!(found(&app, "ary").await.is_empty());
    assert!(found(&app, "nobody").await.is_empty());
    // The cards are UserCards.
    let page = search(&app, "q=sus", None).await.expect(200);
    assert_eq!(
        page,
        json!({
            "items": [{"username": "susan", "display_name": "Mary Sue", "bio": null,
                       "locked": false, "viewer": null, "avatar_url": null}],
            "next_cursor": null,
            "prev_cursor": null,
        })
    );
}

#[tokio::test]
async fn search_ignores_letter_case_in_names_and_in_the_text_searched_for() {
    let app = spawn_app().await;
    app.register("SuSan").await;
    register_named(&app, "elodie", "ÉLODIE Ärger").await;
    register_named(&app, "odysseus", "ΟΔΥΣΣΕΑΣ").await;
    register_named(&app, "lower", "élan").await;

    for text in ["susan", "SUSAN", "sUs", "S"] {
        assert_eq!(found(&app, text).await, ["SuSan"], "{text}");
    }
    // Upper-case names, lower-case text, and the other way round, beyond ASCII.
    assert_eq!(found(&app, "élo").await, ["elodie"]);
    assert_eq!(found(&app, "ÉLA").await, ["lower"]);
    assert_eq!(found(&app, "É").await, ["elodie", "lower"]);
    assert_eq!(found(&app, "οδυσσ").await, ["odysseus"]);
    // A text ending in Σ is a prefix too (lower-cased as σ, not as a word-final ς).
    assert_eq!(found(&app, "ΟΔΥΣ").await, ["odysseus"]);
}

#[tokio::test]
async fn q_of_one_to_thirty_characters_after_trimming_is_accepted_and_longer_is_refused() {
    let app = spawn_app().await;
    let thirty = "abcdefghijklmnopqrstuvwxyz0123";
    assert_eq!(thirty.len(), 30);
    app.register(thirty).await;
    register_named(&app, "wide", &"é".repeat(31)).await;

    assert_eq!(found(&app, "a").await, [thirty]);
    assert_eq!(found(&app, thirty).await, [thirty]);
    assert_eq!(found(&app, &format!("  {thirty}\t")).await, [thirty]);
    // Characters are counted, not bytes.
    assert_eq!(found(&app, &"É".repeat(30)).await, ["wide"]);
    for (text, why) in [
        (format!("{thirty}4"), "31 characters"),
        ("é".repeat(31), "31 two-byte characters"),
    ] {
        let body = search(&app, &q(&text), None)
            .await
            .assert_problem(400, "invalid_parameter");
        assert!(
            body["detail"].as_str().unwrap().contains("1 to 30"),
            "{why}: {body}"
        );
    }
}

#[tokio::test]
async fn a_missing_empty_or_blank_q_is_refused() {
    let app = spawn_app().await;
    app.register("susan").await;
    let required = "q is required";
    let length = "q must be 1 to 30 characters after trimming white space";
    let control = "q must not contain control characters";
    for (query, why, detail) in [
        ("", "no q", required),
        ("limit=5", "no q, another parameter", required),
        ("q=", "empty", length),
        ("q=%20%20%09", "only white space", length),
        ("q=su%00", "a control character (NUL)", control),
        ("q=su%0Asan", "a line break inside", control),
    ] {
        let response = app.get(&format!("/users?{query}"), None).await;
        let body = response.assert_problem(400, "invalid_parameter");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{why}: {body}"
        );
    }
    // `q` given twice is refused like any repeated parameter.
    app.get("/users?q=su&q=sa", None)
        .await
        .assert_problem(400, "invalid_parameter");
}

#[tokio::test]
async fn the_exact_username_match_comes_first_then_the_others_by_username() {
    let app = spawn_app().await;
    app.register("bobby").await;
    register_named(&app, "zed", "Bob").await;
    app.register("bob_z").await;
    register_named(&app, "aaron", "Bobby Tables").await;
    app.register("Bob").await;

    // `bob_z` before `bobby`: `_` sorts before the letters. `zed` is called Bob, but only a
    // username match is "exact".
    let expected = ["Bob", "aaron", "bob_z", "bobby", "zed"];
    assert_eq!(found(&app, "bob").await, expected);
    assert_eq!(found(&app, "BOB").await, expected);
    // Without an exact match, simply by username.
    assert_eq!(
        found(&app, "bo").await,
        ["aaron", "Bob", "bob_z", "bobby", "zed"]
    );
}

#[tokio::test]
async fn a_user_found_by_username_and_by_display_name_appears_once() {
    let app = spawn_app().await;
    register_named(&app, "annie", "Annie A").await;
    register_named(&app, "ann", "Ann").await;
    assert_eq!(found(&app, "ann").await, ["ann", "annie"]);
    // Page by page too.
    let first = search(&app, "q=ann&limit=1", None).await.expect(200);
    assert_eq!(names(&first), ["ann"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = search(&app, &format!("q=ann&limit=1&cursor={cursor}"), None)
        .await
        .expect(200);
    assert_eq!(names(&second), ["annie"]);
    assert_eq!(second["next_cursor"], Value::Null);
}

/// Every page of a search for `text`, `limit` at a time, following `next_cursor`.
async fn all_pages(app: &TestApp, text: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = format!("{}&limit={limit}", q(text));
    loop {
        let page = search(app, &query, None).await.expect(200);
        let page_names = names(&page);
        assert!(page_names.len() <= limit, "{page}");
        assert_eq!(page["prev_cursor"], Value::Null);
        pages.push(page_names);
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("{}&limit={limit}&cursor={cursor}", q(text)),
            None => return pages,
        }
        assert!(pages.len() < 100, "the pages never end");
    }
}

#[tokio::test]
async fn paging_through_a_search_gives_every_match_once_in_order() {
    let app = spawn_app().await;
    let mut expected = vec!["pag".to_owned()];
    app.register("pag").await;
    // Found by display name, with a username before the prefix's.
    register_named(&app, "abc", "pagan").await;
    expected.push("abc".to_owned());
    for i in 0..12 {
        let name = format!("pag{i:02}");
        app.register(&name).await;
        expected.push(name);
    }
    for i in 0..4 {
        let name = format!("zed{i}");
        register_named(&app, &name, &format!("Pager {i}")).await;
        expected.push(name);
    }
    // Neither.
    register_named(&app, "paa", "Pa").await;
    register_named(&app, "pah", "Other").await;

    for limit in [1, 2, 3, 5, 18, 100] {
        let pages = all_pages(&app, "pag", limit).await;
        let all: Vec<String> = pages.iter().flatten().cloned().collect();
        assert_eq!(all, expected, "limit {limit}: {pages:?}");
        // Full pages but the last, and the last one not empty unless everything fits in one.
        let (last, full) = pages.split_last().unwrap();
        assert!(full.iter().all(|page| page.len() == limit), "{pages:?}");
        assert!(!last.is_empty() || pages.len() == 1, "{pages:?}");
    }

    // The Link header leads to the next page with the same search.
    let first = search(&app, "q=PAG&limit=3", None).await;
    let link = first.header("link").unwrap();
    let next = first.json()["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        link,
        format!("</users?q=PAG&limit=3&cursor={next}>; rel=\"next\"")
    );
    let target = link.trim_start_matches('<').split('>').next().unwrap();
    let second = app.get(target, None).await.expect(200);
    assert_eq!(names(&second), ["pag01", "pag02", "pag03"]);
    // q is encoded in the link.
    register_named(&app, "amp", "a&b c").await;
    register_named(&app, "amp2", "a&b d").await;
    let amp = search(&app, &format!("{}&limit=1", q("a&b")), None).await;
    assert!(
        amp.header("link")
            .unwrap()
            .starts_with("</users?q=a%26b&limit=1&cursor="),
        "{:?}",
        amp.header("link")
    );
}

#[tokio::test]
async fn a_cursor_is_good_only_for_its_own_search() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for name in ["abc", "abd", "abcd", "abce"] {
        app.register(name).await;
    }
    let first = search(&app, "q=ab&limit=1", None).await.expect(200);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // The same search in another letter case, or with white space around, takes it.
    for same in ["AB", "aB", " ab "] {
        let page = search(&app, &format!("{}&limit=1&cursor={cursor}", q(same)), None)
            .await
            .expect(200);
        assert_eq!(names(&page), ["abcd"], "{same}");
    }
    for other in ["abc", "a", "ba"] {
        search(&app, &format!("{}&limit=1&cursor={cursor}", q(other)), None)
            .await
            .assert_problem(400, "invalid_cursor");
    }
    // Cursors of other lists are refused, and the other way round.
    app.register("bob").await;
    app.follow(&alice, "bob").await.expect(201);
    let carol = app.register("carol").await;
    app.follow(&carol, "bob").await.expect(201);
    let followers = app
        .get("/users/bob/followers?limit=1", None)
        .await
        .expect(200);
    let followers_cursor = followers["next_cursor"].as_str().unwrap();
    search(&app, &format!("q=ab&cursor={followers_cursor}"), None)
        .await
        .assert_problem(400, "invalid_cursor");
    app.get(&format!("/users/bob/followers?cursor={cursor}"), None)
        .await
        .assert_problem(400, "invalid_cursor");
    search(&app, "q=ab&cursor=garbage", None)
        .await
        .assert_problem(400, "invalid_cursor");
}

#[tokio::test]
async fn newer_than_is_refused_by_search() {
    let app = spawn_app().await;
    for name in ["abc", "abd"] {
        app.register(name).await;
    }
    let first = search(&app, "q=ab&limit=1", None).await.expect(200);
    let cursor = first["next_cursor"].as_str().unwrap();
    for query in [
        format!("q=ab&newer_than={cursor}"),
        format!("q=ab&newer_than={cursor}&cursor={cursor}"),
        "q=ab&newer_than=x".to_owned(),
    ] {
        let body = search(&app, &query, None)
            .await
            .assert_problem(400, "invalid_parameter");
        assert!(
            body["detail"].as_str().unwrap().contains("newer_than"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn suspended_accounts_never_appear_in_search() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    app.register("sus").await;
    app.register("susan").await;
    app.register("susie").await;
    app.register("suz").await;
    register_named(&app, "zed", "Susanne").await;
    assert_eq!(found(&app, "sus").await, ["sus", "susan", "susie", "zed"]);

    // The exact match, one found by username and one by display name.
    for name in ["sus", "susan", "zed"] {
        app.post(
            &format!("/admin/users/{name}/suspension"),
            Some(&admin.token),
            &json!({}),
        )
        .await
        .expect(204);
    }
    assert_eq!(found(&app, "sus").await, ["susie"]);
    assert!(found(&app, "susan").await.is_empty());
    // Nor on a later page: one user a page, the suspended ones lie between the visible ones.
    assert_eq!(all_pages(&app, "su", 1).await, [vec!["susie"], vec!["suz"]]);

    app.delete("/admin/users/susan/suspension", Some(&admin.token))
        .await
        .expect(204);
    assert_eq!(found(&app, "sus").await, ["susan", "susie"]);
}

#[tokio::test]
async fn cards_carry_the_viewer_state_for_a_signed_in_caller_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bobby").await;
    app.register("bobcat").await;
    let carol = app.register("carol").await;
    app.follow(&alice, "bobby").await.expect(201);
    app.request(Method::POST, "/users/carol/block", Some(&bob.token), None)
        .await
        .expect(201);

    let anonymous = search(&app, "q=bob", None).await.expect(200);
    for card in anonymous["items"].as_array().unwrap() {
        assert_eq!(card["viewer"], Value::Null, "{card}");
    }
    let seen_by_alice = search(&app, "q=bob", Some(&alice)).await.expect(200);
    assert_eq!(names(&seen_by_alice), ["bobby", "bobcat"]);
    assert_eq!(seen_by_alice["items"][0]["viewer"]["following"], true);
    assert_eq!(seen_by_alice["items"][1]["viewer"]["following"], false);
    assert_eq!(seen_by_alice["items"][1]["viewer"]["blocked_by"], false);
    // A user who blocks the caller still shows, saying so, as on their profile.
    let seen_by_carol = search(&app, "q=bob", Some(&carol)).await.expect(200);
    assert_eq!(names(&seen_by_carol), ["bobby", "bobcat"]);
    assert_eq!(seen_by_carol["items"][0]["viewer"]["blocked_by"], true);
    assert_eq!(seen_by_carol["items"][0]["viewer"]["following"], false);
    assert_eq!(seen_by_carol["items"][1]["viewer"]["blocked_by"], false);
    // An invalid token is a 401 here too.
    app.get("/users?q=bob", Some("not-a-token"))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn like_wildcards_and_backslashes_are_literal_characters() {
    let app = spawn_app().await;
    register_named(&app, "percent", "100% real").await;
    register_named(&app, "hundred", "100 and more").await;
    register_named(&app, "one", "1x0").await;
    app.register("a_b").await;
    app.register("axb").await;
    app.register("_under").await;
    register_named(&app, "slash", "back\\slash").await;
    register_named(&app, "plain", "backslash").await;
    register_named(&app, "quote", "it's").await;

    assert_eq!(found(&app, "100%").await, ["percent"]);
    assert_eq!(found(&app, "100").await, ["hundred", "percent"]);
    assert!(found(&app, "%").await.is_empty());
    assert!(found(&app, "1%0").await.is_empty());
    assert_eq!(found(&app, "a_").await, ["a_b"]);
    assert_eq!(found(&app, "_").await, ["_under"]);
    assert!(found(&app, "1_0").await.is_empty());
    assert_eq!(found(&app, "back\\").await, ["slash"]);
    assert_eq!(found(&app, "back\\s").await, ["slash"]);
    assert_eq!(found(&app, "backs").await, ["plain"]);
    assert_eq!(found(&app, "it'").await, ["quote"]);
    assert!(found(&app, "it''").await.is_empty());
}

#[tokio::test]
async fn a_display_name_change_changes_what_search_finds() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    assert!(found(&app, "qu").await.is_empty());
    let set = async |name: Value| {
        app.patch(
            "/users/me",
            Some(&zed.token),
            &json!({"display_name": name}),
        )
        .await
    };
    set(json!("Quentin")).await.expect(200);
    assert_eq!(found(&app, "qu").await, ["zed"]);
    set(json!("Xavier")).await.expect(200);
    assert!(found(&app, "qu").await.is_empty());
    assert_eq!(found(&app, "XA").await, ["zed"]);
    // Other fields leave it as it is.
    app.patch("/users/me", Some(&zed.token), &json!({"bio": "hi"}))
        .await
        .expect(200);
    assert_eq!(found(&app, "xa").await, ["zed"]);
    set(Value::Null).await.expect(200);
    assert!(found(&app, "xa").await.is_empty());
    assert_eq!(found(&app, "ze").await, ["zed"]);
}

/// Migrations 12, 13 and 16 fill in the search key and its prefixes of accounts that had a display
/// name before them, with the fold the API uses for new ones.
#[tokio::test]
async fn the_migrations_fill_in_the_display_name_keys_of_existing_accounts() {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let names = [
        "ÉLODIE",
        "ΟΔΥΣΣΕΑΣ",
        "İstanbul",
        "Mary Sue",
        "Νίκος",
        "  Bob",
    ];
    for (i, name) in names.iter().enumerate() {
        register_named(&app, &format!("user{i}"), name).await;
    }
    app.register("nameless").await;
    let applied = Migrator::get_applied_migrations(&app.db)
        .await
        .unwrap()
        .len();
    assert_eq!(applied, Migrator::migrations().len(), "all applied");
    // Back to before migration 12, and up again.
    let twelve = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261202_000012_user_search")
        .unwrap();
    let steps = u32::try_from(applied - twelve).unwrap();
    Migrator::down(&app.db, Some(steps)).await.unwrap();
    let key_column = app
        .db
        .query_all_raw(Statement::from_string(
            backend(),
            "SELECT display_name_key FROM users",
        ))
        .await;
    assert!(key_column.is_err(), "migration 12 was undone");
    Migrator::up(&app.db, None).await.unwrap();
    for (i, name) in names.iter().enumerate() {
        let key: Option<String> = app
            .db
            .query_one_raw(Statement::from_string(
                backend(),
                format!("SELECT display_name_key FROM users WHERE username_key = 'user{i}'"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(key.as_deref(), Some(api::domain::search_key(name).as_str()));
    }
    assert_eq!(found(&app, "İST").await, ["user2"]);
    assert_eq!(found(&app, "οδυσ").await, ["user1"]);
    assert_eq!(found(&app, "nameless").await, ["nameless"]);
    // Migration 16 wrote each account's display-name prefixes, as the API writes them.
    let mut expected: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            let key = api::domain::search_key(name);
            api::domain::search_prefixes(&key)
                .map(|prefix| (prefix.to_owned(), format!("user{i}")))
                .collect::<Vec<_>>()
        })
        .collect();
    expected.sort();
    assert_eq!(prefix_rows(&app).await, expected);
}

/// Every row of `display_name_prefixes`, as (prefix, username key), in order.
async fn prefix_rows(app: &TestApp) -> Vec<(String, String)> {
    use entity::display_name_prefix;
    use sea_orm::{EntityTrait, QueryOrder};
    let mut rows: Vec<(String, String)> = display_name_prefix::Entity::find()
        .order_by_asc(display_name_prefix::Column::UserId)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.prefix, row.username_key))
        .collect();
    rows.sort();
    rows
}

/// The rows search finds display names by follow the display name, in the transaction that sets
/// it, and go with the account (the cascade, on SQLite too).
#[tokio::test]
async fn the_display_name_rows_follow_the_name_and_go_with_the_account() {
    let app = spawn_app().await;
    let rows_of = |name: &str, username: &str| -> Vec<(String, String)> {
        let key = api::domain::search_key(name);
        api::domain::search_prefixes(&key)
            .map(|prefix| (prefix.to_owned(), username.to_owned()))
            .collect()
    };
    let zed = register_named(&app, "Zed", "Al Bé").await;
    app.register("nameless").await;
    assert_eq!(prefix_rows(&app).await, rows_of("Al Bé", "zed"));
    assert_eq!(
        prefix_rows(&app).await.len(),
        4,
        "a, al, al b, al bé: none ends in a space"
    );
    app.patch(
        "/users/me",
        Some(&zed.token),
        &json!({"display_name": "Xi"}),
    )
    .await
    .expect(200);
    assert_eq!(prefix_rows(&app).await, rows_of("Xi", "zed"));
    app.patch("/users/me", Some(&zed.token), &json!({"bio": "hello"}))
        .await
        .expect(200);
    assert_eq!(prefix_rows(&app).await, rows_of("Xi", "zed"));
    app.patch(
        "/users/me",
        Some(&zed.token),
        &json!({"display_name": null}),
    )
    .await
    .expect(200);
    assert!(prefix_rows(&app).await.is_empty());
    // A long name is stored under its first thirty characters' prefixes only.
    let long = "A".repeat(50);
    app.patch(
        "/users/me",
        Some(&zed.token),
        &json!({"display_name": long}),
    )
    .await
    .expect(200);
    assert_eq!(prefix_rows(&app).await.len(), 30);
    assert_eq!(found(&app, &"a".repeat(30)).await, ["Zed"]);
    app.delete("/users/me", Some(&zed.token)).await.expect(204);
    assert!(prefix_rows(&app).await.is_empty());
}

/// A text whose key lower-casing made longer than the stored prefixes (30 characters) is looked up
/// by its first thirty and checked against the whole key: both sides of that length, by results.
#[tokio::test]
async fn a_text_longer_than_the_stored_prefixes_once_lower_cased_still_matches_exactly() {
    let app = spawn_app().await;
    // `İ` lower-cases to two characters: twenty of them make a key of forty.
    register_named(&app, "dotted", &"İ".repeat(20)).await;
    // The same first thirty characters of key, then `x`.
    register_named(&app, "near", &format!("{}x", "İ".repeat(15))).await;
    register_named(&app, "other", "Ix").await;
    // A key of thirty characters: a stored prefix, both names start with it.
    assert_eq!(found(&app, &"İ".repeat(15)).await, ["dotted", "near"]);
    // Keys of thirty-one and thirty-two: looked up by the same thirty, told apart by the rest.
    assert_eq!(found(&app, &format!("{}X", "İ".repeat(15))).await, ["near"]);
    assert_eq!(found(&app, &"İ".repeat(16)).await, ["dotted"]);
    assert_eq!(found(&app, &"İ".repeat(30)).await, Vec::<String>::new());
    // Paging past the cursor keeps the check.
    assert_eq!(
        all_pages(&app, &"İ".repeat(15), 1).await,
        [vec!["dotted"], vec!["near"]]
    );
    assert_eq!(all_pages(&app, &"İ".repeat(16), 1).await, [vec!["dotted"]]);
    // A key whose thirtieth character is a space: no stored prefix ends in one, so the lookup
    // is by the first twenty-nine.
    register_named(&app, "spaced", &format!("{}a b", "İ".repeat(14))).await;
    register_named(&app, "spaced2", &format!("{}a c", "İ".repeat(14))).await;
    assert_eq!(
        found(&app, &format!("{}a b", "İ".repeat(14))).await,
        ["spaced"]
    );
    assert_eq!(
        found(&app, &format!("{}a ", "İ".repeat(14))).await,
        ["spaced", "spaced2"]
    );
}

/// A prefix is an index range only where the key columns compare by code point: under a
/// language's collation `a_b` sorts between `ab` and `ac`, and would be found by `ab`.
#[tokio::test]
async fn the_search_keys_compare_by_code_point_on_every_backend() {
    let app = spawn_app().await;
    let sql = match backend() {
        DbBackend::Postgres => {
            "SELECT column_name, collation_name FROM information_schema.columns \
             WHERE table_name = 'users' AND column_name IN ('username_key', 'display_name_key') \
             ORDER BY column_name"
        }
        DbBackend::MySql => {
            "SELECT column_name, collation_name FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = 'users' \
             AND column_name IN ('username_key', 'display_name_key') ORDER BY column_name"
        }
        // SQLite compares text with BINARY unless a column says otherwise.
        _ => {
            "SELECT name, 'BINARY' FROM pragma_table_info('users') \
             WHERE name IN ('username_key', 'display_name_key') \
             AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'users' AND sql LIKE '%COLLATE%') \
             ORDER BY name"
        }
    };
    let rows = app
        .db
        .query_all_raw(Statement::from_string(backend(), sql))
        .await
        .unwrap();
    let collations: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    let binary = match backend() {
        DbBackend::Postgres => "C",
        DbBackend::MySql => "utf8mb4_bin",
        _ => "BINARY",
    };
    assert_eq!(
        collations,
        [
            ("display_name_key".to_owned(), Some(binary.to_owned())),
            ("username_key".to_owned(), Some(binary.to_owned())),
        ]
    );
    // And by behaviour: code point order, whatever the database's default.
    app.register("a_b").await;
    app.register("abz").await;
    register_named(&app, "zzz", "a~b").await;
    assert_eq!(found(&app, "ab").await, ["abz"]);
    assert_eq!(found(&app, "a").await, ["a_b", "abz", "zzz"]);
}
