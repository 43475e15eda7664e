//! Subscriptions (R3): a recurring order always needs the user-specific approval (an `approver`,
//! whatever the budget) and its cost center manager's approval; the stage shows the recurrence.
//! A subscription without a cost center is held: R3 needs its manager. Approval is once per
//! subscription: the host never re-evaluates a reactivated one, and re-opens approval when its
//! lines or prices change. The stages use the same keys, approvers and levels as the
//! `cost-center` and `spend-limit` steps, so the host merges them when both apply.

use greenlight_plugin_api::*;

/// The step.
pub struct Subscription;

/// "P1M" → "every month", for people.
fn describe(period: &str) -> String {
    let (n, unit) = period.strip_prefix('P').map(|p| p.split_at(p.len().saturating_sub(1))).unwrap_or(("", ""));
    let unit = match unit {
        "D" => "day",
        "W" => "week",
        "M" => "month",
        "Y" => "year",
        _ => return period.to_string(),
    };
    if n == "1" { format!("every {unit}") } else { format!("every {n} {unit}s") }
}

impl ApprovalStep for Subscription {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let Some(period) = &ctx.order.recurrence else {
            return Ok(StepOutput::proceed());
        };
        let Some(cc) = &ctx.cost_center else {
            return Ok(StepOutput::hold(
                "a subscription needs a cost center whose manager approves it (R3): add one and resubmit",
            ));
        };
        let level = ctx.config_i64("level").unwrap_or(2);
        let level = u32::try_from(level)
            .map_err(|_| StepError::InvalidInput(format!("level must be 1 to 100, got {level}")))?;
        let escalate = ctx.config_str("escalate_to_role").unwrap_or_else(|| "executive".into());
        let recurrence = describe(period);
        Ok(StepOutput::proceed()
            .stage(
                Stage::new(
                    "cost-center",
                    Approvers::CostCenterManager(cc.code.clone()),
                    format!("orders on cost center {} need its manager's approval", cc.code),
                )
                .title(format!("Cost center {}", cc.code))
                .escalate_to(Approvers::Role(escalate)),
            )
            .stage(
                Stage::new(
                    "user-approval",
                    Approvers::Role("approver".into()),
                    format!("subscription recurring {recurrence} ({period}): subscriptions always need user-specific approval"),
                )
                .title(format!("Subscription, {recurrence}"))
                .level(level),
            )
            .flag("subscription", Severity::Info, format!("recurs {recurrence}")))
    }
}

export_step!(Subscription);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::testing::context;

    fn subscription(mut ctx: OrderContext) -> OrderContext {
        ctx.order.recurrence = Some("P1M".into());
        greenlight_plugin_api::testing::on_cost_center(ctx, "CC-1", "bob")
    }

    #[test]
    fn one_off_orders_are_not_its_business() {
        assert!(Subscription::evaluate(context(1, 100)).expect("ok").stages.is_empty());
    }

    #[test]
    fn a_subscription_under_budget_still_needs_both_stages() {
        let out = Subscription::evaluate(subscription(context(1, 100))).expect("ok");
        let keys: Vec<&str> = out.stages.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["cost-center", "user-approval"]);
        assert!(out.stages[1].reason.contains("every month"));
    }

    #[test]
    fn without_a_cost_center_it_is_held() {
        let mut ctx = subscription(context(1, 100));
        ctx.cost_center = None;
        assert!(matches!(Subscription::evaluate(ctx).expect("ok").verdict, Verdict::Hold(_)));
    }

    #[test]
    fn periods_read_well() {
        assert_eq!(describe("P1M"), "every month");
        assert_eq!(describe("P2W"), "every 2 weeks");
        assert_eq!(describe("P1Y"), "every year");
    }
}
