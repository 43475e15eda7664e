//! Attachments (R9): whoever may see an order may attach documents to it and read them; nothing
//! attached is ever removed. A document, its attachment and its `attachment_added` audit entry
//! commit in one change.

use super::access::{acting_for, may_see};
use super::{ApprovalError, Approvals, invalid, not_found_order};
use crate::domain::attachment::{Attachment, content_type, sanitize_filename};
use crate::domain::audit::timestamp;
use crate::domain::directory::Principal;
use crate::store::attachments::{self, BlobCheck};
use crate::store::{audit, orders};
use chrono::Utc;
use sha2::{Digest, Sha256};

/// The largest document accepted unless the operator says otherwise: 25 MiB.
pub const DEFAULT_ATTACHMENT_LIMIT: usize = 25 * 1024 * 1024;

impl Approvals {
    /// The largest document accepted, in bytes.
    pub fn attachment_limit(&self) -> usize {
        self.attachment_limit
    }

    /// Attaches a document to an order the caller may see. The same document attached again
    /// changes nothing; the answer says whether it was new.
    pub async fn add_attachment(
        &self,
        p: &Principal,
        order_id: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<(Attachment, bool), ApprovalError> {
        let filename = sanitize_filename(filename).map_err(|e| invalid("filename", e.to_string()))?;
        if bytes.is_empty() {
            return Err(invalid("body", "the document is empty: send its bytes as the request body"));
        }
        if bytes.len() > self.attachment_limit {
            return Err(invalid("body", format!("the document is larger than {} bytes", self.attachment_limit)));
        }
        let at = Utc::now();
        let attachment = Attachment {
            sha256: hex::encode(Sha256::digest(&bytes)),
            content_type: content_type(&filename, &bytes).to_string(),
            filename,
            size: bytes.len() as u64,
            added_by: p.user.name.clone(),
            added_at: timestamp(at),
        };
        let (caller, id, a) = (p.clone(), order_id.to_string(), attachment.clone());
        self.store
            .write(move |c| -> Result<(Attachment, bool), ApprovalError> {
                let tenant_id = &caller.tenant.id;
                let acting = acting_for(c, &caller, at)?;
                orders::load(c, tenant_id, &id)?
                    .filter(|o| may_see(&caller, o, &acting))
                    .ok_or_else(|| not_found_order(&id))?;
                attachments::put_blob(c, &a.sha256, &bytes)?;
                if !attachments::attach(c, tenant_id, &id, &a)? {
                    let existing = attachments::for_order(c, tenant_id, &id)?
                        .into_iter()
                        .find(|e| e.sha256 == a.sha256)
                        .unwrap_or(a);
                    return Ok((existing, false));
                }
                let data = serde_json::json!({
                    "sha256": a.sha256, "filename": a.filename, "size": a.size, "content_type": a.content_type,
                });
                audit::append(c, tenant_id, at, &caller.user.name, "attachment_added", Some(&id), data)?;
                Ok((a, true))
            })
            .await
    }

    /// The documents attached to an order the caller may see.
    pub async fn attachments(&self, p: &Principal, order_id: &str) -> Result<Vec<Attachment>, ApprovalError> {
        let order = self.load_visible(p, order_id).await?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| attachments::for_order(c, &tenant_id, &order.id)).await?)
    }

    /// One attached document with its bytes.
    pub async fn attachment(
        &self,
        p: &Principal,
        order_id: &str,
        sha256: &str,
    ) -> Result<(Attachment, Vec<u8>), ApprovalError> {
        let order = self.load_visible(p, order_id).await?;
        let (tenant_id, sha) = (p.tenant.id.clone(), sha256.to_string());
        self.store
            .read(move |c| attachments::get(c, &tenant_id, &order.id, &sha))
            .await?
            .ok_or_else(|| ApprovalError::NotFound(format!("order {order_id} has no attachment {sha256}")))
    }

    /// Rehashes every document attached to the tenant's orders (auditor or admin).
    pub async fn verify_documents(&self, p: &Principal) -> Result<BlobCheck, ApprovalError> {
        super::access::require_role(
            p,
            &[crate::domain::actor::roles::AUDITOR, crate::domain::actor::roles::ADMIN],
            "verifying documents",
        )?;
        let tenant_id = p.tenant.id.clone();
        Ok(self.store.read(move |c| attachments::verify_blobs(c, &tenant_id)).await?)
    }
}
