//! Deciding from the e-mail: the notification that a stage opened (or escalated) for someone
//! carries approve and reject links made for them ([`crate::domain::decision_link`]). Opening a
//! link only shows what it would do (mail scanners that fetch links decide nothing); confirming
//! decides under exactly the rules of the API, in the approver's name, recorded with
//! `via: "email_link"`, and uses the link up in the same transaction. A link for an order that
//! changed since, or a used, expired or forged one changes nothing and says why.

use super::ApprovalError;
use super::Approvals;
use super::commit::persist;
use crate::domain::audit::timestamp;
use crate::domain::decision_link::{LinkClaims, LinkError, LinkKeys};
use crate::domain::delivery::{OutboxEvent, Recipient};
use crate::domain::directory::{Tenant, User};
use crate::domain::machine::{self, Command};
use crate::domain::order::Order;
use crate::domain::plan::{Verdict, Via};
use crate::store::{StoreError, decision_links, directory, orders};
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::Connection;

/// How long a link is good for unless the operator says otherwise.
pub const DEFAULT_LINK_HOURS: i64 = 72;

/// What the operator configured for decision links.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The signing keys.
    pub keys: LinkKeys,
    /// Where people reach the dashboard, e.g. `https://approvals.example.com` (no trailing `/`).
    pub public_url: String,
    /// How long a link is good for.
    pub valid_for: TimeDelta,
}

/// Why a link did not lead to a decision. Each becomes a page that says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum LinkRefusal {
    /// The host has no link keys configured.
    #[error("this Greenlight does not accept decision links: decide in the dashboard")]
    NotAccepted,
    /// Damaged, forged or expired.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Already used.
    #[error("this link was already used (at {0}); each link decides once: see the order in the dashboard")]
    Used(String),
    /// The stage was reopened since the e-mail was sent (the order was edited or resubmitted,
    /// or its approval revoked), or the order no longer has it.
    #[error(
        "the order changed since this e-mail was sent (it was edited, resubmitted or its approval revoked): nothing was done; see it in the dashboard"
    )]
    Changed,
    /// The order, the tenant or the approver no longer exists.
    #[error("the order or the person this link was made for no longer exists here")]
    Gone,
    /// The rules refuse the decision (segregation of duties, levels, a missing reason, ...).
    #[error(transparent)]
    Refused(ApprovalError),
}

impl From<StoreError> for LinkRefusal {
    fn from(e: StoreError) -> Self {
        LinkRefusal::Refused(e.into())
    }
}

impl From<ApprovalError> for LinkRefusal {
    fn from(e: ApprovalError) -> Self {
        LinkRefusal::Refused(e)
    }
}

/// What a link would decide, shown on the confirmation page.
#[derive(Debug, Clone)]
pub struct LinkedDecision {
    /// The tenant's name.
    pub tenant: String,
    /// The order as it is now (the version the link was made for).
    pub order: Order,
    /// The stage's key.
    pub stage: String,
    /// The stage's title.
    pub stage_title: String,
    /// Who decides.
    pub approver: String,
    /// Approve or reject.
    pub verdict: Verdict,
    /// Until when the link is good.
    pub expires: DateTime<Utc>,
}

/// The tenant, approver and order of a link, checked against what the store holds now.
fn resolve(c: &Connection, claims: &LinkClaims) -> Result<(Tenant, User, Order), LinkRefusal> {
    if let Some(at) = decision_links::used_at(c, &claims.nonce)? {
        return Err(LinkRefusal::Used(at));
    }
    let tenant = directory::tenant(c, &claims.tenant_id)?.ok_or(LinkRefusal::Gone)?;
    let user = directory::user(c, &tenant.id, &claims.approver)?.ok_or(LinkRefusal::Gone)?;
    let order = orders::load(c, &tenant.id, &claims.order_id)?.ok_or(LinkRefusal::Gone)?;
    // Bound to the round of the stage it was sent for: other stages' decisions, the stage's
    // escalation or a drift flag leave it usable; whether the stage is still open for this
    // approver is the state machine's to say.
    if order.plan.stage(&claims.stage).and_then(|s| s.opened_in) != Some(claims.version) {
        return Err(LinkRefusal::Changed);
    }
    // An approval the tenant counts as critical needs a second factor, which a link cannot give.
    if claims.verdict == crate::domain::plan::Verdict::Approve
        && let Some(what) = super::access::critical_approval(&tenant.policy, &order)
    {
        return Err(LinkRefusal::Refused(ApprovalError::StepUpRequired(what)));
    }
    Ok((tenant, user, order))
}

