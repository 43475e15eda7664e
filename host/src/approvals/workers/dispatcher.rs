//! The outbox dispatcher: every order event the outbox holds is fanned out to each of the
//! tenant's enabled notification channels (notifier plugins) as a delivery (an approved order also
//! to its connector, for export and credit), every tenant notice to the host's own mail relay;
//! each delivery is handed to its channel until it is accepted, retried with backoff and jitter on temporary failures,
//! and dead after the last attempt or a permanent refusal. Admins list troubled deliveries and
//! re-drive them. `serve` runs the dispatcher in the background; a crash at any point loses
//! nothing, because every step is a committed change and undelivered rows stay due.

use crate::approvals::commit::persist;
use crate::approvals::{ApprovalError, Approvals, ContextError, build_context};
use crate::domain::credit::CreditUpdate;
use crate::domain::delivery::{Announcement, Attempt, DeliveryKind, DeliveryState, HOST_MAIL, OutboxEvent};
use crate::domain::delivery::{Notification, OrderSummary, Recipient, RetryPolicy, TenantNotice};
use crate::domain::directory::User;
use crate::domain::extension::World;
use crate::domain::machine::{self, Command, Event, RELEASER};
use crate::domain::order::OrderStatus;
use crate::domain::plan::Approvers;
use crate::runtime::relay::{OutgoingMail, SendError};
use crate::store::deliveries::{self, Delivery};
use crate::store::directory;
use crate::store::orders;
use crate::store::{StoreError, audit, extensions};
use chrono::Utc;
use futures_util::StreamExt;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::time::Duration;

/// Outbox events fanned out per round.
const FAN_OUT_BATCH: usize = 200;
/// Deliveries attempted per round.
const SEND_BATCH: usize = 64;
/// Deliveries in flight at once (each may wait on a receiver for up to the I/O deadline).
const IN_FLIGHT: usize = 8;

/// Who should hear of an event: the people who may decide a stage that opened or escalated,
/// the tenant's admins of a policy drift, else the requester.
fn recipients(conn: &Connection, tenant_id: &str, event: &OutboxEvent) -> Result<Vec<Recipient>, StoreError> {
    let requester = event.requester.as_str();
    if matches!(event.details, Event::PolicyDrift { .. }) {
        let admins = directory::users_with_role(conn, tenant_id, crate::domain::actor::roles::ADMIN)?;
        return Ok(admins
            .into_iter()
            .map(|u| Recipient { name: Some(u.name), email: u.email, phone: u.phone })
            .collect());
    }
    let deciders = event.deciders();
    let mut users: Vec<User> = match deciders {
        Some(Approvers::Role { role }) => directory::users_with_role(conn, tenant_id, role.as_str())?,
        Some(Approvers::Users { users }) => {
            users.iter().filter_map(|u| directory::user(conn, tenant_id, u).transpose()).collect::<Result<_, _>>()?
        }
        Some(Approvers::CostCenterManager { manager, .. }) => {
            directory::user(conn, tenant_id, manager)?.into_iter().collect()
        }
        None => directory::user(conn, tenant_id, requester)?.into_iter().collect(),
    };
    // Nobody is told to decide their own order.
    if deciders.is_some() {
        users.retain(|u| u.name != requester);
    }
    // A customer order (R4): the customer hears of the approval or the rejection (with its
    // reason), and the account manager of the approval; both as the ERP reported them.
    let approved = matches!(event.details, Event::OrderApproved { .. });
    let decided = approved || matches!(event.details, Event::OrderRejected { .. });
    let mut customer = None;
    let ctx = if decided { orders::latest_context(conn, tenant_id, &event.order_id)? } else { None };
    if let Some(c) = ctx.as_ref().map(|c| &c["customer"]).filter(|c| c.is_object()) {
        if let Some(am) = c["account_manager"].as_str().filter(|_| approved) {
            users.extend(directory::user(conn, tenant_id, am)?.filter(|u| u.name != requester));
        }
        // E-mail only: the customer is not texted about internal approvals.
        customer =
            c["email"].as_str().map(|email| Recipient { name: None, email: Some(email.to_string()), phone: None });
    }
    let mut out: Vec<Recipient> =
        users.into_iter().map(|u| Recipient { name: Some(u.name), email: u.email, phone: u.phone }).collect();
    out.extend(customer);
    Ok(out)
}

