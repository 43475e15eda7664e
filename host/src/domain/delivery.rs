//! Delivery of notifications (the outbox, issue 5): each order event the outbox holds goes to
//! each of the tenant's notification channels, each tenant notice to the host's mail relay, as one
//! *delivery*, with an id that stays the same on every
//! retry so receivers can de-duplicate. A failed attempt is retried with exponential backoff and
//! jitter until the attempts run out; then the delivery is *dead* and waits for an admin to
//! re-drive it. Pure: the caller supplies the clock and the randomness.

use super::machine::Event;
use super::money::Minor;
use super::order::{Order, OrderStatus};
use super::plan::Approvers;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt (`attempts > 0` means earlier attempts failed).
    Pending,
    /// The channel accepted it.
    Delivered,
    /// Out of attempts, or refused for good; an admin may re-drive it.
    Dead,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// What a delivery does with its outbox event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// A notification, through a notifier plugin.
    Notify,
    /// An approved order exported to the ERP through the tenant's connector (release).
    Export,
    /// An approved customer order booked against the customer's credit line in the ERP (R4).
    Credit,
    /// A [`TenantNotice`] e-mailed to the tenant's admins through the host's own mail relay.
    Mail,
}

impl DeliveryKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Notify => "notify",
            DeliveryKind::Export => "export",
            DeliveryKind::Credit => "credit",
            DeliveryKind::Mail => "mail",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DeliveryKind> {
        [DeliveryKind::Notify, DeliveryKind::Export, DeliveryKind::Credit, DeliveryKind::Mail]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One event of an order's life that people outside the host hear about, with the facts about
/// the order every channel needs. The change that caused it writes it to the outbox in its own
/// transaction; the dispatcher reads it back as this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// The order.
    pub order_id: String,
    /// Its requester.
    pub requester: String,
    /// Its status after the change.
    pub status: OrderStatus,
    /// Its total after the change.
    pub total_minor: Minor,
    /// Its currency.
    pub currency: String,
    /// Its cost center.
    #[serde(default)]
    pub cost_center: Option<String>,
    /// Its department.
    #[serde(default)]
    pub department: Option<String>,
    /// Its customer (R4).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Who made the change.
    pub actor: String,
    /// What happened.
    pub details: Event,
}

impl OutboxEvent {
    /// The event as it is about `order`, after the change `actor` made.
    pub fn new(order: &Order, actor: &str, details: Event) -> OutboxEvent {
        OutboxEvent {
            order_id: order.id.clone(),
            requester: order.requester.clone(),
            status: order.status,
            total_minor: order.total_minor(),
            currency: order.input.currency.to_string(),
            cost_center: order.input.cost_center.clone(),
            department: order.input.department.clone(),
            customer_id: order.input.customer_id.clone(),
            actor: actor.to_string(),
            details,
        }
    }

    /// Whether outsiders hear of this event at all.
    pub fn is_announced(event: &Event) -> bool {
        matches!(
            event,
            Event::OrderSubmitted { .. }
                | Event::StageOpened { .. }
                | Event::StageEscalated { .. }
                | Event::OrderApproved { .. }
                | Event::OrderRejected { .. }
                | Event::OrderHeld { .. }
                | Event::OrderReleased { .. }
                | Event::SubscriptionDeactivated
                | Event::SubscriptionReactivated
                | Event::PolicyDrift { .. }
        )
    }

    /// Who is asked to decide, for an event that opens or escalates a stage.
    pub fn deciders(&self) -> Option<&Approvers> {
        match &self.details {
            Event::StageOpened { approvers, .. } => Some(approvers),
            Event::StageEscalated { escalated_to, .. } => Some(escalated_to),
            _ => None,
        }
    }

    /// The stage it is about, if any.
    pub fn stage(&self) -> Option<&str> {
        match &self.details {
            Event::StageOpened { stage, .. }
            | Event::StageEscalated { stage, .. }
            | Event::StageApproved { stage }
            | Event::StageRejected { stage, .. }
            | Event::DecisionRecorded { stage, .. } => Some(stage),
            _ => None,
        }
    }

