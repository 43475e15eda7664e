//! The second factor of people who sign in: enrollment (a new secret shown as a QR code,
//! confirmed by a first code, then recovery codes shown once), step-up (a fresh code, or a
//! recovery code, marks the dashboard session for critical actions for a few minutes), and an
//! admin's reset. Enrollment, every use, every failure and every reset are in the audit chain;
//! failures count against the user like failed sign-ins, so a guessed code locks the account.

use super::access::require_role;
use super::session::Key;
use super::{ApprovalError, Approvals, invalid};
use crate::domain::access_attempt::{LOCK_AFTER_FAILURES, LOCK_FOR};
use crate::domain::actor::roles;
use crate::domain::delivery::LockedDuring;
use crate::domain::directory::Principal;
use crate::domain::second_factor::{
    RECOVERY_CODES, SECRET_BYTES, base32, from_base32, otpauth_uri, recovery_code, recovery_hash, verify,
};
use crate::store::{StoreError, audit, second_factor};
use chrono::{DateTime, TimeDelta, Utc};
use std::net::IpAddr;

/// How long a step-up lets a session do critical actions.
pub const STEP_UP_VALID: TimeDelta = TimeDelta::minutes(5);

/// A secret being set up: what the authenticator app needs.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The secret, base32, for typing in by hand.
    pub secret: String,
    /// The `otpauth://` address, for the QR code.
    pub uri: String,
}

/// A user's second factor as they see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactorState {
    /// Whether they have one.
    pub enrolled: bool,
    /// Recovery codes not used yet.
    pub recovery_left: usize,
}

/// How a step-up was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpMethod {
    /// A code from the authenticator.
    Totp,
    /// A recovery code (now used up).
    RecoveryCode,
}

fn random<const N: usize>() -> Result<[u8; N], ApprovalError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApprovalError::Store(StoreError::Corrupt(format!("no randomness: {e}"))))?;
    Ok(bytes)
}

fn wrong_code() -> ApprovalError {
    invalid(
        "code",
        "the code does not match: type the current six digits from your authenticator app (its clock must be right), or a recovery code",
    )
}

impl Approvals {
    /// Whether the user has a second factor, and how many recovery codes they have left.
    pub async fn second_factor_state(&self, p: &Principal) -> Result<SecondFactorState, ApprovalError> {
        let (t, u) = (p.tenant.id.clone(), p.user.name.clone());
        Ok(self
            .store
            .read(move |c| -> Result<SecondFactorState, StoreError> {
                let enrolled = second_factor::enrolled(c, &t, &u)?.is_some();
                let recovery_left = if enrolled { second_factor::recovery_left(c, &t, &u)? } else { 0 };
                Ok(SecondFactorState { enrolled, recovery_left })
            })
            .await?)
    }

