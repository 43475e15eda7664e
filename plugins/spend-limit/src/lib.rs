//! User-specific approval (R1), the same rule as `scripts/spend-limit.rhai`: a requester with an
//! order spend limit needs an approver when the order exceeds it; a requester with a budget needs
//! one when the budget used this period plus this order exceeds it. Anyone with the `approver`
//! role decides (quorum any), after the cost center (level 2 by default).

use greenlight_plugin_api::*;

/// The step.
pub struct SpendLimit;

impl ApprovalStep for SpendLimit {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let r = &ctx.requester;
        let total = ctx.subtotal_minor;
        let mut reasons = Vec::new();
        if let Some(limit) = r.spend_limit_minor
            && total > limit
        {
            reasons.push(format!("the order ({total}) exceeds {}'s spend limit of {limit}", r.name));
        }
        if let Some(budget) = r.budget_minor
            && r.budget_used_minor.saturating_add(total) > budget
        {
            let period = r.budget_period.clone().unwrap_or_default();
            reasons.push(format!(
                "{}'s {period} budget of {budget} would be exceeded ({} used)",
                r.name, r.budget_used_minor
            ));
        }
        if reasons.is_empty() {
            return Ok(StepOutput::proceed());
        }
        let level = ctx.config_i64("level").unwrap_or(2);
        let level = u32::try_from(level)
            .map_err(|_| StepError::InvalidInput(format!("level must be 1 to 100, got {level}")))?;
        Ok(StepOutput::proceed().stage(
            Stage::new("user-approval", Approvers::Role("approver".into()), reasons.join("; "))
                .title("User-specific approval")
                .level(level),
        ))
    }
}

export_step!(SpendLimit);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::testing::context;

    #[test]
    fn within_limits_no_stage() {
        let mut ctx = context(1, 100);
        ctx.requester.spend_limit_minor = Some(1_000);
        assert!(SpendLimit::evaluate(ctx).expect("ok").stages.is_empty());
    }

    #[test]
    fn over_the_limit_or_the_budget_an_approver_decides() {
        let mut ctx = context(1, 5_000);
        ctx.requester.spend_limit_minor = Some(1_000);
        ctx.requester.budget_minor = Some(10_000);
        ctx.requester.budget_period = Some("month".into());
        ctx.requester.budget_used_minor = 6_000;
        let out = SpendLimit::evaluate(ctx).expect("ok");
        assert_eq!(out.stages.len(), 1);
        assert_eq!(out.stages[0].level, 2);
        assert!(out.stages[0].reason.contains("spend limit") && out.stages[0].reason.contains("budget"));
    }
}
