//! Signing in to the dashboard: passwords (argon2id), sessions (random cookie values, stored
//! hashed, ended when idle or old), sign-in attempts slowed down per user and per address, and
//! every sign-in, sign-out and password change audited.

use super::access::require_role;
use super::{ApprovalError, Approvals, invalid};
use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::domain::session::{backoff, check_password, is_live};
use crate::store::directory::{self, new_token};
use crate::store::sessions::{self, SessionRecord};
use crate::store::{StoreError, audit};
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
}

/// Failed sign-ins in a row, per user and per address, and when the last one was.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
}

/// The most keys the throttle remembers; beyond it the oldest half is forgotten, so a flood of
/// made-up names cannot grow it without bound.
const THROTTLE_KEYS: usize = 100_000;

impl Throttle {
    /// Seconds to wait before `keys` may try again, if any must wait.
    fn wait(&self, keys: &[String], now: DateTime<Utc>) -> Option<i64> {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .map(|(n, last)| *last + backoff(*n) - now)
            .filter(|left| *left > chrono::TimeDelta::zero())
            .max()
            .map(|left| left.num_seconds() + 1)
    }

    fn failed(&self, keys: &[String], now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= THROTTLE_KEYS {
            let mut times: Vec<DateTime<Utc>> = map.values().map(|(_, t)| *t).collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            map.retain(|_, (_, t)| *t > cut);
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((0, now));
            *e = (e.0.saturating_add(1), now);
        }
    }

    fn succeeded(&self, user_key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(user_key);
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApprovalError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| ApprovalError::Internal("a password check failed".into()))
}

impl Approvals {
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
        let user_key = format!("user:{tenant}/{user}");
        let keys = [user_key.clone(), format!("addr:{from}")];
        if let Some(secs) = self.sign_ins.wait(&keys, now) {
            return Err(ApprovalError::TooManyAttempts(secs));
        }
        if password.len() > crate::domain::session::MAX_PASSWORD_BYTES {
            return Err(ApprovalError::SignInFailed);
        }
        let (t, u) = (tenant.to_string(), user.to_string());
        let found = self.store.read(move |c| sessions::password_hash(c, &t, &u)).await?;
        let (tenant_id, phc) = match found {
            Some((id, Some(phc))) => (Some(id), phc),
            _ => (None, decoy_hash().to_string()),
        };
        let pw = password.to_string();
        let ok = blocking(move || verify(&pw, &phc)).await? && tenant_id.is_some();
        let Some(tenant_id) = tenant_id.filter(|_| ok) else {
            self.sign_ins.failed(&keys, now);
            return Err(ApprovalError::SignInFailed);
        };
        self.sign_ins.succeeded(&user_key);
        let signed = SignedIn { cookie: new_token()?, csrf: new_token()? };
        let record = SessionRecord {
            tenant_id: tenant_id.clone(),
            user_name: user.to_string(),
            csrf: signed.csrf.clone(),
            created_at: now,
            seen_at: now,
        };
        let (cookie, name) = (signed.cookie.clone(), user.to_string());
        self.store
            .write(move |c| -> Result<(), StoreError> {
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
            .read(move |c| -> Result<Option<(SessionRecord, Principal)>, StoreError> {
                let Some(s) = sessions::find(c, &c0)? else { return Ok(None) };
                let (Some(tenant), Some(user)) =
                    (directory::tenant(c, &s.tenant_id)?, directory::user(c, &s.tenant_id, &s.user_name)?)
                else {
                    return Ok(None);
                };
                Ok(Some((s, Principal { tenant, user })))
            })
            .await?;
        let Some((s, principal)) = found else { return Ok(None) };
        if !is_live(s.created_at, s.seen_at, now) {
            let c1 = cookie.to_string();
            self.store.write(move |c| sessions::delete(c, &c1).map(|_| ())).await?;
            return Ok(None);
        }
        if now - s.seen_at > chrono::TimeDelta::minutes(1) {
            let c1 = cookie.to_string();
            self.store.write(move |c| sessions::touch(c, &c1, now)).await?;
        }
        Ok(Some(Session { principal, csrf: s.csrf }))
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
    /// reset), anyone for themselves. Every session of the user ends.
    pub async fn set_password(&self, p: &Principal, user: &str, password: &str) -> Result<(), ApprovalError> {
        if user != p.user.name {
            require_role(p, &[roles::ADMIN], "setting another user's password")?;
        }
        self.store_password(&p.tenant.id, &p.user.name, user, password).await
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
        let keys = ["user:a/b".to_string(), "addr:127.0.0.1".to_string()];
        for _ in 0..3 {
            assert_eq!(t.wait(&keys, now), None);
            t.failed(&keys, now);
        }
        assert!(t.wait(&keys, now).is_some_and(|s| s >= 1));
        assert_eq!(t.wait(&keys, now + chrono::TimeDelta::seconds(2)), None);
        t.succeeded("user:a/b");
        assert!(t.wait(&keys, now).is_some(), "the address still waits");
        assert_eq!(t.wait(&["user:a/b".to_string()], now), None);
    }
}
