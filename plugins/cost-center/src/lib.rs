//! Cost-center approval (R1): an order with a cost center gets a stage decided by that cost
//! center's manager, at the first level, unless its subtotal is below `threshold_minor`. When the
//! requester manages the cost center, the stage escalates to `escalate_to_role` (R7: nobody
//! approves their own order). Same rule as `scripts/cost-center.rhai`.

use greenlight_plugin_api::*;

/// The step.
pub struct CostCenter;

impl ApprovalStep for CostCenter {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let Some(cc) = &ctx.cost_center else {
            return Ok(StepOutput::proceed());
        };
        let threshold = ctx.config_i64("threshold_minor").unwrap_or(0);
        if ctx.subtotal_minor < threshold {
            return Ok(StepOutput::proceed());
        }
        let escalate = ctx.config_str("escalate_to_role").unwrap_or_else(|| "executive".into());
        let stage = Stage::new(
            "cost-center",
            Approvers::CostCenterManager(cc.code.clone()),
            format!("orders on cost center {} need its manager's approval", cc.code),
        )
        .title(format!("Cost center {}", cc.code))
        .escalate_to(Approvers::Role(escalate));
        Ok(StepOutput::proceed().stage(stage))
    }
}

export_step!(CostCenter);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::testing::{context, with_config};

    fn on_cost_center(ctx: OrderContext) -> OrderContext {
        greenlight_plugin_api::testing::on_cost_center(ctx, "CC-1", "bob")
    }

    #[test]
    fn no_cost_center_no_stage() {
        assert!(CostCenter::evaluate(context(1, 100)).expect("ok").stages.is_empty());
    }

    #[test]
    fn the_manager_decides_at_level_one() {
        let out = CostCenter::evaluate(on_cost_center(context(1, 100))).expect("ok");
        assert_eq!(out.stages[0].level, 1);
        assert!(matches!(&out.stages[0].approvers, Approvers::CostCenterManager(c) if c == "CC-1"));
    }

    #[test]
    fn below_the_threshold_no_stage() {
        let ctx = with_config(on_cost_center(context(1, 100)), serde_json::json!({"threshold_minor": 1000}));
        assert!(CostCenter::evaluate(ctx).expect("ok").stages.is_empty());
    }
}
