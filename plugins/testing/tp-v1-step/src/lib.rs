//! Test fixture: an approval step built straight from the frozen WIT of plugin API 1.0.0
//! (`plugin-api/wit/deps/greenlight-plugin-1.0.0`), as a plugin released before 1.1 was. A 1.1
//! host must load and run it unchanged: it opens one stage for the configured role and flags the
//! order with the API version it was built for.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../plugin-api/wit/deps/greenlight-plugin-1.0.0", world: "approval-step" });
}

use bindings::exports::greenlight::plugin::step::Guest;
use bindings::greenlight::plugin::host;
use bindings::greenlight::plugin::types::{
    Approvers, OrderContext, Quorum, RiskFlag, Severity, Stage, StepError, StepOutput, Verdict,
};

struct V1Step;

impl Guest for V1Step {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        let config = host::config();
        let role = config
            .split("\"role\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| StepError::InvalidInput(format!("no role in the configuration {config}")))?;
        Ok(StepOutput {
            stages: vec![Stage {
                key: "v1-review".into(),
                title: None,
                level: 1,
                approvers: Approvers::Role(role.into()),
                quorum: Quorum::Any,
                due_in_hours: None,
                escalate_to: None,
                reason: format!("order {} reviewed by a plugin built for API 1.0.0", ctx.order.id),
            }],
            flags: vec![RiskFlag {
                code: "built-for-api-1-0".into(),
                severity: Severity::Info,
                message: "this step was built against greenlight:plugin@1.0.0".into(),
            }],
            adjustments: vec![],
            verdict: Verdict::Proceed,
        })
    }
}

bindings::export!(V1Step with_types_in bindings);