    /// The reason it carries, if any (a rejection's, a hold's, a revocation's, a drift's).
    pub fn reason(&self) -> Option<String> {
        match &self.details {
            Event::OrderRejected { reason, .. }
            | Event::OrderHeld { reason }
            | Event::StageRejected { reason, .. }
            | Event::ApprovalRevoked { reason }
            | Event::ApprovalReset { reason } => Some(reason.clone()),
            Event::PolicyDrift { difference } => Some(difference.summary()),
            _ => None,
        }
    }
}

/// The channel of [`DeliveryKind::Mail`]: the host's relay, a name no plugin can have.
pub const HOST_MAIL: &str = "host:mail";

/// Something a tenant's admins must hear of that is about no order: security notices. They go
/// through the outbox like order events (written with the audit entry that records them,
/// retried, listed, re-driven), but by e-mail through the operator's relay to the admins' own addresses,
/// not through the tenant's notifier plugins: those are configured by the very admins a notice
/// may warn about, and their contract carries an order in every notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum TenantNotice {
    /// A burst of failures locked a user's account for a while.
    AccountLocked {
        /// The user.
        user: String,
        /// Failures in a row that locked it.
        failures: u32,
        /// What was being tried.
        during: LockedDuring,
        /// Where the last attempt came from.
        address: String,
        /// When the lock ends (it ends by itself).
        until: String,
    },
}

/// What a locked account's failures were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockedDuring {
    /// Signing in with a password.
    SignIn,
    /// Confirming a critical action with the second factor (someone holds a session).
    StepUp,
}

impl TenantNotice {
    /// The event name the outbox and the delivery list show.
    pub fn event(&self) -> &'static str {
        match self {
            TenantNotice::AccountLocked { .. } => "account_locked",
        }
    }

    /// The e-mail's subject.
    pub fn subject(&self, tenant: &str) -> String {
        match self {
            TenantNotice::AccountLocked { user, .. } => {
                format!("Greenlight {tenant}: the account of {user} is locked after repeated failures")
            }
        }
    }

    /// The e-mail's text: what happened and what an admin can do.
    pub fn text(&self, tenant: &str, occurred_at: &str) -> String {
        match self {
            TenantNotice::AccountLocked { user, failures, during, address, until } => {
                let what = match during {
                    LockedDuring::SignIn => "failed or refused sign-ins",
                    LockedDuring::StepUp => "wrong second-factor codes from a signed-in session",
                };
                format!(
                    "The account of {user} in tenant {tenant} was locked at {occurred_at} after {failures} {what} \
                     in a row; the last came from {address}. The lock ends by itself at {until}.\n\n\
                     If this was not {user}, look at the tenant's access attempts (the Access page, or \
                     GET /v1/admin/access-attempts) and disable the user until it is cleared up; \
                     disabling ends their sessions and tokens at once.\n"
                )
            }
        }
    }
}

/// What an outbox row announces: an order's event, or a notice about the tenant (an outbox row
/// without an order).
#[derive(Debug, Clone, PartialEq)]
pub enum Announcement {
    /// An event of an order.
    Order(Box<OutboxEvent>),
    /// A notice to the tenant's admins.
    Tenant(TenantNotice),
}

/// How a channel answered one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted.
    Delivered,
    /// Failed in a way that may pass (receiver down, timeout, 5xx, the plugin trapped).
    Temporary(String),
    /// Refused for good (bad address, 4xx): retrying would not help.
    Permanent(String),
}

/// The order a notification is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// Order id.
    pub id: String,
    /// Requester's user name.
    pub requester: String,
    /// Status after the event.
    pub status: String,
    /// Total including adjustments, minor units.
    pub total_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Cost center code.
    pub cost_center: Option<String>,
    /// Department.
    pub department: Option<String>,
}

/// Someone who should hear of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// User name, if a user.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone (E.164).
    pub phone: Option<String>,
}

