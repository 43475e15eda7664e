//! Deliveries: outbox events fanned out to notification channels, and the state of each.
//! Fanning out and recording an attempt are each one change, so a crash at any point leaves
//! either the old or the new state: an event is never lost and, after a crash mid-send, is
//! sent again under the same delivery id.

use super::{StoreError, from_json};
use crate::domain::audit::timestamp;
use crate::domain::delivery::{Announcement, DeliveryKind, DeliveryState, Outcome};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

/// One delivery, with the event it carries.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Delivery id; the same on every attempt, for the receiver to de-duplicate on.
    pub id: String,
    /// The notification channel (a notifier plugin's name), the connector of an export or
    /// credit update, or `host:mail` (the host's relay) for a tenant notice.
    pub channel: String,
    /// `notify` (a notification), `export` (an approved order sent to the ERP), `credit` (an
    /// approved customer order booked against the customer's credit line in the ERP, R4) or
    /// `mail` (a notice about the tenant e-mailed to its admins by the host).
    pub kind: DeliveryKind,
    /// The event: `order_submitted`, `stage_opened`, ...
    pub event: String,
    /// The order, if the event is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last attempt's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: String,
    /// When the channel accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// Tenant (not shown: the caller's own).
    #[serde(skip)]
    pub tenant_id: String,
    /// What the outbox row announces (not shown in lists).
    #[serde(skip)]
    pub payload: Announcement,
}

const COLUMNS: &str = "d.id, d.channel, o.event, o.order_id, d.state, d.attempts, d.next_attempt_at, d.last_error,
    o.created_at, d.delivered_at, d.tenant_id, o.payload, d.kind";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Result<Delivery, StoreError>> {
    let (state, kind, payload): (String, String, String) = (r.get(4)?, r.get(12)?, r.get(11)?);
    let (id, channel, event, order_id): (_, _, _, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    let order_id_present = order_id.is_some();
    let (attempts, next_attempt_at, last_error) = (r.get(5)?, r.get(6)?, r.get(7)?);
    let (created_at, delivered_at, tenant_id) = (r.get(8)?, r.get(9)?, r.get(10)?);
    Ok((|| {
        Ok(Delivery {
            id,
            channel,
            kind: DeliveryKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("deliveries.kind: unknown kind '{kind}'")))?,
            event,
            order_id,
            state: DeliveryState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("deliveries.state: unknown state '{state}'")))?,
            attempts,
            next_attempt_at,
            last_error,
            created_at,
            delivered_at,
            tenant_id,
            payload: announcement(order_id_present, &payload)?,
        })
    })())
}

/// An outbox row's payload: an order's event, or (a row without an order) a tenant notice.
fn announcement(about_an_order: bool, payload: &str) -> Result<Announcement, StoreError> {
    Ok(if about_an_order {
        Announcement::Order(Box::new(from_json("outbox.payload", payload)?))
    } else {
        Announcement::Tenant(from_json("outbox.payload", payload)?)
    })
}

/// Outbox events not yet fanned out, oldest first.
pub fn unfanned(conn: &Connection, limit: usize) -> Result<Vec<Unfanned>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, order_id IS NOT NULL, payload FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))?;
    rows.map(|r| {
        let (outbox_id, tenant_id, about_an_order, payload) = r?;
        Ok(Unfanned { outbox_id, tenant_id, event: announcement(about_an_order, &payload)? })
    })
    .collect()
}

/// An outbox event not yet fanned out to its channels.
#[derive(Debug, Clone)]
pub struct Unfanned {
    /// The outbox row.
    pub outbox_id: i64,
    /// Its tenant.
    pub tenant_id: String,
    /// What happened.
    pub event: Announcement,
}

/// Creates one delivery per (channel, kind) for an outbox event (each with a fresh id) and
/// marks the event fanned out. An event with no channel is simply marked. Idempotent per
/// (event, channel, kind).
pub fn fan_out(
    conn: &Connection,
    outbox_id: i64,
    tenant_id: &str,
    channels: &[(String, DeliveryKind)],
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let now = timestamp(at);
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (id, outbox_id, tenant_id, channel, kind, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    let mut n = 0;
    for (channel, kind) in channels {
        n +=
            ins.execute(params![uuid::Uuid::now_v7().to_string(), outbox_id, tenant_id, channel, kind.as_str(), now])?;
    }
    conn.prepare_cached("UPDATE outbox SET state = 'fanned' WHERE id = ?1")?.execute([outbox_id])?;
    Ok(n)
}

/// Pending deliveries due at `now`, oldest due first.
pub fn due(conn: &Connection, now: DateTime<Utc>, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at, d.id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![timestamp(now), limit as i64], from_row)?;
    rows.map(|r| r?).collect()
}

/// Records an attempt's outcome.
pub fn record(conn: &Connection, id: &str, outcome: &Outcome, at: DateTime<Utc>) -> Result<(), StoreError> {
    let delivered = (outcome.state == DeliveryState::Delivered).then(|| timestamp(at));
    let next = outcome.next_attempt_at.map(timestamp).unwrap_or_else(|| timestamp(at));
    conn.prepare_cached(
        "UPDATE deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5,
         delivered_at = COALESCE(?6, delivered_at) WHERE id = ?1",
    )?
    .execute(params![id, outcome.state.as_str(), outcome.attempts, next, outcome.error, delivered])?;
    Ok(())
}

/// Which deliveries an admin lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Failed at least once and not delivered: retrying or dead (the default view).
    Troubled,
    /// Retrying: pending after a failed attempt.
    Failed,
    /// In one state.
    State(DeliveryState),
}

/// A tenant's deliveries, newest first, after the id `before` when paging.
pub fn list(
    conn: &Connection,
    tenant_id: &str,
    which: Listing,
    limit: usize,
    before: Option<&str>,
) -> Result<Vec<Delivery>, StoreError> {
    let filter = match which {
        Listing::Troubled => "((d.state = 'pending' AND d.attempts > 0) OR d.state = 'dead')".to_string(),
        Listing::Failed => "(d.state = 'pending' AND d.attempts > 0)".to_string(),
        Listing::State(s) => format!("d.state = '{}'", s.as_str()),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries d JOIN outbox o ON o.id = d.outbox_id
         WHERE d.tenant_id = ?1 AND {filter} AND (?2 IS NULL OR d.id < ?2) ORDER BY d.id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![tenant_id, before, limit as i64], from_row)?;
    rows.map(|r| r?).collect()
}

/// One delivery of a tenant.
pub fn get(conn: &Connection, tenant_id: &str, id: &str) -> Result<Option<Delivery>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM deliveries d JOIN outbox o ON o.id = d.outbox_id WHERE d.tenant_id = ?1 AND d.id = ?2"
    ))?
    .query_row(params![tenant_id, id], from_row)
    .optional()?
    .transpose()
}

/// Re-drives a dead or retrying delivery: pending, due now, with a fresh set of attempts. The
/// delivery id stays, so a receiver that did get an earlier attempt can tell.
pub fn redrive(conn: &Connection, tenant_id: &str, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?3
             WHERE tenant_id = ?1 AND id = ?2 AND state <> 'delivered'",
        )?
        .execute(params![tenant_id, id, timestamp(at)])?;
    Ok(n == 1)
}