/// The notification for one attempt of a delivery of an order's event `p`.
fn notification(
    d: &Delivery,
    p: &OutboxEvent,
    recipients: Vec<Recipient>,
    attempt_at: chrono::DateTime<Utc>,
) -> Notification {
    let details = serde_json::to_value(&p.details).unwrap_or_default();
    Notification {
        delivery_id: d.id.clone(),
        event: d.event.clone(),
        order: OrderSummary {
            id: p.order_id.clone(),
            requester: p.requester.clone(),
            status: p.status.as_str().to_string(),
            total_minor: p.total_minor,
            currency: p.currency.clone(),
            cost_center: p.cost_center.clone(),
            department: p.department.clone(),
        },
        recipients,
        stage: p.stage().map(str::to_string),
        reason: p.reason(),
        data: serde_json::json!({
            "details": details,
            "actor": p.actor,
            "occurred_at": d.created_at,
            "attempt": d.attempts + 1,
            "attempt_at": crate::domain::audit::timestamp(attempt_at),
        }),
    }
}

impl Approvals {
    /// One round of the dispatcher: fan out new outbox events, then attempt every delivery due
    /// now (several at once). Returns how many deliveries were attempted.
    pub async fn dispatch_once(&self, policy: RetryPolicy) -> Result<usize, ApprovalError> {
        let now = Utc::now();
        let events = self.store.read(|c| deliveries::unfanned(c, FAN_OUT_BATCH)).await?;
        if !events.is_empty() {
            self.store
                .write(move |c| -> Result<(), StoreError> {
                    // Per tenant: its notifiers, and its connector, which receives approved orders.
                    let mut channels: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
                    for deliveries::Unfanned { outbox_id, tenant_id, event } in &events {
                        let event = match event {
                            Announcement::Order(event) => event,
                            Announcement::Tenant(_) => {
                                let targets = [(HOST_MAIL.to_string(), DeliveryKind::Mail)];
                                deliveries::fan_out(c, *outbox_id, tenant_id, &targets, now)?;
                                continue;
                            }
                        };
                        if !channels.contains_key(tenant_id) {
                            let notifiers = extensions::settings(c, tenant_id)?
                                .into_iter()
                                .filter(|e| e.enabled && e.world == World::Notifier)
                                .map(|e| e.name)
                                .collect();
                            channels.insert(tenant_id.clone(), (notifiers, extensions::connector(c, tenant_id)?));
                        }
                        let Some((notifiers, connector)) = channels.get(tenant_id) else { continue };
                        let mut targets: Vec<(String, DeliveryKind)> =
                            notifiers.iter().map(|n| (n.clone(), DeliveryKind::Notify)).collect();
                        if let (Some(connector), Event::OrderApproved { .. }) = (connector, &event.details) {
                            targets.push((connector.clone(), DeliveryKind::Export));
                            if event.customer_id.is_some() {
                                targets.push((connector.clone(), DeliveryKind::Credit));
                            }
                        }
                        deliveries::fan_out(c, *outbox_id, tenant_id, &targets, now)?;
                    }
                    Ok(())
                })
                .await?;
        }
        let due = self.store.read(move |c| deliveries::due(c, now, SEND_BATCH)).await?;
        let attempted = due.len();
        let results: Vec<Result<(), ApprovalError>> = futures_util::stream::iter(due)
            .map(|d| self.attempt(d, policy))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(attempted)
    }

