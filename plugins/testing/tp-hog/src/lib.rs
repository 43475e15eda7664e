//! Test fixture: allocates memory without bound. The host's memory limit must stop it.
use greenlight_plugin_api::*;
/// The step.
pub struct Hog;
impl ApprovalStep for Hog {
    fn evaluate(_ctx: OrderContext) -> Result<StepOutput, StepError> {
        let mut keep: Vec<Vec<u8>> = Vec::new();
        loop {
            keep.push(vec![7u8; 1 << 20]);
            std::hint::black_box(&keep);
        }
    }
}
export_step!(Hog);
