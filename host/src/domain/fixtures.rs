//! Orders and contexts for the host's unit tests, so each test states only what matters to it.

use super::order::{Line, OrderInput};
use super::step::{ContextOrder, OrderContext, RequesterProfile};

/// One line of `quantity × unit_price_minor`, SKU `A`, nothing else set.
pub fn line(quantity: i64, unit_price_minor: i64) -> Line {
    Line { sku: "A".into(), description: None, quantity, unit_price_minor, tax_category: None, budget_category: None }
}

/// An EUR order with these lines and no other field set.
pub fn input(lines: Vec<Line>) -> OrderInput {
    OrderInput {
        cost_center: None,
        department: None,
        customer_id: None,
        vendor_id: None,
        currency: "EUR".parse().expect("EUR is a currency"),
        lines,
        recurrence: None,
        attributes: Default::default(),
    }
}

/// What a step sees of `input` as order `o1` of alice (role requester, no limits), no config.
pub fn context(input: &OrderInput) -> OrderContext {
    OrderContext {
        order: ContextOrder::new("o1", "alice", input),
        subtotal_minor: input.validate().expect("a valid fixture order"),
        requester: RequesterProfile {
            name: "alice".into(),
            roles: vec!["requester".into()],
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
            budget_used_minor: 0,
        },
        cost_center: None,
        customer: None,
        budgets: Vec::new(),
        config: serde_json::Value::Null,
    }
}
