//! Test fixture: returns 5,000 stages. The host must refuse the oversized result and hold the
//! order, with a reason of its own.
use greenlight_plugin_api::*;
/// The step.
pub struct Flood;
impl ApprovalStep for Flood {
    fn evaluate(_ctx: OrderContext) -> Result<StepOutput, StepError> {
        let mut out = StepOutput::proceed();
        for i in 0..5_000 {
            out = out.stage(Stage::new(&format!("s{i}"), Approvers::Role("approver".into()), "flood"));
        }
        Ok(out)
    }
}
export_step!(Flood);
