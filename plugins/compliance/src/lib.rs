//! Compliance checks before approval (R5):
//!
//! - a vendor on `blocked_vendors` rejects the order, with the reason;
//! - a vendor not on `approved_vendors` (when that list is set) adds a `compliance` review stage
//!   and a risk flag;
//! - an order that takes its cost center over budget adds a risk flag and an elevated-clearance
//!   stage for `clearance_role` at the last level.
//!
//! Every flag says why; flags travel with the order.

use greenlight_plugin_api::*;

/// The step.
pub struct Compliance;

fn level(ctx: &OrderContext, key: &str, default: i64) -> Result<u32, StepError> {
    let v = ctx.config_i64(key).unwrap_or(default);
    u32::try_from(v)
        .ok()
        .filter(|l| (1..=100).contains(l))
        .ok_or_else(|| StepError::InvalidInput(format!("{key} must be 1 to 100, got {v}")))
}

impl ApprovalStep for Compliance {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let mut out = StepOutput::proceed();
        if let Some(vendor) = &ctx.order.vendor_id {
            if ctx.config_strings("blocked_vendors").iter().any(|v| v == vendor) {
                return Ok(StepOutput::reject(format!("vendor {vendor} is on the blocked vendor list")).flag(
                    "vendor-blocked",
                    Severity::High,
                    format!("vendor {vendor} is blocked"),
                ));
            }
            let approved = ctx.config_strings("approved_vendors");
            if !approved.is_empty() && !approved.iter().any(|v| v == vendor) {
                let why = format!("vendor {vendor} is not on the approved vendor list");
                out = out
                    .stage(
                        Stage::new("compliance", Approvers::Role("compliance".into()), why.clone())
                            .title("Vendor compliance review")
                            .level(level(&ctx, "review_level", 5)?),
                    )
                    .flag("vendor-not-approved", Severity::Warning, format!("{why}; compliance must review it"));
            }
        }
        if let Some(cc) = &ctx.cost_center
            && let Some(budget) = cc.budget_minor
        {
            let after = cc.budget_used_minor.saturating_add(ctx.subtotal_minor);
            if after > budget {
                let why = format!(
                    "cost center {} would be over budget: {} used + {} this order > {budget}",
                    cc.code, cc.budget_used_minor, ctx.subtotal_minor
                );
                let role = ctx.config_str("clearance_role").unwrap_or_else(|| "executive".into());
                out = out
                    .stage(
                        Stage::new("elevated-clearance", Approvers::Role(role), why.clone())
                            .title("Elevated clearance: budget overrun")
                            .level(level(&ctx, "clearance_level", 90)?),
                    )
                    .flag("budget-overrun", Severity::High, why);
            }
        }
        Ok(out)
    }
}

export_step!(Compliance);

#[cfg(test)]
mod tests {
    use super::*;
    use greenlight_plugin_api::testing::{context, with_config};

    fn vendor(v: &str) -> OrderContext {
        let mut ctx = with_config(
            context(1, 1_000),
            serde_json::json!({"blocked_vendors": ["SHADY"], "approved_vendors": ["ACME"]}),
        );
        ctx.order.vendor_id = Some(v.into());
        ctx
    }

    #[test]
    fn a_blocked_vendor_is_rejected_with_the_reason() {
        let out = Compliance::evaluate(vendor("SHADY")).expect("ok");
        assert!(matches!(&out.verdict, Verdict::Reject(r) if r.contains("SHADY")));
    }

    #[test]
    fn an_unapproved_vendor_is_reviewed() {
        let out = Compliance::evaluate(vendor("NEWCO")).expect("ok");
        assert_eq!(out.stages[0].key, "compliance");
        assert_eq!(out.flags[0].code, "vendor-not-approved");
        assert!(Compliance::evaluate(vendor("ACME")).expect("ok").stages.is_empty());
    }

    #[test]
    fn a_budget_overrun_needs_elevated_clearance_last() {
        let mut ctx = context(1, 5_000);
        ctx.cost_center = Some(CostCenterProfile {
            code: "CC-1".into(),
            manager: "bob".into(),
            budget_minor: Some(10_000),
            budget_used_minor: 7_000,
        });
        let out = Compliance::evaluate(ctx).expect("ok");
        assert_eq!(out.stages[0].key, "elevated-clearance");
        assert_eq!(out.stages[0].level, 90);
        assert!(out.flags[0].message.contains("over budget"));
    }
}
