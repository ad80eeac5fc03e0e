//! The outbox worker: one loop per process that sends what the outbox holds, whatever its kind
//! (mail over SMTP, [`crate::mail`]; Web Push, [`crate::push`]).
//!
//! It claims due rows ([`outbox::claim`]), hands each to the sender of its kind, at most
//! [`IN_FLIGHT`] at once (a push service or mail server that hangs holds a slot for its timeout,
//! never a request), and settles each: done rows go, failed ones move back by a growing back-off
//! (at least what a push service's `Retry-After` asked), and a row that has failed for too long
//! is given up: a mail after [`outbox::MAX_ATTEMPTS`] attempts, a push [`PUSH_DEADLINE_MS`] after
//! it was written. It wakes when a request of this process committed a row ([`Outbox::wake`]),
//! when a retry falls due, and every `outbox_poll` for rows written by other processes.
//!
//! A row's payload, and what it leads to (a mail's token, a push's endpoint and keys), is never
//! logged: a failure is logged with the row's id, kind, attempt and cause.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::mail::Mailer;
use crate::push::{Delivery, Pusher, Target};
use crate::services::email::{self, Mailing};
use crate::services::outbox;
use crate::services::push::{self, PUSH, PushJob};
use crate::time::now_millis;

/// Most sends in flight at once in this process, and so the most rows it holds claimed: it
/// claims only as many as it has free slots, and claims again as soon as one frees, so that one
/// push service that hangs until its timeout holds one slot, not everyone's pushes.
pub const IN_FLIGHT: usize = 16;

/// How long a push is tried before it is given up: 24 hours from its notification.
pub const PUSH_DEADLINE_MS: i64 = 24 * 3_600_000;

/// The handle requests use to wake the worker after a commit that wrote to the outbox.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// Tells the worker that a row is due now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// What the worker sends with.
pub struct Worker {
    pub db: DatabaseConnection,
    /// The mail sender; `None` when mail is off (mail rows are then not claimed).
    pub mailer: Option<Mailer>,
    pub mailing: Mailing,
    pub pusher: Pusher,
    /// The first wait before a failed row is tried again; each later one doubles.
    pub retry_base: Duration,
    /// How often to look for rows that no wake-up announced.
    pub poll: Duration,
}

/// What became of one row.
enum Outcome {
    /// Sent, or nothing left to send: the row goes.
    Done,
    /// Will never succeed: the row goes (counted as dropped, for `cause`).
    Dropped { cause: &'static str },
    /// Failed for now: the row is tried again, not before `after` when given.
    Retry {
        after: Option<Duration>,
        cause: String,
    },
}

impl Worker {
    /// The kinds this worker takes.
    fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = vec![PUSH];
        if self.mailer.is_some() {
            kinds.extend([email::MAIL, email::PASSWORD_FORGOT]);
        }
        kinds
    }

    /// Starts the worker of this process; says once that mail is off when it is.
    pub fn spawn(self, outbox: &Outbox) {
        if self.mailer.is_none() {
            tracing::info!(
                "mail is off (SMTP_URL is not set): no verification or reset mail is sent, and \
                 POST /auth/password/forgot answers 202 all the same"
            );
        }
        let wake = outbox.wake.clone();
        tokio::spawn(Arc::new(self).run(wake));
    }