    /// Starts setting up a second factor: a new secret, kept until a code confirms it.
    pub async fn begin_enrollment(&self, p: &Principal) -> Result<Enrollment, ApprovalError> {
        let secret = random::<SECRET_BYTES>()?;
        let encoded = base32(&secret);
        let (t, u, s) = (p.tenant.id.clone(), p.user.name.clone(), encoded.clone());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if second_factor::enrolled(c, &t, &u)?.is_some() {
                    return Err(ApprovalError::Conflict(
                        "you already have a second factor; an admin can reset it if you lost it".into(),
                    ));
                }
                second_factor::set_pending(c, &t, &u, &s)?;
                Ok(())
            })
            .await?;
        Ok(Enrollment { uri: otpauth_uri(&p.tenant.name, &p.user.name, &secret), secret: encoded })
    }

    /// Confirms the secret being set up with its first code: the second factor is on, `session`
    /// (the dashboard's cookie) counts as stepped up, and the recovery codes are returned, to be
    /// shown once.
    pub async fn confirm_enrollment(
        &self,
        p: &Principal,
        session: Option<&str>,
        code: &str,
    ) -> Result<Vec<String>, ApprovalError> {
        let now = Utc::now();
        let codes: Vec<String> =
            (0..RECOVERY_CODES).map(|_| random::<8>().map(recovery_code)).collect::<Result<_, _>>()?;
        let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(c)).collect();
        let (t, u, typed, cookie) =
            (p.tenant.id.clone(), p.user.name.clone(), code.to_string(), session.map(str::to_string));
        let done = self
            .store
            .write(move |c| -> Result<bool, ApprovalError> {
                let pending = second_factor::pending(c, &t, &u)?.ok_or_else(|| {
                    ApprovalError::Conflict("nothing is being set up: start again from the beginning".into())
                })?;
                let secret = from_base32(&pending).ok_or_else(|| StoreError::Corrupt("users.totp_pending".into()))?;
                let Some(step) = verify(&secret, &typed, now.timestamp(), None) else {
                    let data = serde_json::json!({"during": "enrollment"});
                    audit::append(c, &t, now, &u, "second_factor_failed", None, data)?;
                    return Ok(false);
                };
                second_factor::enable(c, &t, &u, step, now, &hashes)?;
                if let Some(cookie) = &cookie {
                    second_factor::mark_session(c, cookie, now)?;
                }
                let data = serde_json::json!({"method": "totp", "recovery_codes": hashes.len()});
                audit::append(c, &t, now, &u, "second_factor_enrolled", None, data)?;
                Ok(true)
            })
            .await?;
        if done { Ok(codes) } else { Err(wrong_code()) }
    }

    /// Passes the second factor with a code (or a recovery code) for the dashboard session
    /// `cookie`: critical actions are allowed for [`STEP_UP_VALID`]. Failures count against the
    /// user like failed sign-ins.
    pub async fn step_up(
        &self,
        p: &Principal,
        cookie: &str,
        code: &str,
        from: IpAddr,
    ) -> Result<StepUpMethod, ApprovalError> {
        let now = Utc::now();
        let key = Key::user(&p.tenant.name, &p.user.name);
        let failures = match self.sign_ins.begin(std::slice::from_ref(&key), now) {
            Ok(failures) => failures,
            Err(refused) => {
                if refused.failures == LOCK_AFTER_FAILURES {
                    let until = now + chrono::TimeDelta::seconds(refused.wait_secs);
                    let (t, u) = (&p.tenant.id, &p.user.name);
                    self.account_locked(t, u, refused.failures, LockedDuring::StepUp, from, until);
                }
                return Err(ApprovalError::TooManyAttempts(refused.wait_secs));
            }
        };
        let (t, u, typed, cookie) = (p.tenant.id.clone(), p.user.name.clone(), code.to_string(), cookie.to_string());
        let method = self
            .store
            .write(move |c| -> Result<Option<StepUpMethod>, ApprovalError> {
                let enrolled = second_factor::enrolled(c, &t, &u)?
                    .ok_or_else(|| ApprovalError::Conflict("you have no second factor yet: set one up first".into()))?;
                let secret =
                    from_base32(&enrolled.secret).ok_or_else(|| StoreError::Corrupt("users.totp_secret".into()))?;
                let method = match verify(&secret, &typed, now.timestamp(), enrolled.last_step) {
                    Some(step) if second_factor::use_step(c, &t, &u, step)? => Some(StepUpMethod::Totp),
                    Some(_) => None,
                    None if second_factor::use_recovery(c, &t, &u, &recovery_hash(&typed), now)? => {
                        Some(StepUpMethod::RecoveryCode)
                    }
                    None => None,
                };
                let Some(method) = method else {
                    audit::append(
                        c,
                        &t,
                        now,
                        &u,
                        "second_factor_failed",
                        None,
                        serde_json::json!({"during": "step_up"}),
                    )?;
                    return Ok(None);
                };
                second_factor::mark_session(c, &cookie, now)?;
                let name = match method {
                    StepUpMethod::Totp => "totp",
                    StepUpMethod::RecoveryCode => "recovery_code",
                };
                audit::append(c, &t, now, &u, "second_factor_used", None, serde_json::json!({"method": name}))?;
                Ok(Some(method))
            })
            .await?;
        match method {
            Some(m) => {
                self.sign_ins.forget(&key);
                Ok(m)
            }
            None => {
                if failures == LOCK_AFTER_FAILURES {
                    let (t, u) = (&p.tenant.id, &p.user.name);
                    self.account_locked(t, u, failures, LockedDuring::StepUp, from, now + LOCK_FOR);
                }
                Err(wrong_code())
            }
        }
    }

    /// When the dashboard session `cookie` last passed the second factor, if it is still fresh.
    pub async fn fresh_step_up(&self, cookie: &str) -> Result<Option<DateTime<Utc>>, ApprovalError> {
        let c0 = cookie.to_string();
        let session = self.store.read(move |c| crate::store::sessions::find(c, &c0)).await?;
        Ok(session.and_then(|s| s.second_factor_at).filter(|t| Utc::now() - *t < STEP_UP_VALID))
    }

    /// Removes a user's second factor (admin), e.g. after a lost phone: they set up a new one.
    pub async fn reset_second_factor(&self, p: &Principal, name: &str) -> Result<(), ApprovalError> {
        require_role(p, &[roles::ADMIN], "resetting a second factor")?;
        super::access::require_step_up(p, "resetting a second factor")?;
        let (t, actor, name) = (p.tenant.id.clone(), p.user.name.clone(), name.to_string());
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                if !second_factor::reset(c, &t, &name)? {
                    return Err(ApprovalError::NotFound(format!(
                        "'{name}' has no second factor to reset; check the name"
                    )));
                }
                audit::append(
                    c,
                    &t,
                    Utc::now(),
                    &actor,
                    "second_factor_reset",
                    None,
                    serde_json::json!({"user": name}),
                )?;
                Ok(())
            })
            .await
    }
}
