//! Access review: who holds which role, who lends authority to whom, who has stopped using the
//! system. The facts come from the store; what counts as dormant is decided here.
//!
//! A user is **dormant** when nothing of theirs is on record for the tenant's period
//! (`Policy::dormant_after_days`): no audit entry by them (a sign-in, an order created, a
//! decision, an admin change) and no token issued to them, counted from their creation. Reading
//! through the API with a token leaves no record, so a read-only integration shows as dormant:
//! that is the case a reviewer should look at anyway. Disabled users are listed, never dormant.

use super::actor::Role;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// A delegation as the review shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DelegationLine {
    /// The other person: the delegate of a delegation given, the delegator of one received.
    pub with: String,
    /// Start of the window.
    pub starts_at: DateTime<Utc>,
    /// End of the window (exclusive).
    pub until: DateTime<Utc>,
}

/// One user in the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReviewedUser {
    /// User name.
    pub name: String,
    /// Roles on record (a disabled user's too).
    pub roles: Vec<Role>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was disabled, if they are.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Whether they can sign in to the dashboard.
    pub has_password: bool,
    /// Whether they have a second factor.
    pub second_factor: bool,
    /// Bearer tokens that work.
    pub tokens: u32,
    /// Age in days of their oldest working token.
    pub oldest_token_days: Option<i64>,
    /// Their last sign-in to the dashboard.
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Their last decision on a stage.
    pub last_decision_at: Option<DateTime<Utc>>,
    /// Their last audit entry of any kind, or the last token issued to them.
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Delegations they gave that are running or planned.
    pub delegations_given: Vec<DelegationLine>,
    /// Delegations they received that are running or planned.
    pub delegations_received: Vec<DelegationLine>,
    /// Nothing on record for longer than the tenant's period.
    pub dormant: bool,
}

/// The review of a tenant's users at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessReview {
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// The tenant's period after which a user without activity is dormant.
    pub dormant_after_days: u32,
    /// Users flagged dormant.
    pub dormant: usize,
    /// Users disabled.
    pub disabled: usize,
    /// Every user, by name.
    pub users: Vec<ReviewedUser>,
}

/// Whether a user with this history is dormant at `now`.
pub fn is_dormant(
    created_at: DateTime<Utc>,
    last_activity: Option<DateTime<Utc>>,
    disabled: bool,
    now: DateTime<Utc>,
    after_days: u32,
) -> bool {
    let since = last_activity.map_or(created_at, |a| a.max(created_at));
    !disabled && now - since > TimeDelta::days(i64::from(after_days))
}

impl AccessReview {
    /// Counts the dormant and disabled users.
    pub fn new(generated_at: DateTime<Utc>, dormant_after_days: u32, users: Vec<ReviewedUser>) -> AccessReview {
        let dormant = users.iter().filter(|u| u.dormant).count();
        let disabled = users.iter().filter(|u| u.disabled_at.is_some()).count();
        AccessReview { generated_at, dormant_after_days, dormant, disabled, users }
    }

    /// One line per user; roles separated by spaces, delegations as `name until TIME`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "name,roles,created_at,disabled_at,has_password,second_factor,tokens,oldest_token_days,last_sign_in_at,last_decision_at,last_activity_at,delegations_given,delegations_received,dormant\n",
        );
        let time = |t: Option<DateTime<Utc>>| t.map(super::audit::timestamp).unwrap_or_default();
        let lines = |ds: &[DelegationLine]| {
            ds.iter()
                .map(|d| format!("{} until {}", d.with, super::audit::timestamp(d.until)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        for u in &self.users {
            let roles = u.roles.iter().map(Role::as_str).collect::<Vec<_>>().join(" ");
            let cells = [
                u.name.clone(),
                roles,
                super::audit::timestamp(u.created_at),
                time(u.disabled_at),
                u.has_password.to_string(),
                u.second_factor.to_string(),
                u.tokens.to_string(),
                u.oldest_token_days.map(|d| d.to_string()).unwrap_or_default(),
                time(u.last_sign_in_at),
                time(u.last_decision_at),
                time(u.last_activity_at),
                lines(&u.delegations_given),
                lines(&u.delegations_received),
                u.dormant.to_string(),
            ];
            let cells: Vec<String> = cells.iter().map(|c| super::report::cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[test]
    fn dormant_after_the_period_counted_from_the_later_of_creation_and_activity() {
        let now = t("2026-12-01T00:00:00Z");
        // Created long ago, active recently: not dormant.
        assert!(!is_dormant(t("2025-01-01T00:00:00Z"), Some(t("2026-11-01T00:00:00Z")), false, now, 90));
        // Active long ago: dormant.
        assert!(is_dormant(t("2025-01-01T00:00:00Z"), Some(t("2026-08-01T00:00:00Z")), false, now, 90));
        // Never active, created recently: not yet.
        assert!(!is_dormant(t("2026-10-01T00:00:00Z"), None, false, now, 90));
        // Never active, created long ago: dormant.
        assert!(is_dormant(t("2026-01-01T00:00:00Z"), None, false, now, 90));
        // Exactly at the period: not yet.
        assert!(!is_dormant(t("2026-09-02T00:00:00Z"), None, false, now, 90));
        // Disabled users are never dormant.
        assert!(!is_dormant(t("2020-01-01T00:00:00Z"), None, true, now, 90));
    }

    #[test]
    fn the_csv_has_one_line_per_user_and_no_formula_cells() {
        let user = ReviewedUser {
            name: "=cmd".into(),
            roles: vec!["admin".parse().expect("role"), "auditor".parse().expect("role")],
            created_at: t("2026-01-01T00:00:00Z"),
            disabled_at: None,
            has_password: true,
            second_factor: false,
            tokens: 2,
            oldest_token_days: Some(334),
            last_sign_in_at: None,
            last_decision_at: None,
            last_activity_at: Some(t("2026-02-01T00:00:00Z")),
            delegations_given: vec![DelegationLine {
                with: "bob".into(),
                starts_at: t("2026-11-01T00:00:00Z"),
                until: t("2026-12-24T00:00:00Z"),
            }],
            delegations_received: vec![],
            dormant: true,
        };
        let review = AccessReview::new(t("2026-12-01T00:00:00Z"), 90, vec![user]);
        assert_eq!((review.dormant, review.disabled), (1, 0));
        let csv = review.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[1].starts_with("'=cmd,admin auditor,"), "{csv}");
        assert!(lines[1].contains(",bob until 2026-12-24T00:00:00"), "{csv}");
        assert!(lines[1].ends_with(",true"), "{csv}");
    }
}
