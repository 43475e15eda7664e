//! Building contexts for native unit tests of plugin logic (`cargo test`, no WebAssembly).

use crate::*;

/// A one-line order of `quantity × unit_price_minor` EUR by `alice`, with no limits.
pub fn context(quantity: i64, unit_price_minor: i64) -> OrderContext {
    OrderContext {
        order: Order {
            id: "test-order".into(),
            requester: "alice".into(),
            cost_center: None,
            department: None,
            customer_id: None,
            vendor_id: None,
            currency: "EUR".into(),
            lines: vec![Line {
                sku: "SKU-1".into(),
                description: None,
                quantity,
                unit_price_minor,
                line_total_minor: quantity * unit_price_minor,
                tax_category: None,
                budget_category: None,
            }],
            recurrence: None,
            attributes_json: "{}".into(),
        },
        subtotal_minor: quantity * unit_price_minor,
        requester: RequesterProfile {
            name: "alice".into(),
            roles: vec!["requester".into()],
            spend_limit_minor: None,
            budget_minor: None,
            budget_period: None,
            budget_used_minor: 0,
        },
        cost_center: None,
        config_json: "{}".into(),
    }
}

/// The same context with a configuration.
pub fn with_config(mut ctx: OrderContext, config: serde_json::Value) -> OrderContext {
    ctx.config_json = config.to_string();
    ctx
}

/// The context with the order on cost center `code`, managed by `manager`, no budget: what the
/// host passes for an order on a known cost center.
pub fn on_cost_center(mut ctx: OrderContext, code: &str, manager: &str) -> OrderContext {
    ctx.order.cost_center = Some(code.into());
    ctx.cost_center = Some(CostCenterProfile {
        code: code.into(),
        manager: manager.into(),
        budget_minor: None,
        budget_used_minor: 0,
    });
    ctx
}

/// Sets what [`crate::records`] returns on this thread, for native tests of steps that read the
/// connector's data (each test runs on its own thread, so tests do not see each other's).
#[cfg(all(feature = "step", not(target_arch = "wasm32")))]
pub fn with_records(records: crate::records::Records) {
    crate::records::native::set(records);
}

/// A customer profile with a credit limit in EUR, for [`with_records`].
pub fn customer(id: &str, credit_limit_minor: Option<i64>) -> CustomerProfile {
    CustomerProfile {
        id: id.into(),
        name: format!("Customer {id}"),
        email: None,
        phone: None,
        credit_limit_minor,
        currency: Some("EUR".into()),
        account_manager: None,
    }
}

/// An unpaid EUR invoice, for [`with_records`].
pub fn invoice(id: &str, amount_minor: i64) -> OpenInvoice {
    OpenInvoice { id: id.into(), amount_minor, currency: "EUR".into(), due_date: "2026-12-31".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_compose() {
        let out = StepOutput::proceed()
            .stage(Stage::new("x", Approvers::Role("executive".into()), "why").level(3))
            .flag("big", Severity::High, "large");
        assert_eq!(out.stages[0].level, 3);
        assert_eq!(out.flags.len(), 1);
        let ctx = with_config(context(2, 50), serde_json::json!({"threshold_minor": 7, "names": ["a"]}));
        assert_eq!(ctx.config_i64("threshold_minor"), Some(7));
        assert_eq!(ctx.config_strings("names"), vec!["a".to_string()]);
        assert_eq!(ctx.subtotal_minor, 100);
    }

    #[cfg(feature = "step")]
    #[test]
    fn records_set_by_a_test_are_what_a_step_reads() {
        assert!(crate::records::customer().is_none());
        with_records(crate::records::Records {
            customer: Some(customer("c-1", Some(10_000))),
            open_invoices: vec![
                invoice("i-1", 700),
                invoice("i-2", 300),
                OpenInvoice { currency: "USD".into(), ..invoice("i-3", 5) },
            ],
            budgets: Vec::new(),
        });
        assert_eq!(crate::records::customer().and_then(|c| c.credit_limit_minor), Some(10_000));
        assert_eq!(crate::records::open_debt_minor("EUR"), 1_000);
    }
}
