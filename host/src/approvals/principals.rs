//! Who a bearer token belongs to, remembered briefly: every API request needs it, and finding it
//! takes three queries. An entry lives [`PRINCIPAL_TTL`] and is dropped at once when this host
//! changes what it holds (a tenant's settings); a change made elsewhere (the command line,
//! another host) shows within the TTL. Unknown tokens are never remembered.

use crate::domain::directory::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a resolved token is trusted without asking the store again.
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(2);

/// Most tokens remembered; past it, the table starts afresh.
const MAX_ENTRIES: usize = 10_000;

/// Resolved tokens, by the SHA-256 of the token (the form the store keeps), and a generation
/// that every forgetting moves on.
#[derive(Default)]
pub(super) struct Principals {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
    generation: AtomicU64,
}

impl Principals {
    /// The principal of a token hash, if resolved within the TTL.
    pub(super) fn get(&self, hash: &str) -> Option<Principal> {
        let map = self.entries.lock().ok()?;
        map.get(hash).filter(|(_, at)| at.elapsed() < PRINCIPAL_TTL).map(|(p, _)| p.clone())
    }

    /// Where forgetting stands; read before looking a token up in the store.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a token resolved after [`Principals::generation`] gave `seen`, unless
    /// something was forgotten since (the store may have answered with what was then changed).
    pub(super) fn put(&self, hash: String, p: Principal, seen: u64) {
        if let Ok(mut map) = self.entries.lock() {
            if self.generation.load(Ordering::Acquire) != seen {
                return;
            }
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(hash, (p, Instant::now()));
        }
    }

    /// Forgets every token of a tenant (its settings changed).
    pub(super) fn forget_tenant(&self, tenant_id: &str) {
        if let Ok(mut map) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            map.retain(|_, (p, _)| p.tenant.id != tenant_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::approvals::{Approvals, SettingsUpdate};
    use crate::runtime::Runtimes;
    use crate::store::{Store, StoreOptions};

    #[tokio::test]
    async fn a_remembered_token_sees_its_tenants_new_settings_at_once_and_unknown_tokens_are_not_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path().join("p.db"), StoreOptions::default()).expect("store");
        let approvals = Approvals::new(store, Runtimes::new().expect("runtimes"));
        let (_, token) = approvals.create_tenant("acme").await.expect("tenant");
        let admin = approvals.authenticate(&token).await.expect("auth").expect("admin");
        let before = admin.tenant.policy.one_stage_per_person;
        assert!(approvals.principals.get(&crate::store::directory::token_hash(&token)).is_some(), "remembered");
        let update = SettingsUpdate { one_stage_per_person: Some(!before), ..SettingsUpdate::default() };
        approvals.update_settings(&admin, update).await.expect("settings");
        let again = approvals.authenticate(&token).await.expect("auth").expect("admin");
        assert_eq!(again.tenant.policy.one_stage_per_person, !before, "the change shows at once");
        assert!(approvals.authenticate("glt_unknown").await.expect("auth").is_none());
        assert!(approvals.principals.get(&crate::store::directory::token_hash("glt_unknown")).is_none());
    }
}
