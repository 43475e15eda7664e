//! Delegation (R6): while an approver is away, someone else decides in their name. A delegation
//! hands over the delegator's whole authority for a time window; every decision taken under it
//! records both people (`by` and `on_behalf_of`), so the audit trail never blurs who acted.

use super::order::InvalidField;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The longest a delegation may run. Longer absences are a change of role, made by an admin.
pub const MAX_DAYS: i64 = 366;

/// One delegation of authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delegation {
    /// Unique id.
    pub id: String,
    /// The absent approver whose authority is lent.
    pub delegator: String,
    /// Who may decide in the delegator's name.
    pub delegate: String,
    /// Start of the window, in UTC.
    pub from: DateTime<Utc>,
    /// End of the window (exclusive), in UTC.
    pub until: DateTime<Utc>,
    /// When it was granted, in UTC.
    pub created_at: DateTime<Utc>,
}

impl Delegation {
    /// Checks a request for a delegation: not to oneself, a window that ends after it starts and
    /// after `now`, and no longer than [`MAX_DAYS`]. `from` defaults to `now`.
    pub fn new(
        id: String,
        delegator: &str,
        delegate: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Delegation, InvalidField> {
        let bad = |field: &str, message: String| InvalidField { field: field.into(), message };
        if delegate.trim().is_empty() {
            return Err(bad("delegate", "name the user who decides in your place".into()));
        }
        if delegate == delegator {
            return Err(bad("delegate", "you cannot delegate to yourself: name another user of your tenant".into()));
        }
        let from = from.unwrap_or(now);
        if until <= from || until <= now {
            return Err(bad("until", format!("the delegation must end in the future and after it starts ({from})")));
        }
        if until - from > Duration::days(MAX_DAYS) {
            return Err(bad(
                "until",
                format!("a delegation may last at most {MAX_DAYS} days; for a longer absence an admin changes roles"),
            ));
        }
        Ok(Delegation { id, delegator: delegator.into(), delegate: delegate.into(), from, until, created_at: now })
    }

    /// Whether the delegate may act for the delegator at this instant.
    pub fn active(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().expect("valid time")
    }

    fn make(delegate: &str, from: Option<i64>, until: i64) -> Result<Delegation, InvalidField> {
        let h = |n: i64| now() + Duration::hours(n);
        Delegation::new("d1".into(), "erin", delegate, from.map(h), h(until), now())
    }

    #[test]
    fn a_window_starting_now_by_default_is_active_until_its_end() {
        let d = make("bob", None, 48).expect("valid");
        assert_eq!(d.from, now());
        assert!(d.active(now()));
        assert!(d.active(now() + Duration::hours(47)));
        assert!(!d.active(now() + Duration::hours(48)), "the end is exclusive");
        assert!(!d.active(now() - Duration::seconds(1)));
    }

    #[test]
    fn a_future_window_is_not_active_yet() {
        let d = make("bob", Some(24), 48).expect("valid");
        assert!(!d.active(now()));
        assert!(d.active(now() + Duration::hours(24)));
    }

    #[test]
    fn refuses_self_empty_past_backwards_and_overlong_windows() {
        assert_eq!(make("erin", None, 1).expect_err("self").field, "delegate");
        assert_eq!(make(" ", None, 1).expect_err("empty").field, "delegate");
        assert_eq!(make("bob", None, -1).expect_err("past").field, "until");
        assert_eq!(make("bob", Some(5), 4).expect_err("backwards").field, "until");
        assert_eq!(make("bob", None, 24 * 400).expect_err("too long").field, "until");
    }
}
