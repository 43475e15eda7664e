//! Test fixture: an approval step built against `greenlight:plugin@1.2.0` (a copy of the WIT
//! with a newer version). A 1.1 host must refuse it, naming the import.

#[allow(missing_docs, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "approval-step" });
}

use bindings::exports::greenlight::plugin::step::Guest;
use bindings::greenlight::plugin::types::{OrderContext, StepError, StepOutput, Verdict};

struct Future;

impl Guest for Future {
    fn evaluate(ctx: OrderContext) -> Result<StepOutput, StepError> {
        bindings::greenlight::plugin::host::log(bindings::greenlight::plugin::host::Level::Info, &ctx.order.id);
        Ok(StepOutput { stages: vec![], flags: vec![], adjustments: vec![], verdict: Verdict::Proceed })
    }
}

bindings::export!(Future with_types_in bindings);
