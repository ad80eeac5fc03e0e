//! The operator role belongs to an account, not to a name: granted and revoked by the server's own
//! command, or at start-up by `ADMIN_USERNAMES` to the accounts that exist then.

use std::process::Command;

use crate::helpers::{
    TEST_SECRET, TEST_VAPID_KEY, TestApp, TestUser, spawn_app, spawn_app_with, test_settings,
};

async fn may_operate(app: &TestApp, user: &TestUser) -> bool {
    let response = app.get("/admin/reports", Some(&user.token)).await;
    match response.status {
        200 => true,
        _ => {
            response.assert_problem(403, "forbidden");
            false
        }
    }
}

/// Runs `social operator ARGS` against `app`'s database: (exit code, stdout, stderr).
fn operator_command(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_social"))
        .arg("operator")
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("JWT_SECRET", TEST_SECRET)
        .env("VAPID_PRIVATE_KEY", TEST_VAPID_KEY)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_role_dies_with_its_account_and_a_new_account_of_that_name_is_no_operator() {
    let app = spawn_app().await;
    let operator = app.register_operator("admin").await;
    assert!(may_operate(&app, &operator).await);
    app.delete("/users/me", Some(&operator.token))
        .await
        .expect(204);
    let impostor = app.register("admin").await;
    assert!(!may_operate(&app, &impostor).await);
}

#[tokio::test]
async fn admin_usernames_grants_at_start_only_to_accounts_that_exist_then() {
    let settings = test_settings().await;
    let first = spawn_app_with(settings.clone()).await;
    let early = first.register("early").await;
    assert!(!may_operate(&first, &early).await);
    first.stop().await;

    let mut restarted = settings;
    restarted.admin_usernames = vec!["EARLY".to_owned(), "late".to_owned()];
    let app = spawn_app_with(restarted).await;
    assert!(may_operate(&app, &early).await, "an account that existed");
    let late = app.register("late").await;
    assert!(
        !may_operate(&app, &late).await,
        "a name registered after the start"
    );
}

#[tokio::test]
async fn the_operator_command_grants_revokes_and_lists_and_refuses_an_unknown_name() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    app.register("mary").await;
    assert!(!may_operate(&app, &susan).await);

    let (code, out, err) = operator_command(&app, &["grant", "Susan"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(may_operate(&app, &susan).await);
    // A repeat changes nothing and still succeeds.
    assert_eq!(operator_command(&app, &["grant", "susan"]).0, 0);
    let (code, out, _) = operator_command(&app, &["list"]);
    assert_eq!((code, out.as_str()), (0, "susan\n"));

    let (code, _, err) = operator_command(&app, &["grant", "nobody"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nobody"), "{err}");

    let (code, _, err) = operator_command(&app, &["revoke", "susan"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!may_operate(&app, &susan).await);
    assert_eq!(operator_command(&app, &["list"]).1, "");
    let (code, _, err) = operator_command(&app, &["promote", "susan"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("usage: "), "{err}");
}
