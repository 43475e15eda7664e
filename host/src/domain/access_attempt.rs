//! Access attempts on record: sign-ins that worked or failed, and API calls refused for a missing
//! or unknown token (401) or a role the caller lacks (403), with when, who (as typed or as
//! known), from where and why, for anomaly detection. A burst of failed sign-ins locks the
//! account for a while.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// Where an attempt came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The dashboard's sign-in form.
    SignIn,
    /// An API call with a bearer token.
    Api,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Signed in.
    SignedIn,
    /// Wrong tenant, name or password.
    Failed,
    /// Refused without checking: too many failures just before.
    Throttled,
    /// This failure locked the account (see [`LOCK_AFTER_FAILURES`]).
    Locked,
    /// 401: no token, or one that is not valid.
    Unauthorized,
    /// 403: a valid token without the role the call needs.
    Forbidden,
}

impl Channel {
    /// Every channel, for counters.
    pub const ALL: [Channel; 2] = [Channel::SignIn, Channel::Api];

    /// As stored and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::SignIn => "sign_in",
            Channel::Api => "api",
        }
    }
}

impl AttemptOutcome {
    /// Every outcome, for counters.
    pub const ALL: [AttemptOutcome; 6] = [
        AttemptOutcome::SignedIn,
        AttemptOutcome::Failed,
        AttemptOutcome::Throttled,
        AttemptOutcome::Locked,
        AttemptOutcome::Unauthorized,
        AttemptOutcome::Forbidden,
    ];

    /// As stored and counted.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::SignedIn => "signed_in",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Throttled => "throttled",
            AttemptOutcome::Locked => "locked",
            AttemptOutcome::Unauthorized => "unauthorized",
            AttemptOutcome::Forbidden => "forbidden",
        }
    }

    /// The outcome of this name.
    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Failed sign-ins in a row after which a user's account is locked for [`LOCK_FOR`].
pub const LOCK_AFTER_FAILURES: u32 = 10;
/// How long a locked account stays locked.
pub const LOCK_FOR: TimeDelta = TimeDelta::minutes(15);

/// The actor of the audit entry that records a lock: the host's access guard, not the user.
pub const GUARD: &str = "greenlight:access-guard";

/// Longest user name and reason kept: what was typed is bounded before it is stored.
const MAX_TEXT: usize = 200;

/// One attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessAttempt {
    /// When.
    pub at: DateTime<Utc>,
    /// The tenant, when the attempt named one that exists (a sign-in) or its token was valid
    /// (a 403); none for unknown tenants and tokens.
    #[serde(skip)]
    pub tenant_id: Option<String>,
    /// Sign-in form or API.
    pub channel: Channel,
    /// The user name as typed (sign-in) or known (403); none for a bad token.
    pub user: Option<String>,
    /// The client's address.
    pub address: String,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// Why, in words (the route of a refused call and the answer's message).
    pub reason: String,
}

fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl AccessAttempt {
    /// An attempt, its typed texts bounded.
    pub fn new(
        at: DateTime<Utc>,
        tenant_id: Option<String>,
        channel: Channel,
        user: Option<&str>,
        address: std::net::IpAddr,
        outcome: AttemptOutcome,
        reason: &str,
    ) -> AccessAttempt {
        AccessAttempt {
            at,
            tenant_id,
            channel,
            user: user.map(bounded),
            address: address.to_string(),
            outcome,
            reason: bounded(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_typed_text_is_bounded() {
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(AttemptOutcome::parse("maybe"), None);
        let a = AccessAttempt::new(
            Utc::now(),
            None,
            Channel::SignIn,
            Some(&"é".repeat(500)),
            std::net::IpAddr::from([127, 0, 0, 1]),
            AttemptOutcome::Failed,
            "wrong",
        );
        assert_eq!(a.user.as_deref().map(|u| u.chars().count()), Some(MAX_TEXT + 1));
        assert_eq!(a.address, "127.0.0.1");
    }
}
