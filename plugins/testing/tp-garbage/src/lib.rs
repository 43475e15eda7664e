//! Test fixture: returns a stage the host must refuse (bad key, zero quorum).
use greenlight_plugin_api::*;
/// The step.
pub struct Garbage;
impl ApprovalStep for Garbage {
    fn evaluate(_ctx: OrderContext) -> Result<StepOutput, StepError> {
        Ok(StepOutput::proceed()
            .stage(Stage::new("not a key!", Approvers::Role("approver".into()), "x").quorum(Quorum::AtLeast(0))))
    }
}
export_step!(Garbage);
