//! Template approval step: copy this crate to start a plugin (see plugin-api/README.md).
//! Orders at or above `threshold_minor` get a stage for `role` at `level`, and a risk flag.

use greenlight_plugin_api::*;

/// The step.
pub struct LargeOrder;

impl ApprovalStep for LargeOrder {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let threshold = ctx.config_i64("threshold_minor").unwrap_or(1_000_000);
        let level = ctx.config_i64("level").unwrap_or(10);
        let role = ctx.config_str("role").unwrap_or_else(|| "executive".into());
        if !(1..=100).contains(&level) {
            return Err(StepError::InvalidInput(format!("level must be 1 to 100, got {level}")));
        }
        if ctx.subtotal_minor < threshold {
            return Ok(StepOutput::proceed());
        }
        let reason =
            format!("subtotal {} {} reaches the threshold of {threshold}", ctx.subtotal_minor, ctx.order.currency);
        Ok(StepOutput::proceed()
            .stage(
                Stage::new("large-order", Approvers::Role(role), reason.clone())
                    .level(level as u32)
                    .title("Large order"),
            )
            .flag("large-order", Severity::Info, reason))
    }
}

export_step!(LargeOrder);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::testing::{context, with_config};

    #[test]
    fn below_the_threshold_nothing_happens() {
        let out = LargeOrder::evaluate(with_config(context(1, 500), serde_json::json!({"threshold_minor": 1000})))
            .expect("ok");
        assert!(out.stages.is_empty());
    }

    #[test]
    fn at_the_threshold_an_executive_decides_last() {
        let out = LargeOrder::evaluate(with_config(
            context(2, 500),
            serde_json::json!({"threshold_minor": 1000, "level": 7}),
        ))
        .expect("ok");
        assert_eq!(out.stages.len(), 1);
        assert_eq!(out.stages[0].level, 7);
        assert!(matches!(&out.stages[0].approvers, Approvers::Role(r) if r == "executive"));
    }

    #[test]
    fn a_bad_level_is_an_error() {
        assert!(LargeOrder::evaluate(with_config(context(1, 1), serde_json::json!({"level": 0}))).is_err());
    }
}
