//! Signing in to the dashboard: passwords (argon2id), sessions (random cookie values, stored
//! hashed, ended when idle or old), sign-in attempts slowed down per user and per address, and
//! every sign-in, sign-out and password change audited.

use super::access::require_role;
use super::{ApprovalError, Approvals, invalid};
use crate::domain::access_attempt::{AccessAttempt, AttemptOutcome, Channel, GUARD, LOCK_AFTER_FAILURES, LOCK_FOR};
use crate::domain::actor::roles;
use crate::domain::delivery::{LockedDuring, TenantNotice};
use crate::domain::directory::Principal;
use crate::domain::session::{ADDRESS_FREE_FAILURES, USER_FREE_FAILURES, backoff, check_password, is_live};
use crate::store::directory::{self, new_token};
use crate::store::sessions::{self, SessionRecord};
use crate::store::{StoreError, audit, outbox};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// What a browser keeps after signing in: the cookie value and the form token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session cookie's value (only its hash is stored).
    pub cookie: String,
    /// The token every state-changing form must send back.
    pub csrf: String,
}

/// A signed-in browser: who, and the form token its forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user and tenant.
    pub principal: Principal,
    /// The form token.
    pub csrf: String,
    /// The user holds a role the tenant requires a second factor for, and has none yet: the
    /// dashboard shows them nothing but setting one up.
    pub must_enroll: bool,
}

/// Failed sign-ins in a row, per user and per address, and when the last one was.
#[derive(Debug)]
pub struct Throttle {
    failures: Mutex<HashMap<Key, (u32, DateTime<Utc>)>>,
    /// Password checks running now: each costs argon2's memory, so their number is bounded.
    checks: tokio::sync::Semaphore,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { failures: Mutex::default(), checks: tokio::sync::Semaphore::new(MAX_CONCURRENT_CHECKS) }
    }
}

/// A sign-in refused before the password was checked: how long to wait, and the user's failures
/// in a row with this attempt counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) wait_secs: i64,
    pub(super) failures: u32,
}

/// Whom a count of failures is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// A user of a tenant, by the SHA-256 of `tenant/name` (a fixed size whatever was typed).
    User([u8; 32]),
    /// An address.
    Address(IpAddr),
}

impl Key {
    pub(super) fn user(tenant: &str, name: &str) -> Key {
        use sha2::Digest;
        Key::User(sha2::Sha256::digest(format!("{tenant}/{name}").as_bytes()).into())
    }

    fn free(&self) -> u32 {
        match self {
            Key::User(_) => USER_FREE_FAILURES,
            Key::Address(_) => ADDRESS_FREE_FAILURES,
        }
    }

    /// How long after `failures` failures in a row the next attempt must wait: the backoff, and
    /// for a user past the lock threshold the lock.
    fn wait(&self, failures: u32) -> chrono::TimeDelta {
        let wait = backoff(failures, self.free());
        match self {
            Key::User(_) if failures >= LOCK_AFTER_FAILURES => wait.max(LOCK_FOR),
            _ => wait,
        }
    }
}

/// The most keys the throttle remembers; beyond it the oldest half is forgotten.
const THROTTLE_KEYS: usize = 100_000;

/// Password checks at once; a sign-in beyond them is asked to try again in a second.
const MAX_CONCURRENT_CHECKS: usize = 4;

impl Throttle {
    /// Either the seconds `keys` must still wait, or the attempt counted as a failure up front
    /// (in the same lock, so parallel attempts cannot all pass one check); a success takes it
    /// back with [`Throttle::succeeded`]. Returns the failures in a row now counted for the
    /// first key (the user). An attempt refused for waiting counts against the user too (not
    /// moving the time of their last failure), so hammering a throttled account locks it.
    pub(super) fn begin(&self, keys: &[Key], now: DateTime<Utc>) -> Result<u32, Refusal> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k).map(|(n, last)| *last + k.wait(*n) - now))
            .filter(|left| *left > chrono::TimeDelta::zero())
            .max();
        if let Some(left) = wait {
            let (failures, left) = match keys.first().and_then(|k| map.get_mut(k).map(|e| (k, e))) {
                Some((k, e)) => {
                    e.0 = e.0.saturating_add(1);
                    // This attempt may have locked the account: the wait is the lock's now.
                    (e.0, left.max(e.1 + k.wait(e.0) - now))
                }
                None => (0, left),
            };
            return Err(Refusal { wait_secs: left.num_seconds() + 1, failures });
        }
        if map.len() >= THROTTLE_KEYS {
            let mut times: Vec<DateTime<Utc>> = map.values().map(|(_, t)| *t).collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            map.retain(|_, (_, t)| *t > cut);
        }
        let mut first = 0;
        for (i, k) in keys.iter().enumerate() {
            let e = map.entry(k.clone()).or_insert((0, now));
            *e = (e.0.saturating_add(1), now);
            if i == 0 {
                first = e.0;
            }
        }
        Ok(first)
    }

    /// A key's failures are forgotten (a second factor passed).
    pub(super) fn forget(&self, key: &Key) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// A sign-in succeeded: the user's failures are forgotten and the attempt is taken back
    /// from the address's count.
    fn succeeded(&self, user: &Key, address: &Key) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(user);
        if let Some(e) = map.get_mut(address) {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

/// A hash to verify against when the user does not exist, so a wrong name takes as long as a
/// wrong password and the answer does not tell which was wrong.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("no user has this password").unwrap_or_default())
}

