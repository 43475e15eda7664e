//! Small conveniences on the generated types, so plugin code reads well.

use crate::*;

impl StepOutput {
    /// No stages, no flags: carry on.
    pub fn proceed() -> StepOutput {
        StepOutput { stages: Vec::new(), flags: Vec::new(), adjustments: Vec::new(), verdict: Verdict::Proceed }
    }

    /// Reject the order with a reason.
    pub fn reject(reason: impl Into<String>) -> StepOutput {
        StepOutput { verdict: Verdict::Reject(reason.into()), ..StepOutput::proceed() }
    }

    /// Hold the order with a reason.
    pub fn hold(reason: impl Into<String>) -> StepOutput {
        StepOutput { verdict: Verdict::Hold(reason.into()), ..StepOutput::proceed() }
    }

    /// Adds a stage.
    pub fn stage(mut self, stage: Stage) -> StepOutput {
        self.stages.push(stage);
        self
    }

    /// Adds a risk flag.
    pub fn flag(mut self, code: &str, severity: Severity, message: impl Into<String>) -> StepOutput {
        self.flags.push(RiskFlag { code: code.into(), severity, message: message.into() });
        self
    }

    /// Adds a price adjustment.
    pub fn adjust(mut self, kind: PriceKind, code: &str, amount_minor: i64) -> StepOutput {
        self.adjustments.push(PriceAdjustment { kind, code: code.into(), amount_minor, description: None });
        self
    }
}

impl Stage {
    /// A level-1 stage decided by anyone of `approvers` (quorum any).
    pub fn new(key: &str, approvers: Approvers, reason: impl Into<String>) -> Stage {
        Stage {
            key: key.into(),
            title: None,
            level: 1,
            approvers,
            quorum: Quorum::Any,
            due_in_hours: None,
            escalate_to: None,
            reason: reason.into(),
        }
    }

    /// Sets the level.
    pub fn level(mut self, level: u32) -> Stage {
        self.level = level;
        self
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Stage {
        self.title = Some(title.into());
        self
    }

    /// Sets the quorum.
    pub fn quorum(mut self, quorum: Quorum) -> Stage {
        self.quorum = quorum;
        self
    }

    /// Sets who takes over when overdue or when the approver is the requester.
    pub fn escalate_to(mut self, approvers: Approvers) -> Stage {
        self.escalate_to = Some(approvers);
        self
    }
}

impl OrderContext {
    /// The configuration as JSON.
    pub fn config(&self) -> serde_json::Value {
        serde_json::from_str(&self.config_json).unwrap_or(serde_json::Value::Null)
    }

    /// An integer configuration value.
    pub fn config_i64(&self, key: &str) -> Option<i64> {
        self.config().get(key)?.as_i64()
    }

    /// A text configuration value.
    pub fn config_str(&self, key: &str) -> Option<String> {
        self.config().get(key)?.as_str().map(str::to_string)
    }

    /// A list-of-text configuration value (empty when missing).
    pub fn config_strings(&self, key: &str) -> Vec<String> {
        self.config()
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// The order's attributes as JSON.
    pub fn attributes(&self) -> serde_json::Value {
        serde_json::from_str(&self.order.attributes_json).unwrap_or(serde_json::Value::Null)
    }
}
