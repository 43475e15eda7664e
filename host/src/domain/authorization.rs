//! The customer authorization certificate (R4): when an order placed for a customer is approved,
//! the host issues a record of who authorized what, for whom, on which grounds. Its SHA-256 goes
//! into the audit chain, so a certificate shown later can be proven unchanged.

use super::order::Order;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One approval that led to the authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// The stage.
    pub stage: String,
    /// Who approved.
    pub by: String,
    /// The absent approver, under a delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// When, in UTC.
    pub at: DateTime<Utc>,
}

/// An authorization certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Authorization {
    /// Certificate id.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// The customer.
    pub customer_id: String,
    /// The customer's name as the ERP reported it, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The requester.
    pub requester: String,
    /// Total authorized, tax included, in minor units.
    pub total_minor: i64,
    /// Tax in the total.
    pub tax_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Risk flags the order carried (codes).
    pub flags: Vec<String>,
    /// The approvals, stage by stage.
    pub approvals: Vec<Approval>,
    /// When the order was approved, in UTC.
    pub approved_at: DateTime<Utc>,
    /// SHA-256 (hex) of the certificate's other fields, as canonical JSON.
    pub sha256: String,
}

impl Authorization {
    /// Issues the certificate of an approved customer order; `None` for any other order.
    pub fn issue(id: String, order: &Order, customer_name: Option<String>, at: DateTime<Utc>) -> Option<Authorization> {
        let customer_id = order.input.customer_id.clone()?;
        let approvals = order
            .plan
            .stages
            .iter()
            .flat_map(|s| {
                s.decisions.iter().map(|d| Approval {
                    stage: s.key.clone(),
                    by: d.by.clone(),
                    on_behalf_of: d.on_behalf_of.clone(),
                    at: d.at,
                })
            })
            .collect();
        let mut a = Authorization {
            id,
            order_id: order.id.clone(),
            customer_id,
            customer_name,
            requester: order.requester.clone(),
            total_minor: order.total_minor(),
            tax_minor: order.tax_minor(),
            currency: order.input.currency.to_string(),
            flags: order.flags.iter().map(|f| f.code.clone()).collect(),
            approvals,
            approved_at: order.approved_at.unwrap_or(at),
            sha256: String::new(),
        };
        a.sha256 = a.digest();
        Some(a)
    }

    /// The SHA-256 of every field but `sha256`, over canonical JSON (sorted keys).
    pub fn digest(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("sha256");
        }
        hex::encode(Sha256::digest(v.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::domain::order::OrderInput;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().expect("valid time")
    }

    #[test]
    fn only_customer_orders_get_a_certificate_and_its_hash_covers_every_field() {
        let plain =
            Order::new_draft("o1".into(), "alice".into(), fixtures::input(vec![fixtures::line(2, 500)]), 1000, at());
        assert!(Authorization::issue("a1".into(), &plain, None, at()).is_none());
        let input = OrderInput { customer_id: Some("C-1".into()), ..fixtures::input(vec![fixtures::line(2, 500)]) };
        let order = Order::new_draft("o2".into(), "alice".into(), input, 1000, at());
        let a = Authorization::issue("a2".into(), &order, Some("Globex".into()), at()).expect("issued");
        assert_eq!((a.customer_id.as_str(), a.total_minor), ("C-1", 1000));
        assert_eq!(a.sha256, a.digest());
        let mut forged = a.clone();
        forged.total_minor = 1;
        assert_ne!(forged.digest(), a.sha256, "changing the amount changes the hash");
    }
}