/// Hashes a password with argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApprovalError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApprovalError::Store(StoreError::Corrupt(format!("no randomness: {e}"))))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| invalid("password", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| invalid("password", format!("the password could not be hashed: {e}")))
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn locked(failures: u32) -> String {
    format!("{failures} failed or refused sign-ins in a row: locked for {} minutes", LOCK_FOR.num_minutes())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApprovalError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| ApprovalError::Internal("a password check failed".into()))
}

impl Approvals {
    /// A user's account was just locked (the attempt that locked it is logged by the caller):
    /// an `account_locked` audit entry and a notice to the tenant's admins, in one change. A
    /// name that is no user of the tenant locks nothing worth telling anyone about. Written in
    /// the background, so the answer takes as long for a real user as for a made-up name and
    /// holds no password-check slot; a failure is logged, and the answer (refused) stands.
    pub(super) fn account_locked(
        &self,
        tenant_id: &str,
        user: &str,
        failures: u32,
        during: LockedDuring,
        from: IpAddr,
        until: DateTime<Utc>,
    ) {
        let (t, u) = (tenant_id.to_string(), user.to_string());
        let now = Utc::now();
        let notice = TenantNotice::AccountLocked {
            user: user.to_string(),
            failures,
            during,
            address: from.to_string(),
            until: crate::domain::audit::timestamp(until),
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            let user = u.clone();
            let written = store
                .write(move |c| -> Result<(), StoreError> {
                    if directory::user(c, &t, &u)?.is_none() {
                        return Ok(());
                    }
                    let at = crate::domain::audit::timestamp(now);
                    let data = serde_json::to_value(&notice).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    audit::append(c, &t, now, GUARD, notice.event(), None, data)?;
                    outbox::enqueue_notice(c, &t, &notice, &at)?;
                    Ok(())
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(error = %e, user, "the lock of an account could not be recorded or announced");
            }
        });
    }

    /// Signs a user in with the tenant's name, the user's name and the password. Wrong
    /// credentials are one answer whichever part was wrong; after three failures in a row for
    /// the user or from the address, each further attempt must wait longer.
    pub async fn sign_in(
        &self,
        tenant: &str,
        user: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<SignedIn, ApprovalError> {
        let now = Utc::now();
        let log = |tenant_id: Option<String>, outcome: AttemptOutcome, reason: &str| {
            let attempt = AccessAttempt::new(now, tenant_id, Channel::SignIn, Some(user), from, outcome, reason);
            self.access_log.record(attempt);
        };
        // Names are at most 64 bytes; anything longer cannot sign in and is not remembered.
        if tenant.len() > 64 || user.len() > 64 || password.len() > crate::domain::session::MAX_PASSWORD_BYTES {
            log(None, AttemptOutcome::Failed, "a name or the password is longer than any that can sign in");
            return Err(ApprovalError::SignInFailed);
        }
        let (user_key, address_key) = (Key::user(tenant, user), Key::Address(from));
        // One read for the tenant (the attempt is on its record even for an unknown user) and the
        // user's password hash.
        let (t, u) = (tenant.to_string(), user.to_string());
        let (tenant_id, phc) = self
            .store
            .read(move |c| -> Result<(Option<String>, Option<String>), StoreError> {
                let tenant_id = directory::tenant_by_name(c, &t)?.map(|t| t.id);
                let phc = sessions::password_hash(c, &t, &u)?.and_then(|(_, h)| h);
                Ok((tenant_id, phc))
            })
            .await?;
        let Ok(_check) = self.sign_ins.checks.try_acquire() else {
            log(tenant_id, AttemptOutcome::Throttled, "too many sign-ins at once");
            return Err(ApprovalError::TooManyAttempts(1));
        };
        let failures = match self.sign_ins.begin(&[user_key.clone(), address_key.clone()], now) {
            Ok(n) => n,
            Err(Refusal { wait_secs, failures }) => {
                if failures == LOCK_AFTER_FAILURES {
                    log(tenant_id.clone(), AttemptOutcome::Locked, &locked(failures));
                    if let Some(t) = tenant_id.as_deref().filter(|_| phc.is_some()) {
                        let until = now + chrono::TimeDelta::seconds(wait_secs);
                        self.account_locked(t, user, failures, LockedDuring::SignIn, from, until);
                    }
                } else {
                    log(
                        tenant_id,
                        AttemptOutcome::Throttled,
                        &format!("too many failures just before; {wait_secs} s to wait"),
                    );
                }
                return Err(ApprovalError::TooManyAttempts(wait_secs));
            }
        };
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| decoy_hash().to_string());
        let pw = password.to_string();
        let ok = blocking(move || verify(&pw, &phc)).await? && known;
        let Some(tenant_id) = tenant_id.clone().filter(|_| ok) else {
            if failures == LOCK_AFTER_FAILURES {
                log(tenant_id.clone(), AttemptOutcome::Locked, &locked(failures));
                if let Some(t) = tenant_id.as_deref().filter(|_| known) {
                    self.account_locked(t, user, failures, LockedDuring::SignIn, from, now + LOCK_FOR);
                }
            } else {
                log(tenant_id, AttemptOutcome::Failed, "wrong tenant, name or password");
            }
            return Err(ApprovalError::SignInFailed);
        };
        self.sign_ins.succeeded(&user_key, &address_key);
        log(Some(tenant_id.clone()), AttemptOutcome::SignedIn, "password");
        let signed = SignedIn { cookie: new_token()?, csrf: new_token()? };
        let record = SessionRecord {
            tenant_id: tenant_id.clone(),
            user_name: user.to_string(),
            csrf: signed.csrf.clone(),
            created_at: now,
            seen_at: now,
            second_factor_at: None,
        };
        let (cookie, name) = (signed.cookie.clone(), user.to_string());
        self.store
            .write(move |c| -> Result<(), StoreError> {
                sessions::purge_expired(c, now)?;
                sessions::create(c, &cookie, &record)?;
                audit::append(
                    c,
                    &tenant_id,
                    now,
                    &name,
                    "signed_in",
                    None,
                    serde_json::json!({"from": from.to_string()}),
                )?;
                Ok(())
            })
            .await?;
        Ok(signed)
    }