/// One notification handed to a channel: what the `notifier` world's `deliver` receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The delivery id: the same on every attempt.
    pub delivery_id: String,
    /// What happened.
    pub event: String,
    /// The order.
    pub order: OrderSummary,
    /// Who should hear of it.
    pub recipients: Vec<Recipient>,
    /// The stage concerned, if any.
    pub stage: Option<String>,
    /// A reason (rejections, holds), if any.
    pub reason: Option<String>,
    /// `{"details", "occurred_at", "attempt", "attempt_at"}`: the event's fields, when it
    /// happened, and which attempt this is (channels have no clock of their own).
    pub data: serde_json::Value,
}

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the second attempt; doubles with every further one.
    pub base: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// Attempts in all, the first included, before a delivery is dead.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::seconds(5), max_delay: Duration::hours(1), max_attempts: 10 }
    }
}

/// What to record after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The new state.
    pub state: DeliveryState,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// When to try next (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The error of this attempt, if it failed.
    pub error: Option<String>,
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: `base × 2^(n-1)`,
    /// capped at `max_delay`, then scaled by `jitter` in [0.5, 1.0] (given as 0..=1000 per
    /// mille of the upper half) so that many failing deliveries do not retry in lockstep.
    pub fn delay(&self, attempts: u32, jitter_per_mille: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self.base.checked_mul(1 << exp).unwrap_or(self.max_delay).min(self.max_delay);
        let ms = full.num_milliseconds();
        let jitter = i64::from(jitter_per_mille.min(1000));
        Duration::milliseconds(ms / 2 + ms / 2 * jitter / 1000)
    }

    /// Decides what an attempt's answer means for the delivery: delivered, retry later, or dead.
    pub fn after(&self, previous_attempts: u32, answer: Attempt, now: DateTime<Utc>, jitter_per_mille: u32) -> Outcome {
        let attempts = previous_attempts + 1;
        match answer {
            Attempt::Delivered => {
                Outcome { state: DeliveryState::Delivered, attempts, next_attempt_at: None, error: None }
            }
            Attempt::Permanent(e) => {
                Outcome { state: DeliveryState::Dead, attempts, next_attempt_at: None, error: Some(e) }
            }
            Attempt::Temporary(e) if attempts >= self.max_attempts => Outcome {
                state: DeliveryState::Dead,
                attempts,
                next_attempt_at: None,
                error: Some(format!("{e} (gave up after {attempts} attempts)")),
            },
            Attempt::Temporary(e) => Outcome {
                state: DeliveryState::Pending,
                attempts,
                next_attempt_at: Some(now + self.delay(attempts, jitter_per_mille)),
                error: Some(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().expect("valid time")
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { base: Duration::seconds(2), max_delay: Duration::seconds(60), max_attempts: 5 }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let p = policy();
        let full: Vec<i64> = (1..=7).map(|n| p.delay(n, 1000).num_seconds()).collect();
        assert_eq!(full, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay(3, 0), Duration::seconds(4), "no jitter draw goes below half");
        for j in [0, 1, 250, 999, 1000, 5000] {
            let d = p.delay(4, j);
            assert!(d >= Duration::seconds(8) && d <= Duration::seconds(16), "{j}: {d}");
        }
        assert_eq!(p.delay(u32::MAX, 1000), Duration::seconds(60), "huge attempt counts do not overflow");
    }

    #[test]
    fn a_temporary_failure_retries_until_the_attempts_run_out() {
        let p = policy();
        let o = p.after(0, Attempt::Temporary("503".into()), now(), 1000);
        assert_eq!(
            (o.state, o.attempts, o.next_attempt_at),
            (DeliveryState::Pending, 1, Some(now() + Duration::seconds(2)))
        );
        let o = p.after(4, Attempt::Temporary("503".into()), now(), 1000);
        assert_eq!((o.state, o.attempts, o.next_attempt_at), (DeliveryState::Dead, 5, None));
        assert!(o.error.is_some_and(|e| e.contains("gave up after 5 attempts")));
    }

    #[test]
    fn delivered_and_permanent_failures_end_at_once() {
        let p = policy();
        assert_eq!(p.after(3, Attempt::Delivered, now(), 0).state, DeliveryState::Delivered);
        let o = p.after(0, Attempt::Permanent("bad address".into()), now(), 0);
        assert_eq!((o.state, o.error.as_deref()), (DeliveryState::Dead, Some("bad address")));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Dead] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("lost"), None);
    }
}
