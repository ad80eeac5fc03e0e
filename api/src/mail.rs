//! Mail over SMTP (`lettre`): the transport of the outbox's mail rows, which the outbox worker
//! ([`crate::outbox_worker`]) claims while mail is on (`SMTP_URL`), so a mail server that is
//! down delays no request and loses no mail.
//!
//! A message's body (which carries a token) and its payload are never logged.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::services::email::{MailPayload, Mailing, Purpose};
use crate::settings::Settings;

/// Longest one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The wake-up handle of the outbox worker, which sends the mail ([`crate::outbox_worker`]).
pub use crate::outbox_worker::Outbox;

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
    pub(crate) async fn send(&self, payload: &str) -> Result<(), String> {
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