    /// The session of a cookie value, if it is live; its last use is recorded at most once a
    /// minute (a page view is not a write).
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, ApprovalError> {
        let now = Utc::now();
        let c0 = cookie.to_string();
        let found = self
            .store
            .read(move |c| -> Result<Option<(SessionRecord, Principal, bool)>, StoreError> {
                let Some(s) = sessions::find(c, &c0)? else { return Ok(None) };
                let (Some(tenant), Some(user)) =
                    (directory::tenant(c, &s.tenant_id)?, directory::user(c, &s.tenant_id, &s.user_name)?)
                else {
                    return Ok(None);
                };
                // Critical actions are open for a while after the session passed the second factor.
                let critical = s.second_factor_at.is_some_and(|at| now - at < super::second_factor::STEP_UP_VALID);
                let required = user.roles.iter().any(|r| tenant.policy.second_factor_roles.contains(r));
                let must_enroll =
                    required && crate::store::second_factor::enrolled(c, &s.tenant_id, &s.user_name)?.is_none();
                Ok(Some((s, Principal { tenant, user, critical }, must_enroll)))
            })
            .await?;
        let Some((s, principal, must_enroll)) = found else { return Ok(None) };
        if !is_live(s.created_at, s.seen_at, now) {
            let c1 = cookie.to_string();
            self.store.write(move |c| sessions::delete(c, &c1).map(|_| ())).await?;
            return Ok(None);
        }
        if now - s.seen_at > chrono::TimeDelta::minutes(1) {
            let c1 = cookie.to_string();
            self.store.write(move |c| sessions::touch(c, &c1, now)).await?;
        }
        Ok(Some(Session { principal, csrf: s.csrf, must_enroll }))
    }

