//! Customer credit check (R4), a WASM step that reads the tenant's ERP through the plugin API
//! 1.1 `records` interface: the customer's credit limit and unpaid invoices, as the connector
//! reported them before the chain ran. An order for a customer whose available credit (limit
//! minus unpaid invoices in the order's currency) does not cover the order is flagged and goes
//! to a credit review stage; an order without a customer, or for a customer without a credit
//! limit, passes untouched.

use greenlight_plugin_api::*;

/// The step.
pub struct CustomerCredit;

impl ApprovalStep for CustomerCredit {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let Some(customer) = records::customer() else { return Ok(StepOutput::proceed()) };
        let Some(limit) = customer.credit_limit_minor else { return Ok(StepOutput::proceed()) };
        let currency = &ctx.order.currency;
        if customer.currency.as_ref().is_some_and(|c| c != currency) {
            return Err(StepError::InvalidInput(format!(
                "customer {}'s credit limit is in {}, the order in {currency}: the credit check needs one currency",
                customer.id,
                customer.currency.unwrap_or_default()
            )));
        }
        let debt = records::open_debt_minor(currency);
        let available = limit.saturating_sub(debt);
        if ctx.subtotal_minor <= available {
            return Ok(StepOutput::proceed());
        }
        let role = ctx.config_str("role").unwrap_or_else(|| "finance".into());
        let level = ctx.config_i64("level").unwrap_or(2);
        let level = u32::try_from(level)
            .map_err(|_| StepError::InvalidInput(format!("level must be 1 to 100, got {level}")))?;
        let why = format!(
            "the order ({}) exceeds {}'s available credit of {available} (limit {limit}, unpaid invoices {debt})",
            ctx.subtotal_minor, customer.name
        );
        Ok(StepOutput::proceed().flag("customer-credit-exceeded", Severity::Warning, &why).stage(
            Stage::new("credit-review", Approvers::Role(role), why).title("Customer credit review").level(level),
        ))
    }
}

export_step!(CustomerCredit);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::records::Records;
    use greenlight_plugin_api::testing::{context, customer, invoice, with_records};

    fn customer_order(quantity: i64, unit_price_minor: i64) -> OrderContext {
        let mut ctx = context(quantity, unit_price_minor);
        ctx.order.customer_id = Some("C-1".into());
        ctx
    }

    #[test]
    fn no_customer_or_no_limit_passes() {
        assert!(CustomerCredit::evaluate(customer_order(1, 9_999_999)).expect("ok").stages.is_empty());
        with_records(Records { customer: Some(customer("C-1", None)), ..Records::default() });
        assert!(CustomerCredit::evaluate(customer_order(1, 9_999_999)).expect("ok").stages.is_empty());
    }

    #[test]
    fn unpaid_invoices_reduce_the_available_credit() {
        with_records(Records {
            customer: Some(customer("C-1", Some(10_000))),
            open_invoices: vec![invoice("I-1", 6_000), invoice("I-2", 1_000)],
            budgets: Vec::new(),
        });
        // 3,000 available: 3,000 passes, 3,001 goes to finance.
        assert!(CustomerCredit::evaluate(customer_order(1, 3_000)).expect("ok").stages.is_empty());
        let out = CustomerCredit::evaluate(customer_order(1, 3_001)).expect("ok");
        assert_eq!(out.stages.len(), 1);
        assert_eq!(out.stages[0].key, "credit-review");
        assert!(matches!(&out.stages[0].approvers, Approvers::Role(r) if r == "finance"));
        assert!(out.stages[0].reason.contains("available credit of 3000 (limit 10000, unpaid invoices 7000)"));
        assert_eq!(out.flags[0].code, "customer-credit-exceeded");
    }

    #[test]
    fn a_limit_in_another_currency_is_invalid_input() {
        let mut c = customer("C-1", Some(10_000));
        c.currency = Some("USD".into());
        with_records(Records { customer: Some(c), ..Records::default() });
        assert!(matches!(CustomerCredit::evaluate(customer_order(1, 1)), Err(StepError::InvalidInput(_))));
    }
}
