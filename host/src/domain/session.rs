//! Browser sessions and passwords: the rules, without the hashing or the storage. A session
//! ends after [`IDLE`] without use or [`ABSOLUTE`] after sign-in, whichever comes first; a
//! password must be long enough to resist guessing and short enough to hash cheaply.

use chrono::{DateTime, TimeDelta, Utc};

/// A session unused this long is over.
pub const IDLE: TimeDelta = TimeDelta::hours(2);

/// A session is over this long after sign-in, however busy.
pub const ABSOLUTE: TimeDelta = TimeDelta::hours(12);

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The most characters a password may have (argon2 hashes any length; the bound keeps a sign-in
/// request cheap to refuse).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The most bytes of a password of [`MAX_PASSWORD_CHARS`]: what a sign-in refuses unread.
pub const MAX_PASSWORD_BYTES: usize = 4 * MAX_PASSWORD_CHARS;

/// Whether a session signed in at `created` and last used at `seen` still holds at `now`.
pub fn is_live(created: DateTime<Utc>, seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < seen + IDLE && now < created + ABSOLUTE
}

/// Checks a new password; the message says what to change.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("a password needs at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(format!("a password may have at most {MAX_PASSWORD_CHARS} characters"));
    }
    if password.trim() != password {
        return Err("a password may not start or end with spaces".into());
    }
    Ok(())
}

/// Failed sign-ins for one user in a row before each further attempt must wait.
pub const USER_FREE_FAILURES: u32 = 3;

/// Failed sign-ins from one address in a row before each further attempt must wait: more than
/// for a user, since many people may share an address (an office, a proxy).
pub const ADDRESS_FREE_FAILURES: u32 = 20;

/// How long someone must wait before the next sign-in attempt after `failures` failed ones in
/// a row when the first `free` cost nothing: then doubling from one second, at most fifteen
/// minutes.
pub fn backoff(failures: u32, free: u32) -> TimeDelta {
    if failures < free {
        return TimeDelta::zero();
    }
    TimeDelta::seconds((1i64 << (failures - free).min(10)).min(900))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_or_old() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert!(is_live(t0, t0, t0 + TimeDelta::minutes(119)));
        assert!(!is_live(t0, t0, t0 + IDLE));
        let busy = t0 + ABSOLUTE - TimeDelta::minutes(1);
        assert!(is_live(t0, busy, busy));
        assert!(!is_live(t0, busy, t0 + ABSOLUTE));
    }

    #[test]
    fn passwords_are_checked_and_failures_slow_down() {
        assert!(check_password("short").is_err());
        assert!(check_password(" padded password ").is_err());
        assert!(check_password(&"x".repeat(300)).is_err());
        assert!(check_password("correct horse").is_ok());
        assert_eq!(backoff(2, 3), TimeDelta::zero());
        assert_eq!(backoff(3, 3), TimeDelta::seconds(1));
        assert_eq!(backoff(6, 3), TimeDelta::seconds(8));
        assert_eq!(backoff(40, 3), TimeDelta::seconds(900));
        for n in 60..70 {
            assert_eq!(backoff(n, 3), TimeDelta::seconds(900), "{n} failures");
        }
        assert_eq!(backoff(u32::MAX, 3), TimeDelta::seconds(900));
        assert_eq!(backoff(19, ADDRESS_FREE_FAILURES), TimeDelta::zero());
    }
}