    /// Hands one delivery to its channel (or its order to the ERP) and records the outcome.
    async fn attempt(&self, d: Delivery, policy: RetryPolicy) -> Result<(), ApprovalError> {
        let payload = match (d.kind, &d.payload) {
            (DeliveryKind::Export, _) => return self.export(d, policy).await,
            (DeliveryKind::Credit, _) => return self.update_credit(d, policy).await,
            (DeliveryKind::Mail, Announcement::Tenant(notice)) => {
                let notice = notice.clone();
                return self.mail_notice(d, notice, policy).await;
            }
            (DeliveryKind::Notify, Announcement::Order(event)) => &**event,
            (kind, _) => {
                let answer = Attempt::Permanent(format!("a {} delivery cannot carry this event", kind.as_str()));
                return self.record_attempt(&d, answer, policy).await;
            }
        };
        let (tenant_id, channel) = (d.tenant_id.clone(), d.channel.clone());
        let event = payload.clone();
        // `payload` borrows the delivery, which the closure below cannot: it gets its own copy.
        let makes_links = self.makes_links();
        let (recipients, mailbox_only, round) = self
            .store
            .read(move |c| -> Result<_, StoreError> {
                // A decision link decides in its recipient's name: it goes only to channels
                // that write to each person's own mailbox (granted `mail` and nothing else),
                // never to a shared chat or a webhook.
                let grants = extensions::grants(c, &tenant_id, &channel)?;
                let mailbox_only = grants.is_some_and(|g| g.mail && g.http.is_empty());
                // The round of the stage the event asks to decide, if it is still open.
                let round = match (event.stage(), event.deciders()) {
                    (Some(stage), Some(_)) if makes_links && mailbox_only => {
                        orders::load(c, &tenant_id, &event.order_id)?.and_then(|o| {
                            o.plan.stage(stage).filter(|s| s.state.is_decidable()).and_then(|s| s.opened_in)
                        })
                    }
                    _ => None,
                };
                Ok((recipients(c, &tenant_id, &event)?, mailbox_only, round))
            })
            .await?;
        let started = Utc::now();
        let mut n = notification(&d, payload, recipients, started);
        if mailbox_only && let Some(links) = self.links_for(&d.tenant_id, payload, round, &n.recipients, started) {
            n.data["links"] = links;
        }
        let (store, runtimes) = (self.store.clone(), self.runtimes.clone());
        let (tenant_id, channel) = (d.tenant_id.clone(), d.channel.clone());
        let answer = tokio::task::spawn_blocking(move || runtimes.deliver(&store, &tenant_id, &channel, &n))
            .await
            .unwrap_or_else(|e| crate::domain::delivery::Attempt::Temporary(format!("the delivery task failed: {e}")));
        self.record_attempt(&d, answer, policy).await
    }

    /// Records how an attempt went: delivered, retried later, or dead.
    async fn record_attempt(&self, d: &Delivery, answer: Attempt, policy: RetryPolicy) -> Result<(), ApprovalError> {
        let outcome = policy.after(d.attempts, answer, Utc::now(), fastrand::u32(0..=1000));
        if let Some(e) = &outcome.error {
            tracing::warn!(delivery = %d.id, channel = %d.channel, state = outcome.state.as_str(), error = %e, "delivery attempt failed");
        }
        let id = d.id.clone();
        self.store.write(move |c| deliveries::record(c, &id, &outcome, Utc::now())).await?;
        Ok(())
    }

