//! What the operator does from the command line, holding the database file: host-wide tasks
//! (every tenant's audit chain, the plugin catalog) and a tenant's extension settings without
//! signing in as one of its users. The audit trail names the operator `greenlight:operator`.

use super::{ApprovalError, Approvals, BlobCheck, ExtensionUpdate};
use crate::domain::audit::{AuditEntry, VerifyReport};
use crate::domain::directory::Tenant;
use crate::store::audit;
use crate::store::directory;
use crate::store::extensions::ExtensionSetting;
use crate::store::plugins::{self, PluginRecord};

/// The name the audit trail shows for what the operator does. Not a valid user name, so no
/// person can be mistaken for it.
pub const OPERATOR: &str = "greenlight:operator";

impl Approvals {
    /// Every tenant, by name.
    pub async fn tenants(&self) -> Result<Vec<(String, String)>, ApprovalError> {
        Ok(self.store.read(directory::tenant_ids).await?)
    }

    /// The tenant of this name.
    pub async fn tenant_named(&self, name: &str) -> Result<Tenant, ApprovalError> {
        let n = name.to_string();
        self.store
            .read(move |c| directory::tenant_by_name(c, &n))
            .await?
            .ok_or_else(|| ApprovalError::NotFound(format!("no tenant named '{name}'")))
    }

    /// Verifies one tenant's audit chain.
    pub async fn verify_audit_of(&self, tenant_id: &str) -> Result<VerifyReport, ApprovalError> {
        let t = tenant_id.to_string();
        Ok(self.store.read(move |c| audit::verify(c, &t)).await?)
    }

    /// Rehashes every document attached to one tenant's orders.
    pub async fn verify_documents_of(&self, tenant_id: &str) -> Result<BlobCheck, ApprovalError> {
        let t = tenant_id.to_string();
        Ok(self.store.read(move |c| crate::store::attachments::verify_blobs(c, &t)).await?)
    }

    /// A page of one tenant's audit chain, after `after_seq`.
    pub async fn audit_page_of(
        &self,
        tenant_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ApprovalError> {
        let t = tenant_id.to_string();
        Ok(self.store.read(move |c| audit::page(c, &t, after_seq, limit)).await?)
    }

    /// The installed plugins, current versions.
    pub async fn installed_plugins(&self) -> Result<Vec<PluginRecord>, ApprovalError> {
        Ok(self.store.read(plugins::current).await?)
    }

    /// Sets a tenant's use of an extension as the operator, with the checks an admin's change
    /// gets (`PUT /v1/admin/extensions/{name}`).
    pub async fn configure_extension_as_operator(
        &self,
        tenant: &str,
        name: &str,
        body: ExtensionUpdate,
    ) -> Result<ExtensionSetting, ApprovalError> {
        let tenant = self.tenant_named(tenant).await?;
        self.configure_extension(&tenant.id, OPERATOR, name, body).await
    }
}