    /// Ends a session (signing out); audited when there was one.
    pub async fn sign_out(&self, cookie: &str) -> Result<(), ApprovalError> {
        let c0 = cookie.to_string();
        self.store
            .write(move |c| -> Result<(), StoreError> {
                if let Some(s) = sessions::delete(c, &c0)? {
                    audit::append(
                        c,
                        &s.tenant_id,
                        Utc::now(),
                        &s.user_name,
                        "signed_out",
                        None,
                        serde_json::json!({}),
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Sets a user's password: an admin for any user of the tenant (an initial password or a
    /// reset), anyone for themselves. Every session of the user ends. Without the current
    /// password this is a critical action even for oneself: a token alone must not become a
    /// dashboard sign-in (the dashboard's own form asks for the current password instead).
    pub async fn set_password(&self, p: &Principal, user: &str, password: &str) -> Result<(), ApprovalError> {
        if user != p.user.name {
            require_role(p, &[roles::ADMIN], "setting another user's password")?;
        }
        super::access::require_step_up(p, "setting a password without the current one")?;
        self.store_password(&p.tenant.id, &p.user.name, user, password).await
    }

    /// Changes one's own password, proving the current one first (a borrowed session alone
    /// cannot take the account over).
    pub async fn change_own_password(&self, p: &Principal, current: &str, new: &str) -> Result<(), ApprovalError> {
        let (t, u) = (p.tenant.name.clone(), p.user.name.clone());
        let found = self.store.read(move |c| sessions::password_hash(c, &t, &u)).await?;
        let phc = found.and_then(|(_, h)| h).unwrap_or_else(|| decoy_hash().to_string());
        let cur = current.to_string();
        if current.len() > crate::domain::session::MAX_PASSWORD_BYTES || !blocking(move || verify(&cur, &phc)).await? {
            return Err(invalid("current", "the current password is wrong"));
        }
        self.store_password(&p.tenant.id, &p.user.name, &p.user.name, new).await
    }

    /// Sets a user's password from the command line (the operator, for the first admin).
    pub async fn set_password_as_operator(
        &self,
        tenant: &str,
        user: &str,
        password: &str,
    ) -> Result<(), ApprovalError> {
        let t = self.tenant_named(tenant).await?;
        self.store_password(&t.id, "operator", user, password).await
    }

    async fn store_password(
        &self,
        tenant_id: &str,
        actor: &str,
        user: &str,
        password: &str,
    ) -> Result<(), ApprovalError> {
        check_password(password).map_err(|m| invalid("password", m))?;
        let pw = password.to_string();
        let phc = blocking(move || hash_password(&pw)).await??;
        let (t, a, u) = (tenant_id.to_string(), actor.to_string(), user.to_string());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if !sessions::set_password_hash(c, &t, &u, &phc)? {
                    return Err(ApprovalError::NotFound(format!("no user '{u}' here")));
                }
                audit::append(c, &t, Utc::now(), &a, "password_set", None, serde_json::json!({"user": u}))?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn failures_slow_down_the_key_and_success_clears_the_user() {
        let t = Throttle::default();
        let now = Utc::now();
        let (user, addr) = (Key::user("a", "b"), Key::Address(IpAddr::from([127, 0, 0, 1])));
        let keys = [user.clone(), addr.clone()];
        for i in 0..USER_FREE_FAILURES {
            assert_eq!(t.begin(&keys, now), Ok(i + 1));
        }
        assert!(t.begin(&keys, now).is_err_and(|r| r.wait_secs >= 1), "the fourth attempt at once waits");
        // The refused attempt counted: two seconds of waiting now, not one.
        assert_eq!(t.begin(&keys, now + chrono::TimeDelta::seconds(2)), Ok(5));
        t.succeeded(&user, &addr);
        assert_eq!(t.begin(&[user], now + chrono::TimeDelta::seconds(2)), Ok(1), "the user starts over");
        // Another user from the same address is not held up by a few failures of the first.
        assert_eq!(t.begin(&[Key::user("a", "c"), addr], now + chrono::TimeDelta::seconds(2)), Ok(1));
    }

    #[test]
    fn hammering_a_throttled_account_locks_it() {
        let t = Throttle::default();
        let now = Utc::now();
        let keys = [Key::user("a", "b"), Key::Address(IpAddr::from([127, 0, 0, 2]))];
        for _ in 0..USER_FREE_FAILURES {
            assert!(t.begin(&keys, now).is_ok());
        }
        for n in USER_FREE_FAILURES + 1..LOCK_AFTER_FAILURES {
            assert!(t.begin(&keys, now).is_err_and(|r| r.failures == n && r.wait_secs < 900));
        }
        let locked = t.begin(&keys, now).expect_err("the tenth attempt locks");
        assert_eq!(locked.failures, LOCK_AFTER_FAILURES);
        assert!(locked.wait_secs >= LOCK_FOR.num_seconds(), "{locked:?}");
        // Still locked long after the backoff alone would have ended.
        assert!(t.begin(&keys, now + chrono::TimeDelta::minutes(5)).is_err());
        assert!(t.begin(&keys, now + LOCK_FOR + chrono::TimeDelta::seconds(1)).is_ok(), "and open again after");
    }

    #[test]
    fn an_address_waits_only_after_many_failures() {
        let t = Throttle::default();
        let now = Utc::now();
        let addr = Key::Address(IpAddr::from([10, 0, 0, 1]));
        for i in 0..ADDRESS_FREE_FAILURES {
            assert_eq!(t.begin(&[Key::user("a", &format!("u{i}")), addr.clone()], now), Ok(1));
        }
        assert!(t.begin(&[Key::user("a", "other"), addr], now).is_err());
    }
}