fn linked(tenant: Tenant, user: User, order: Order, claims: LinkClaims, now: DateTime<Utc>) -> LinkedDecision {
    let stage_title = order.plan.stage(&claims.stage).map(|s| s.title.clone()).unwrap_or_default();
    LinkedDecision {
        tenant: tenant.name,
        order,
        stage: claims.stage,
        stage_title,
        approver: user.name,
        verdict: claims.verdict,
        expires: DateTime::from_timestamp(claims.expires, 0).unwrap_or(now),
    }
}

fn decide(user: &User, claims: &LinkClaims, comment: Option<String>, at: DateTime<Utc>) -> Command {
    Command::Decide {
        by: user.actor(),
        on_behalf_of: None,
        stage: claims.stage.clone(),
        verdict: claims.verdict,
        comment,
        via: Some(Via::EmailLink),
        at,
    }
}

impl Approvals {
    /// The same service, putting decision links in stage notifications and honoring them.
    pub fn with_decision_links(mut self, settings: LinkSettings) -> Approvals {
        self.links = Some(std::sync::Arc::new(settings));
        self
    }

    /// Whether decision links are on.
    pub(super) fn makes_links(&self) -> bool {
        self.links.is_some()
    }

    /// The approve and reject links of each recipient who may decide the stage an event opened
    /// or escalated, as `{"user name": {"approve": URL, "reject": URL}}`, for the stage's
    /// current round (`round`: the version it opened in; none when it is no longer open);
    /// `None` when links are off or the event asks nobody to decide.
    pub(super) fn links_for(
        &self,
        tenant_id: &str,
        event: &OutboxEvent,
        round: Option<u64>,
        recipients: &[Recipient],
        now: DateTime<Utc>,
    ) -> Option<serde_json::Value> {
        let settings = self.links.as_ref()?;
        let (stage, version) = (event.stage()?, round?);
        event.deciders()?;
        let expires = (now + settings.valid_for).timestamp();
        let mut out = serde_json::Map::new();
        for name in recipients.iter().filter_map(|r| r.name.as_deref()) {
            let link = |verdict: Verdict| -> Option<String> {
                // Without randomness there is no unguessable nonce, and so no link.
                let mut nonce = [0u8; 16];
                getrandom::fill(&mut nonce).ok()?;
                let claims = LinkClaims {
                    tenant_id: tenant_id.to_string(),
                    order_id: event.order_id.clone(),
                    version,
                    stage: stage.to_string(),
                    approver: name.to_string(),
                    verdict,
                    expires,
                    nonce: hex::encode(nonce),
                };
                Some(format!("{}/decide/{}", settings.public_url, settings.keys.sign(&claims)))
            };
            out.insert(
                name.to_string(),
                serde_json::json!({"approve": link(Verdict::Approve)?, "reject": link(Verdict::Reject)?}),
            );
        }
        (!out.is_empty()).then_some(serde_json::Value::Object(out))
    }

    fn claims(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkRefusal> {
        let settings = self.links.as_ref().ok_or(LinkRefusal::NotAccepted)?;
        Ok(settings.keys.verify(token, now)?)
    }

    /// What a link would decide, checked as far as it can be without deciding: the link, the
    /// order's version, and whether the rules would let the approver decide now.
    pub async fn open_link(&self, token: &str) -> Result<LinkedDecision, LinkRefusal> {
        let now = Utc::now();
        let claims = self.claims(token, now)?;
        self.store
            .read(move |c| -> Result<LinkedDecision, LinkRefusal> {
                let (tenant, user, order) = resolve(c, &claims)?;
                // A rejection's reason is asked on the page; any text stands in for it here.
                let comment = (claims.verdict == Verdict::Reject).then(|| "reason".to_string());
                machine::apply(&order, decide(&user, &claims, comment, now), &tenant.policy)
                    .map_err(|e| LinkRefusal::Refused(e.into()))?;
                Ok(linked(tenant, user, order, claims, now))
            })
            .await
    }

    /// Decides as the link says, with the reason a rejection needs, and uses the link up: the
    /// decision, its audit entries, its notifications and the used mark commit together. The
    /// answer holds the order as the decision left it.
    pub async fn decide_by_link(&self, token: &str, reason: Option<String>) -> Result<LinkedDecision, LinkRefusal> {
        let at = Utc::now();
        let claims = self.claims(token, at)?;
        self.store
            .write(move |c| -> Result<LinkedDecision, LinkRefusal> {
                let (tenant, user, order) = resolve(c, &claims)?;
                let t = machine::apply(&order, decide(&user, &claims, reason, at), &tenant.policy)
                    .map_err(|e| LinkRefusal::Refused(e.into()))?;
                persist(c, &tenant.id, &user.name, Some(&order), &t, at, None)?;
                if !decision_links::mark_used(c, &claims.nonce, &tenant.id, &order.id, &timestamp(at))? {
                    return Err(LinkRefusal::Used(timestamp(at)));
                }
                Ok(linked(tenant, user, t.order, claims, at))
            })
            .await
    }
}
