//! The outbox worker and its one transport today, mail over SMTP (`lettre`).
//!
//! The worker runs in every process that has mail on (`SMTP_URL`). It claims due outbox rows
//! ([`outbox::claim`]), hands each to the sender of its kind, and deletes it once done or moves
//! it back by a growing back-off when the sender failed, so a mail server that is down delays no
//! request and loses no mail. It wakes when a request of this process committed a row
//! ([`Outbox::wake`]), when a retry falls due, and every `outbox_poll` for rows written by other
//! processes.
//!
//! A message's body (which carries a token) and its payload are never logged: a failure is logged
//! with the row's id, kind and attempt.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::services::email::{self, MailPayload, Mailing, Purpose};
use crate::services::outbox;
use crate::settings::Settings;

/// Rows claimed at once.
const CLAIM_BATCH: u64 = 20;

/// Longest one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The kinds of outbox rows this worker sends.
const KINDS: &[&str] = &[email::MAIL, email::PASSWORD_FORGOT];

/// The handle requests use to wake the worker after a commit that wrote to the outbox.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// Tells the worker that a row is due now (a no-op when mail is off: no worker listens).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Writes and sends the mail.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: Option<String>,
    mailing: Mailing,
}

impl Mailer {
    /// The mailer of `settings`, or `None` when mail is off (no `SMTP_URL`). The URL is never
    /// quoted back in an error: it may carry a password.
    pub fn new(settings: &Settings, mailing: Mailing) -> Result<Option<Self>, String> {
        let Some(url) = &settings.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| "SMTP_URL: not a mail server URL such as smtp://127.0.0.1:2525 or smtps://user:password@host".to_owned())?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = settings
            .mail_from
            .parse()
            .map_err(|_| "MAIL_FROM: not a mail address".to_owned())?;
        Ok(Some(Mailer {
            transport,
            from,
            public_url: settings.public_url.clone(),
            mailing,
        }))
    }

    /// The message that `payload` asks for.
    fn message(&self, payload: &MailPayload) -> Result<Message, String> {
        let token = self.mailing.token(&payload.nonce);
        let (subject, path, intro, lifetime) = match payload.purpose {
            Purpose::Verify => (
                "Confirm your email address",
                "verify-email",
                "to confirm that this address is yours",
                "24 hours",
            ),
            Purpose::Reset => (
                "Reset your password",
                "reset",
                "to choose a new password",
                "30 minutes",
            ),
        };
        let mut body = format!(
            "Hello {},\n\nUse this code {intro}:\n\n{token}\n\n",
            payload.username
        );
        if let Some(url) = &self.public_url {
            body.push_str(&format!(
                "or open this link:\n{url}/{path}?token={token}\n\n"
            ));
        }
        body.push_str(&format!(
            "The code works once, within {lifetime}. If you did not ask for it, ignore this mail.\n"
        ));
        let to: Mailbox = payload
            .to
            .parse()
            .map_err(|_| "the recipient is not a mail address".to_owned())?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends the mail of a [`email::MAIL`] row.
    async fn send(&self, payload: &str) -> Result<(), String> {
        let payload: MailPayload =
            serde_json::from_str(payload).map_err(|e| format!("unreadable payload: {e}"))?;
        let message = self.message(&payload)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the mail server did not take it: {e}"))
    }
}

/// Starts the worker of this process, when mail is on; says once that mail is off otherwise.
pub fn spawn_worker(
    db: DatabaseConnection,
    mailer: Option<Mailer>,
    outbox: &Outbox,
    mailing: Mailing,
    retry_base: Duration,
    poll: Duration,
) {
    let Some(mailer) = mailer else {
        tracing::info!(
            "mail is off (SMTP_URL is not set): no verification or reset mail is sent, and \
             POST /auth/password/forgot answers 202 all the same"
        );
        return;
    };
    let wake = outbox.wake.clone();
    tokio::spawn(async move {
        loop {
            let rows = match outbox::claim(&db, KINDS, CLAIM_BATCH).await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "could not claim outbox rows; trying again");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            if rows.is_empty() {
                let wait = match outbox::next_due(&db, KINDS).await {
                    Ok(Some(at)) => {
                        let ms = (at - crate::time::now_millis()).max(0);
                        Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(poll)
                    }
                    _ => poll,
                };
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            for row in rows {
                let outcome = match row.kind.as_str() {
                    email::MAIL => mailer.send(&row.payload).await,
                    email::PASSWORD_FORGOT => email::process_forgot(&db, &mailing, &row.payload)
                        .await
                        .map_err(|e| e.to_string()),
                    _ => Ok(()),
                };
                settle(&db, &row, outcome, retry_base).await;
            }
        }
    });
}

/// Deletes a row that is done, or moves it back for another attempt; a row that failed
/// [`outbox::MAX_ATTEMPTS`] times is given up.
async fn settle(
    db: &DatabaseConnection,
    row: &entity::outbox::Model,
    outcome: Result<(), String>,
    retry_base: Duration,
) {
    let done = match &outcome {
        Ok(()) => {
            crate::metrics::count_outbox(&row.kind, "sent");
            outbox::finish(db, row.id).await
        }
        Err(error) if row.attempts >= outbox::MAX_ATTEMPTS => {
            tracing::error!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, %error, "giving up on an outbox row");
            crate::metrics::count_outbox(&row.kind, "given_up");
            outbox::finish(db, row.id).await
        }
        Err(error) => {
            tracing::warn!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, %error, "an outbox row failed; it will be tried again");
            crate::metrics::count_outbox(&row.kind, "retried");
            outbox::retry_later(db, row.id, row.attempts, retry_base).await
        }
    };
    if let Err(err) = done {
        // The lease runs out and the row is claimed again.
        tracing::warn!(outbox_id = row.id, error = %err, "could not settle an outbox row");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_carries_its_token_and_a_link_when_there_is_a_public_url() {
        let mailing = Mailing::new(b"a secret of at least thirty-two bytes!", true);
        let settings = Settings {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            public_url: Some("https://app.example".into()),
            ..Settings::default()
        };
        let mailer = Mailer::new(&settings, mailing.clone()).unwrap().unwrap();
        let payload = MailPayload {
            to: "susan@example.com".into(),
            username: "susan".into(),
            purpose: Purpose::Reset,
            nonce: "nonce".into(),
        };
        let text = String::from_utf8(mailer.message(&payload).unwrap().formatted()).unwrap();
        let token = mailing.token("nonce");
        assert!(text.contains(&format!("\r\n{token}\r\n")), "{text}");
        assert!(text.contains("Subject: Reset your password"), "{text}");
        assert!(text.contains("To: susan@example.com"), "{text}");
    }
}
