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
}
