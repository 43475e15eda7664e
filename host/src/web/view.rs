//! What the pages show of the domain: the navigation of the signed-in user, amounts in their
//! currency, statuses and stage states as words, and the bars of a chart.

use crate::domain::actor::roles;
use crate::domain::directory::Principal;
use crate::domain::money::{Currency, Minor};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::plan::{Approvers, StageState};
use chrono::{DateTime, Utc};

/// The header of every page: who is signed in, what they may open, and the form token.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// The user's name; empty when nobody is signed in.
    pub user: String,
    /// The tenant's name.
    pub tenant: String,
    /// The form token for this session.
    pub csrf: String,
    /// Whether the user may read the audit chain and reports.
    pub oversees: bool,
    /// Whether the user administers the tenant.
    pub admin: bool,
    /// Which page is open (for `aria-current`).
    pub current: &'static str,
}

impl Nav {
    /// The header for someone not signed in.
    pub fn anonymous() -> Nav {
        Nav::default()
    }

    /// The header for a signed-in user on page `current`.
    pub fn of(p: &Principal, csrf: &str, current: &'static str) -> Nav {
        let has = |r: &str| p.user.roles.iter().any(|h| h.as_str() == r);
        Nav {
            user: p.user.name.clone(),
            tenant: p.tenant.name.clone(),
            csrf: csrf.to_string(),
            oversees: has(roles::AUDITOR) || has(roles::ADMIN),
            admin: has(roles::ADMIN),
            current,
        }
    }

    /// `aria-current="page"` for the open page's link.
    pub fn is(&self, page: &str) -> bool {
        self.current == page
    }
}

/// An amount for people.
pub fn money(currency: Currency, amount: Minor) -> String {
    currency.format(amount)
}

/// A status as words.
pub fn status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Draft => "Draft",
        OrderStatus::PendingApproval => "Pending approval",
        OrderStatus::Approved => "Approved",
        OrderStatus::Released => "Released",
        OrderStatus::Rejected => "Rejected",
        OrderStatus::Withdrawn => "Withdrawn",
        OrderStatus::OnHold => "On hold",
    }
}

/// A stage state as words.
pub fn stage_state(s: StageState) -> &'static str {
    match s {
        StageState::Waiting => "Waiting",
        StageState::Open => "Open",
        StageState::Approved => "Approved",
        StageState::Rejected => "Rejected",
        StageState::Escalated => "Escalated",
    }
}

/// Who may decide a stage, as words.
pub fn approvers(a: &Approvers) -> String {
    match a {
        Approvers::Role { role } => format!("role {role}"),
        Approvers::Users { users } => users.join(", "),
        Approvers::CostCenterManager { manager, .. } => format!("{manager} (cost center manager)"),
    }
}

/// A time for people, in UTC to the minute.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One row of the inbox or the request view.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Order id.
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// What, in a few words (the first line's description or SKU).
    pub summary: String,
    /// Total with currency.
    pub total: String,
    /// Status as words.
    pub status: &'static str,
    /// Cost center, or empty.
    pub cost_center: String,
    /// Department, or empty.
    pub department: String,
    /// Created, for people.
    pub created: String,
    /// The earliest due time of an undecided stage, for people, or empty.
    pub due: String,
    /// Whether that time has passed.
    pub overdue: bool,
    /// The stages the viewer may decide now (inbox only).
    pub stages: Vec<String>,
}

impl OrderRow {
    /// The row of an order, as seen at `now`.
    pub fn of(o: &Order, now: DateTime<Utc>) -> OrderRow {
        let first = o.input.lines.first();
        let summary = first.map(|l| l.description.clone().unwrap_or_else(|| l.sku.clone())).unwrap_or_default();
        let more = o.input.lines.len().saturating_sub(1);
        let due = o.next_due_at();
        OrderRow {
            id: o.id.clone(),
            requester: o.requester.clone(),
            summary: if more > 0 { format!("{summary} and {more} more") } else { summary },
            total: money(o.input.currency, o.total_minor()),
            status: status(o.status),
            cost_center: o.input.cost_center.clone().unwrap_or_default(),
            department: o.input.department.clone().unwrap_or_default(),
            created: when(o.created_at),
            due: due.map(when).unwrap_or_default(),
            overdue: due.is_some_and(|d| d <= now),
            stages: Vec::new(),
        }
    }
}

/// A bar of an SVG bar chart, laid out in a 600 × 240 view box.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The label under the bar.
    pub label: String,
    /// The value, as shown in the table beside the chart.
    pub value: i64,
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
}

/// Lays out bars for `(label, value)` pairs: equal widths, heights proportional to the largest
/// value, in integer coordinates of a 600 × 240 view box (200 for the bars, 40 for labels).
pub fn bars(data: &[(String, i64)]) -> Vec<Bar> {
    let n = data.len().max(1) as i64;
    let max = data.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let slot = 600 / n;
    data.iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let height = (*value).max(0) * 200 / max;
            Bar {
                label: label.clone(),
                value: *value,
                x: i as i64 * slot + slot / 8,
                y: 200 - height,
                width: (slot * 3 / 4).max(1),
                height,
            }
        })
        .collect()
}

/// A line as the order pages show it.
pub struct LineView {
    pub sku: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price: String,
    pub amount: String,
    pub budget_category: String,
}

impl LineView {
    /// The lines of an order, amounts in its currency.
    pub fn of(o: &Order) -> Vec<LineView> {
        let c = o.input.currency;
        o.input
            .lines
            .iter()
            .map(|l| LineView {
                sku: l.sku.clone(),
                description: l.description.clone().unwrap_or_default(),
                quantity: l.quantity,
                unit_price: money(c, l.unit_price_minor),
                amount: money(c, l.quantity.saturating_mul(l.unit_price_minor)),
                budget_category: l.budget_category.clone().unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_the_box_in_proportion() {
        let b = bars(&[("a".into(), 10), ("b".into(), 5), ("c".into(), 0)]);
        assert_eq!((b[0].height, b[0].y), (200, 0));
        assert_eq!((b[1].height, b[1].y), (100, 100));
        assert_eq!(b[2].height, 0);
        assert_eq!(b[1].x, 200 + 25);
        assert!(bars(&[]).is_empty());
    }
}