    /// E-mails a tenant notice to the tenant's admins through the operator's relay, with the
    /// delivery id in `X-Greenlight-Delivery` (the same on every retry). Without a relay, or
    /// with no admin who has an address, the delivery is dead with the reason: an admin sees
    /// it in the delivery list.
    async fn mail_notice(&self, d: Delivery, notice: TenantNotice, policy: RetryPolicy) -> Result<(), ApprovalError> {
        let Some(relay) = self.runtimes.host_mail() else {
            let why =
                "the host has no mail relay: start `greenlight serve` with --smtp-relay to send notices to admins";
            return self.record_attempt(&d, Attempt::Permanent(why.into()), policy).await;
        };
        let tenant_id = d.tenant_id.clone();
        let (tenant, admins) = self
            .store
            .read(move |c| -> Result<_, StoreError> {
                let tenant = directory::tenant(c, &tenant_id)?.map(|t| t.name).unwrap_or(tenant_id.clone());
                Ok((tenant, directory::users_with_role(c, &tenant_id, crate::domain::actor::roles::ADMIN)?))
            })
            .await?;
        let to: Vec<String> = admins.into_iter().filter_map(|u| u.email).collect();
        if to.is_empty() {
            let why = "no admin of the tenant has an e-mail address: give one an address";
            return self.record_attempt(&d, Attempt::Permanent(why.into()), policy).await;
        }
        let mail = OutgoingMail {
            tenant: d.tenant_id.clone(),
            plugin: None,
            delivery: Some(d.id.clone()),
            to,
            subject: notice.subject(&tenant),
            text_body: notice.text(&tenant, &d.created_at),
            html_body: None,
        };
        let sent = tokio::task::spawn_blocking(move || relay.send(mail))
            .await
            .unwrap_or_else(|e| Err(SendError::Unavailable(format!("the mail task failed: {e}"))));
        let answer = match sent {
            Ok(()) => Attempt::Delivered,
            Err(SendError::Refused(why)) => Attempt::Permanent(why),
            Err(SendError::Unavailable(why)) => Attempt::Temporary(why),
        };
        self.record_attempt(&d, answer, policy).await
    }