    async fn run(self: Arc<Self>, wake: Arc<Notify>) {
        let kinds = self.kinds();
        let mut depth_at = 0_i64;
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        loop {
            // Wait for a free slot, then claim as many rows as there are free slots.
            let Ok(first) = slots.clone().acquire_owned().await else {
                return;
            };
            let free = 1 + slots.available_permits();
            let rows = match outbox::claim(&self.db, &kinds, free as u64).await {
                Ok(rows) => rows,
                Err(err) => {
                    drop(first);
                    tracing::warn!(error = %err, "could not claim outbox rows; trying again");
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
            };
            let now = now_millis();
            if rows.is_empty() || now - depth_at >= millis(self.poll) {
                depth_at = now;
                match outbox::depth(&self.db).await {
                    Ok(depth) => crate::metrics::set_outbox_depth(&depth),
                    Err(err) => tracing::debug!(error = %err, "could not count the outbox"),
                }
            }
            if rows.is_empty() {
                drop(first);
                let wait = match outbox::next_due(&self.db, &kinds).await {
                    Ok(Some(at)) => {
                        let ms = (at - now_millis()).max(0);
                        Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(self.poll)
                    }
                    _ => self.poll,
                };
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let mut first = Some(first);
            for row in rows {
                // The claim took at most the free slots, and only this loop takes them.
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                };
                let this = self.clone();
                tokio::spawn(async move {
                    let outcome = this.handle(&row).await;
                    this.settle(&row, outcome).await;
                    drop(slot);
                });
            }
        }
    }

    /// Sends one row by its kind.
    async fn handle(&self, row: &entity::outbox::Model) -> Outcome {
        let failed = |cause: String| Outcome::Retry { after: None, cause };
        match row.kind.as_str() {
            PUSH => self.push(row).await,
            email::MAIL => match &self.mailer {
                Some(mailer) => match mailer.send(&row.payload).await {
                    Ok(()) => Outcome::Done,
                    Err(cause) => failed(cause),
                },
                None => failed("mail is off".to_owned()),
            },
            email::PASSWORD_FORGOT => {
                match email::process_forgot(&self.db, &self.mailing, &row.payload).await {
                    Ok(()) => Outcome::Done,
                    Err(err) => failed(err.to_string()),
                }
            }
            _ => Outcome::Dropped {
                cause: "unknown_kind",
            },
        }
    }

    /// Sends one push: reads its subscription and notification, encrypts, POSTs, and reads the
    /// push service's answer.
    async fn push(&self, row: &entity::outbox::Model) -> Outcome {
        let Ok(job) = serde_json::from_str::<PushJob>(&row.payload) else {
            return Outcome::Dropped {
                cause: "unreadable",
            };
        };
        let (subscription, payload) = match push::message(&self.db, &job).await {
            Ok(Some(message)) => message,
            // The subscription, the notification or its account is gone: nothing to push.
            Ok(None) => return Outcome::Done,
            Err(err) => {
                return Outcome::Retry {
                    after: None,
                    cause: err.to_string(),
                };
            }
        };
        let target = Target {
            endpoint: &subscription.endpoint,
            p256dh: &subscription.p256dh,
            auth: &subscription.auth,
        };
        match self.pusher.send(&target, &payload).await {
            Delivery::Delivered => {
                crate::metrics::count_push("sent");
                Outcome::Done
            }
            Delivery::Gone => match push::remove(&self.db, subscription.id).await {
                Ok(()) => {
                    crate::metrics::count_push("subscription_removed");
                    Outcome::Done
                }
                Err(err) => Outcome::Retry {
                    after: None,
                    cause: err.to_string(),
                },
            },
            Delivery::Retry { after, cause } => {
                crate::metrics::count_push_failed(cause);
                Outcome::Retry {
                    after,
                    cause: cause.to_owned(),
                }
            }
            Delivery::Dropped { cause } => {
                crate::metrics::count_push_failed(cause);
                Outcome::Dropped { cause }
            }
        }
    }

    /// Deletes a row that is done or dropped, or moves it back for another attempt; a row that
    /// failed for too long is given up.
    async fn settle(&self, row: &entity::outbox::Model, outcome: Outcome) {
        let is_push = row.kind == PUSH;
        let done = match outcome {
            Outcome::Done => {
                crate::metrics::count_outbox(&row.kind, "sent");
                outbox::finish(&self.db, row.id).await
            }
            Outcome::Dropped { cause } => {
                tracing::warn!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, cause, "dropping an outbox row that cannot be sent");
                crate::metrics::count_outbox(&row.kind, "dropped");
                outbox::finish(&self.db, row.id).await
            }
            Outcome::Retry { after, cause } => {
                let wait =
                    outbox::backoff_ms(self.retry_base, row.attempts).max(after.map_or(0, millis));
                let next = now_millis().saturating_add(wait);
                let give_up = if is_push {
                    next > row.created_at + PUSH_DEADLINE_MS
                } else {
                    row.attempts >= outbox::MAX_ATTEMPTS
                };
                if give_up {
                    tracing::error!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, error = %cause, "giving up on an outbox row");
                    crate::metrics::count_outbox(&row.kind, "given_up");
                    outbox::finish(&self.db, row.id).await
                } else {
                    tracing::warn!(outbox_id = row.id, kind = %row.kind, attempts = row.attempts, error = %cause, "an outbox row failed; it will be tried again");
                    crate::metrics::count_outbox(&row.kind, "retried");
                    if is_push {
                        crate::metrics::count_push("retried");
                    }
                    outbox::retry_at(&self.db, row.id, next).await
                }
            }
        };
        if let Err(err) = done {
            // The lease runs out and the row is claimed again.
            tracing::warn!(outbox_id = row.id, error = %err, "could not settle an outbox row");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
