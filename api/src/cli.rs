//! The server binary's commands besides serving: `social operator grant NAME`,
//! `social operator revoke NAME` and `social operator list`, over the database that
//! `DATABASE_URL` names (read like the server reads it, `.env` included); and `social push-key`,
//! which prints a new `VAPID_PRIVATE_KEY` (and its public key) without touching anything.

use std::process::ExitCode;

use crate::error::ApiError;
use crate::services::operators;
use crate::settings::Settings;

/// How to call the commands.
pub const USAGE: &str =
    "usage: social [operator grant NAME | operator revoke NAME | operator list | push-key]";

/// Runs the command `args` (the words after the program's name), printing its one-line answer
/// (or the list) on stdout and a failure in one line on stderr: exit 1 when it failed (an unknown
/// user, a database that does not answer), 2 for words that are not a command.
pub async fn run(args: &[String]) -> ExitCode {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if words == ["push-key"] {
        return match crate::push::VapidKey::generate() {
            Ok(key) => {
                println!("VAPID_PRIVATE_KEY={}", key.to_base64());
                println!("# public key: {}", key.public_key());
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err),
        };
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => return fail(&err.to_string()),
    };
    let db = match crate::db::connect_and_migrate(&settings).await {
        Ok(db) => db,
        Err(err) => return fail(&format!("cannot open the database: {err}")),
    };
    let answer = match words.as_slice() {
        // Through `db::write`, as the server's writes: a running server writes to the same
        // database, and a conflict with it (SQLite's busy codes under load) is retried, not
        // printed as this command's failure.
        ["operator", "grant", name] => {
            crate::db::write(&db, async |txn| operators::grant(txn, name).await)
                .await
                .map(|()| format!("{name} is an operator"))
        }
        ["operator", "revoke", name] => {
            crate::db::write(&db, async |txn| operators::revoke(txn, name).await)
                .await
                .map(|()| format!("{name} is no longer an operator"))
        }
        ["operator", "list"] => operators::list(&db).await.map(|names| names.join("\n")),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match answer {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(ApiError::UserNotFound(name)) => fail(&format!("no account is called '{name}'")),
        Err(err) => fail(&err.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