    /// Release through the ERP: sends the approved order to the tenant's connector and, when
    /// the ERP takes it, releases the order with the ERP's reference — the release, its audit
    /// entry, its `order_released` notification and the delivered mark in one change. An order
    /// that is no longer approved (revoked, released by hand) is not sent.
    async fn export(&self, d: Delivery, policy: RetryPolicy) -> Result<(), ApprovalError> {
        let (tenant_id, order_id) = (d.tenant_id.clone(), d.order_id.clone().unwrap_or_default());
        let now = Utc::now();
        let order = self.store.read(move |c| orders::load(c, &tenant_id, &order_id)).await?;
        let answer: Result<String, Attempt> = match order {
            Some(o) if o.status == OrderStatus::Approved => {
                let (tenant_id, o2) = (d.tenant_id.clone(), o.clone());
                match self.store.read(move |c| build_context(c, &tenant_id, &o2, now)).await {
                    Ok(ctx) => {
                        let (store, runtimes) = (self.store.clone(), self.runtimes.clone());
                        let (tenant_id, connector) = (d.tenant_id.clone(), d.channel.clone());
                        tokio::task::spawn_blocking(move || runtimes.export(&store, &tenant_id, &connector, &ctx))
                            .await
                            .unwrap_or_else(|e| Err(Attempt::Temporary(format!("the export task failed: {e}"))))
                    }
                    Err(ContextError::Store(e)) => return Err(e.into()),
                    Err(e @ ContextError::BudgetBeyondBounds(_)) => Err(Attempt::Permanent(e.to_string())),
                }
            }
            Some(o) => Err(Attempt::Permanent(format!(
                "the order is {} now, no longer approved: it was not sent to the ERP",
                o.status.as_str()
            ))),
            None => Err(Attempt::Permanent("the order no longer exists".into())),
        };
        let (external_ref, attempt) = match answer {
            Ok(r) => (Some(r), Attempt::Delivered),
            Err(a) => (None, a),
        };
        let mut outcome = policy.after(d.attempts, attempt, Utc::now(), fastrand::u32(0..=1000));
        if let Some(e) = &outcome.error {
            tracing::warn!(delivery = %d.id, connector = %d.channel, state = outcome.state.as_str(), error = %e, "export attempt failed");
        }
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                let at = Utc::now();
                if let (Some(external_ref), Some(order_id)) = (external_ref, d.order_id.as_deref()) {
                    let released = match orders::load(c, &d.tenant_id, order_id)? {
                        Some(order) => {
                            let policy = directory::tenant(c, &d.tenant_id)?.map(|t| t.policy).unwrap_or_default();
                            let cmd = Command::Exported {
                                external_ref: external_ref.clone(),
                                connector: d.channel.clone(),
                                at,
                            };
                            match machine::apply(&order, cmd, &policy) {
                                Ok(t) => {
                                    persist(c, &d.tenant_id, RELEASER, Some(&order), &t, at, None)?;
                                    Ok(())
                                }
                                Err(e) => Err(e.to_string()),
                            }
                        }
                        None => Err("the order no longer exists".to_string()),
                    };
                    if let Err(why) = released {
                        // The ERP has it, but the order moved meanwhile: an admin must reconcile.
                        outcome.state = DeliveryState::Dead;
                        outcome.error = Some(format!(
                            "the ERP took the order as {external_ref}, but it could not be released here: {why}"
                        ));
                    }
                }
                deliveries::record(c, &d.id, &outcome, at)?;
                Ok(())
            })
            .await
    }

    /// R4: books an approved customer order against the customer's credit line in the ERP. The
    /// delivery id is the idempotency key, the same on every retry. Once the ERP has booked it,
    /// the delivered mark and a `customer_credit_updated` audit entry (with the line the ERP
    /// reported) commit together. An order revoked before the update is not booked.
    async fn update_credit(&self, d: Delivery, policy: RetryPolicy) -> Result<(), ApprovalError> {
        let (tenant_id, order_id) = (d.tenant_id.clone(), d.order_id.clone().unwrap_or_default());
        let order = self.store.read(move |c| orders::load(c, &tenant_id, &order_id)).await?;
        let update = match order {
            Some(o) if matches!(o.status, OrderStatus::Approved | OrderStatus::Released) => {
                match o.input.customer_id.clone() {
                    Some(customer_id) => Ok(CreditUpdate {
                        customer_id,
                        order_id: o.id.clone(),
                        amount_minor: o.total_minor(),
                        currency: o.input.currency.to_string(),
                        idempotency_key: d.id.clone(),
                    }),
                    None => Err(Attempt::Permanent("the order names no customer; there is no credit to book".into())),
                }
            }
            Some(o) => Err(Attempt::Permanent(format!(
                "the order is {} now, no longer approved: its credit was not booked",
                o.status.as_str()
            ))),
            None => Err(Attempt::Permanent("the order no longer exists".into())),
        };
        let answer = match update {
            Ok(update) => {
                let (store, runtimes) = (self.store.clone(), self.runtimes.clone());
                let (tenant_id, connector) = (d.tenant_id.clone(), d.channel.clone());
                let u = update.clone();
                tokio::task::spawn_blocking(move || runtimes.update_credit(&store, &tenant_id, &connector, &u))
                    .await
                    .unwrap_or_else(|e| Err(Attempt::Temporary(format!("the credit update task failed: {e}"))))
                    .map(|line| (update, line))
            }
            Err(a) => Err(a),
        };
        let (booked, attempt) = match answer {
            Ok(booked) => (Some(booked), Attempt::Delivered),
            Err(a) => (None, a),
        };
        let outcome = policy.after(d.attempts, attempt, Utc::now(), fastrand::u32(0..=1000));
        if let Some(e) = &outcome.error {
            tracing::warn!(delivery = %d.id, connector = %d.channel, state = outcome.state.as_str(), error = %e, "credit update attempt failed");
        }
        self.store
            .write(move |c| -> Result<(), ApprovalError> {
                let at = Utc::now();
                if let Some((update, line)) = booked {
                    let data = serde_json::json!({
                        "customer_id": update.customer_id,
                        "amount_minor": update.amount_minor,
                        "currency": update.currency,
                        "connector": d.channel,
                        "delivery": d.id,
                        "credit_line": line,
                    });
                    audit::append(
                        c,
                        &d.tenant_id,
                        at,
                        RELEASER,
                        "customer_credit_updated",
                        Some(&update.order_id),
                        data,
                    )?;
                }
                deliveries::record(c, &d.id, &outcome, at)?;
                Ok(())
            })
            .await
    }

    /// Runs the dispatcher for as long as the server runs: a round every `every`, or at once
    /// again while there is a backlog. A failed round is logged and retried.
    pub async fn run_dispatcher(self, policy: RetryPolicy, every: Duration) {
        loop {
            match self.dispatch_once(policy).await {
                Ok(n) if n >= SEND_BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a dispatch round failed; retrying at the next interval"),
            }
            tokio::time::sleep(every).await;
        }
    }
}
