//! The engine: runs a tenant's enabled steps, in their configured positions, on an
//! [`OrderContext`] and merges what they return into an [`Assessment`] (the plan, flags, price
//! adjustments and verdict). It fails closed: a step that errors, hits a limit or returns
//! something malformed yields `Outcome::Hold` with the reason, never an approval.
//!
//! Steps sit behind the [`Step`] trait; the runtimes (Rhai, WASM, native) implement it.

use crate::domain::actor::Role;
use crate::domain::machine::{Assessment, Outcome};
use crate::domain::money::{MAX_AMOUNT_MINOR, Minor, checked_sum, within_bounds};
use crate::domain::order::STEP_ACTOR_PREFIX;
use crate::domain::plan::{Approvers, MAX_DUE_IN_HOURS, Quorum, Stage, StageState};
use crate::domain::step::{ApproverSpec, OrderContext, PriceKind, StepOutput, StepVerdict};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most stages one step may add.
pub const MAX_STAGES: usize = 32;
/// Most flags or adjustments one step may add.
pub const MAX_ITEMS: usize = 64;
const MAX_TEXT: usize = 1_000;
const MAX_KEY: usize = 64;

/// How a step failed. Each kind is recorded distinctly on the held order and in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The step used up its operation (fuel) budget.
    #[error("ran out of its operation budget ({0}): it loops too long; simplify it or raise the limit")]
    OutOfFuel(String),
    /// The step ran past its deadline.
    #[error("ran past its deadline ({0}): make it faster or raise the deadline")]
    Deadline(String),
    /// The step exceeded a memory or size limit.
    #[error("exceeded a memory or size limit ({0}): reduce the data it builds")]
    MemoryLimit(String),
    /// The step raised an error.
    #[error("failed: {0}")]
    Failed(String),
    /// The step's code panicked or aborted.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The step returned more than the limits allow (too many items, too long texts).
    #[error("returned an oversized result: {0}")]
    Oversized(String),
    /// The step returned data that does not fit the step-output shape.
    #[error("returned an invalid result: {0}; see plugin-api/README.md for the shape")]
    BadOutput(String),
    /// The step asked for something its manifest or the tenant does not grant.
    #[error("was denied a capability: {0}")]
    Denied(String),
}

/// What kind of code a step is, or, in an evaluation record, what ran before the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A Rhai script.
    Script,
    /// A WebAssembly component.
    Wasm,
    /// A native library (trusted vendors only).
    Native,
    /// The tenant's connector, fetching ERP data before the steps: recorded when it fails and
    /// the order goes on hold without any step running.
    Connector,
}

impl From<crate::domain::extension::ExtensionKind> for StepKind {
    fn from(k: crate::domain::extension::ExtensionKind) -> Self {
        match k {
            crate::domain::extension::ExtensionKind::Script => StepKind::Script,
            crate::domain::extension::ExtensionKind::Wasm => StepKind::Wasm,
            crate::domain::extension::ExtensionKind::Native => StepKind::Native,
        }
    }
}

/// One approval step. Implementations must be deterministic: same context, same output.
pub trait Step: Send + Sync {
    /// The extension's name, as enabled per tenant.
    fn name(&self) -> &str;
    /// Script, WASM or native.
    fn kind(&self) -> StepKind;
    /// Content hash of the code, recorded with every evaluation so a decision can be traced to
    /// the exact code that made it.
    fn code_hash(&self) -> &str;
    /// Runs the step.
    fn evaluate(&self, ctx: &OrderContext) -> Result<StepOutput, StepError>;
    /// Runs the step as one of an evaluation's chain, reusing the form of the order its runtime
    /// needs when an earlier step of the same runtime made it ([`Lowered`]).
    fn evaluate_in(&self, ctx: &OrderContext, _lowered: &Lowered) -> Result<StepOutput, StepError> {
        self.evaluate(ctx)
    }
}

/// The order in the forms the runtimes pass to steps (the WIT record, the script's map), made
/// once per evaluation by the first step that needs each and shared by the rest: the steps of
/// one evaluation see the same order, and only `config` differs between them, so a form holds
/// everything but the configuration, which each step sets on its own copy or call.
#[derive(Default)]
pub struct Lowered(std::cell::RefCell<Vec<Box<dyn std::any::Any>>>);

impl Lowered {
    /// The form of type `T`, made by `make` the first time; `with` gets it (mutably, to set
    /// the configuration of this call).
    pub fn with<T: 'static, R>(&self, make: impl FnOnce() -> T, with: impl FnOnce(&mut T) -> R) -> R {
        let mut forms = self.0.borrow_mut();
        let i = match forms.iter().position(|f| f.is::<T>()) {
            Some(i) => i,
            None => {
                forms.push(Box::new(make()));
                forms.len() - 1
            }
        };
        match forms[i].downcast_mut::<T>() {
            Some(form) => with(form),
            None => unreachable!("the form at {i} was found by its type"),
        }
    }
}

/// A step with this tenant's configuration for it.
#[derive(Clone)]
pub struct ConfiguredStep {
    /// The step.
    pub step: Arc<dyn Step>,
    /// Its configuration (becomes `ctx.config`).
    pub config: serde_json::Value,
}

/// Looks up the tenant's directory facts the plan needs: who manages a cost center, and
/// whether the people a stage names exist, so that no stage opens that nobody can decide.
pub trait Directory {
    /// The manager of a cost center, if it exists.
    fn cost_center_manager(&self, code: &str) -> Option<String>;
    /// Whether the tenant has a user of this name.
    fn user_exists(&self, name: &str) -> bool;
    /// How many of the tenant's users hold this role, `except` (the requester) not counted.
    fn role_holders(&self, role: &str, except: &str) -> usize;
}

/// What one step did in one evaluation; stored so the decision can be replayed and explained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRun {
    /// Extension name.
    pub name: String,
    /// Script, WASM or native (or the connector, when it failed before the steps).
    pub kind: StepKind,
    /// Content hash of its code (empty for a connector failure).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code_hash: String,
    /// The tenant's configuration it ran with (`ctx.config`), so the run can be replayed.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// What it returned (kept also when the host then refused it, with `error` saying why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<StepOutput>,
    /// How it failed, or why the host refused what it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The merged result, for the state machine.
    pub assessment: Assessment,
    /// Per-step record.
    pub runs: Vec<StepRun>,
    /// Steps that failed (for metrics).
    pub failures: usize,
}

/// Runs the steps in order and merges their outputs. `ctx.config` is replaced per step.
pub fn evaluate(ctx: &OrderContext, steps: &[ConfiguredStep], directory: &dyn Directory) -> Evaluation {
    let mut ctx = ctx.clone();
    let mut merged = Merge::new(ctx.subtotal_minor);
    let mut runs = Vec::with_capacity(steps.len());
    let mut failures = 0;
    let lowered = Lowered::default();
    for configured in steps {
        let step = &configured.step;
        ctx.config = configured.config.clone();
        let returned = step.evaluate_in(&ctx, &lowered);
        let mut run = StepRun {
            name: step.name().to_string(),
            kind: step.kind(),
            code_hash: step.code_hash().to_string(),
            config: configured.config.clone(),
            output: returned.as_ref().ok().cloned(),
            error: None,
        };
        let checked = returned.and_then(|out| {
            merged.check(step.name(), &out, &ctx.order.requester, directory).map(|stages| (out, stages))
        });
        match checked {
            Ok((out, stages)) => merged.absorb(step.name(), &out, stages),
            Err(e) => {
                failures += 1;
                merged.holds.push(format!("step '{}' {e}", step.name()));
                run.error = Some(e.to_string());
            }
        }
        runs.push(run);
    }
    Evaluation { assessment: merged.finish(), runs, failures }
}

struct Merge {
    subtotal: Minor,
    total: Minor,
    tax: Minor,
    stages: Vec<Stage>,
    flags: Vec<crate::domain::step::RiskFlag>,
    adjustments: Vec<crate::domain::step::PriceAdjustment>,
    reject: Option<(String, String)>,
    holds: Vec<String>,
}

fn bad(msg: impl Into<String>) -> StepError {
    StepError::BadOutput(msg.into())
}

fn check_text(what: &str, s: &str, max: usize, required: bool) -> Result<(), StepError> {
    if required && s.trim().is_empty() {
        return Err(bad(format!("{what} must not be empty")));
    }
    if s.len() > max {
        return Err(StepError::Oversized(format!("{what} is {} bytes, at most {max}", s.len())));
    }
    Ok(())
}

/// How many distinct people other than the requester these approvers are, counting no further
/// than `needed`.
fn capacity(approvers: &Approvers, needed: usize, requester: &str, directory: &dyn Directory) -> usize {
    match approvers {
        Approvers::Role { role } => directory.role_holders(role.as_str(), requester),
        // Resolution already dropped the requester and duplicates.
        Approvers::Users { users } => users.len(),
        Approvers::CostCenterManager { .. } => 1,
    }
    .min(needed)
}

fn check_key(what: &str, s: &str) -> Result<(), StepError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_KEY
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok { Ok(()) } else { Err(bad(format!("{what} '{s}' must be 1-{MAX_KEY} letters, digits, '_', '-' or '.'"))) }
}

impl Merge {
    fn new(subtotal: Minor) -> Merge {
        Merge {
            subtotal,
            total: subtotal,
            tax: 0,
            stages: Vec::new(),
            flags: Vec::new(),
            adjustments: Vec::new(),
            reject: None,
            holds: Vec::new(),
        }
    }

    /// Resolves who decides. The requester is never among them (R7): they are dropped from a
    /// user list, and a cost center managed by the requester needs an escalation target.
    fn resolve(&self, spec: &ApproverSpec, requester: &str, directory: &dyn Directory) -> Result<Approvers, StepError> {
        Ok(match spec {
            ApproverSpec::Role(role) => Approvers::Role { role: role.clone() },
            ApproverSpec::Users(users) => {
                if users.is_empty() || users.len() > 100 {
                    return Err(bad("approvers.users must list 1 to 100 users"));
                }
                for u in users {
                    check_text("approvers.users[]", u, 64, true)?;
                    if !directory.user_exists(u) {
                        return Err(bad(format!(
                            "'{u}' is not a user of this tenant, so nobody could decide the stage; name existing users or a role"
                        )));
                    }
                }
                let mut users: Vec<String> = users.iter().filter(|u| *u != requester).cloned().collect();
                users.sort();
                users.dedup();
                if users.is_empty() {
                    return Err(bad(format!(
                        "the only approver listed is the requester ({requester}), who may not approve their own order"
                    )));
                }
                Approvers::Users { users }
            }
            ApproverSpec::CostCenterManager(code) => {
                let manager = directory.cost_center_manager(code).ok_or_else(|| {
                    bad(format!(
                        "cost center '{code}' does not exist: create it (POST /v1/admin/cost-centers) or fix the order"
                    ))
                })?;
                if manager == requester {
                    return Err(StepError::Denied(format!(
                        "the requester {requester} manages cost center '{code}' and may not approve their own order; give the stage an `escalate_to`"
                    )));
                }
                Approvers::CostCenterManager { cost_center: code.clone(), manager }
            }
        })
    }

    /// Validates a step's output against the limits and the order so far; returns its stages.
    fn check(
        &self,
        step: &str,
        out: &StepOutput,
        requester: &str,
        directory: &dyn Directory,
    ) -> Result<Vec<Stage>, StepError> {
        if out.stages.len() > MAX_STAGES {
            return Err(StepError::Oversized(format!("{} stages, at most {MAX_STAGES} per step", out.stages.len())));
        }
        if out.flags.len() > MAX_ITEMS || out.adjustments.len() > MAX_ITEMS {
            return Err(StepError::Oversized(format!(
                "{} flags and {} adjustments, at most {MAX_ITEMS} of each per step",
                out.flags.len(),
                out.adjustments.len()
            )));
        }
        if matches!(out.verdict, StepVerdict::Reject | StepVerdict::Hold)
            && out.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(bad("a reject or hold verdict needs a non-empty `reason`"));
        }
        if let Some(r) = &out.reason {
            check_text("reason", r, MAX_TEXT, false)?;
        }
        let mut stages = Vec::with_capacity(out.stages.len());
        for s in &out.stages {
            check_key("stage key", &s.key)?;
            check_text("stage reason", &s.reason, MAX_TEXT, true)?;
            if let Some(t) = &s.title {
                check_text("stage title", t, 200, true)?;
            }
            if !(1..=100).contains(&s.level) {
                return Err(bad(format!("stage '{}': level must be 1 to 100", s.key)));
            }
            if let Some(h) = s.due_in_hours
                && h > MAX_DUE_IN_HOURS
            {
                return Err(bad(format!(
                    "stage '{}': due_in_hours must be 0 to {MAX_DUE_IN_HOURS} (a year), got {h}",
                    s.key
                )));
            }
            let approvers = match self.resolve(&s.approvers, requester, directory) {
                Err(StepError::Denied(why)) => match &s.escalate_to {
                    Some(e) => self.resolve(e, requester, directory).map_err(|_| StepError::BadOutput(why))?,
                    None => return Err(StepError::BadOutput(why)),
                },
                other => other?,
            };
            match (s.quorum, &approvers) {
                (Quorum::All, Approvers::Role { .. }) => {
                    return Err(bad(format!(
                        "stage '{}': quorum \"all\" needs a user list, not a role; use a number",
                        s.key
                    )));
                }
                (Quorum::AtLeast(n), Approvers::Users { users }) if n as usize > users.len() => {
                    return Err(bad(format!(
                        "stage '{}': quorum {n} is more than the {} users listed",
                        s.key,
                        users.len()
                    )));
                }
                (Quorum::AtLeast(n), Approvers::CostCenterManager { .. }) if n > 1 => {
                    return Err(bad(format!("stage '{}': a cost center has one manager; quorum must be 1", s.key)));
                }
                _ => {}
            }
            let escalate_to = s.escalate_to.as_ref().map(|e| self.resolve(e, requester, directory)).transpose()?;
            // Nobody may be left to decide: the approvers, or once the stage is overdue, its
            // escalation target (the tenant's admins unless the step names one).
            let needed = match s.quorum {
                Quorum::AtLeast(n) => n as usize,
                Quorum::Any | Quorum::All => 1,
            };
            let holders = capacity(&approvers, needed, requester, directory);
            // Only a role can fall short: user lists and cost centers were checked against the
            // quorum above.
            if let Approvers::Role { role } = &approvers
                && holders < needed
            {
                // Once escalated, the target alone must be able to reach the quorum: counting it
                // together with the approvers could count one person twice (fail closed).
                let target = escalate_to.clone().unwrap_or_else(|| Approvers::Role { role: Role::admin() });
                let rescued = s.due_in_hours.is_some() && capacity(&target, needed, requester, directory) >= needed;
                if !rescued {
                    return Err(bad(format!(
                        "stage '{}' needs {needed} approval(s) from role '{role}', which {holders} user(s) other than the requester hold, so it could never be decided; give the role to someone, or give the stage a due time and an escalation target",
                        s.key
                    )));
                }
            }
            let stage = Stage {
                key: s.key.clone(),
                title: s.title.clone().unwrap_or_else(|| s.key.clone()),
                level: s.level,
                approvers,
                quorum: s.quorum,
                due_in_hours: s.due_in_hours,
                escalate_to,
                due_at: None,
                reason: s.reason.clone(),
                source: step.to_string(),
                state: StageState::Waiting,
                decisions: Vec::new(),
                opened_in: None,
            };
            let clash = self.stages.iter().chain(stages.iter()).find(|o: &&Stage| o.key == stage.key);
            if let Some(other) = clash {
                if other.approvers != stage.approvers || other.level != stage.level || other.quorum != stage.quorum {
                    return Err(bad(format!(
                        "stage '{}' is also added by step '{}' with different approvers, level or quorum; give it another key",
                        stage.key, other.source
                    )));
                }
                continue;
            }
            stages.push(stage);
        }
        for f in &out.flags {
            check_key("flag code", &f.code)?;
            check_text("flag message", &f.message, MAX_TEXT, true)?;
        }
        let (mut total, mut tax) = (self.total, self.tax);
        for a in &out.adjustments {
            check_key("adjustment code", &a.code)?;
            if let Some(d) = &a.description {
                check_text("adjustment description", d, MAX_TEXT, false)?;
            }
            match a.kind {
                PriceKind::Tax | PriceKind::Surcharge | PriceKind::Shipping if a.amount_minor < 0 => {
                    return Err(bad(format!("adjustment '{}': a {:?} amount must not be negative", a.code, a.kind)));
                }
                PriceKind::Discount if a.amount_minor > 0 => {
                    return Err(bad(format!("adjustment '{}': a discount must be negative or zero", a.code)));
                }
                _ => {}
            }
            let beyond = || {
                bad(format!(
                    "adjustment '{}' takes the order beyond the largest amount, {MAX_AMOUNT_MINOR} minor units",
                    a.code
                ))
            };
            if !within_bounds(a.amount_minor) {
                return Err(beyond());
            }
            total = checked_sum([total, a.amount_minor]).ok_or_else(beyond)?;
            if a.kind == PriceKind::Tax {
                tax = checked_sum([tax, a.amount_minor]).ok_or_else(beyond)?;
            }
        }
        if total < 0 {
            return Err(bad("adjustments make the order total negative"));
        }
        Ok(stages)
    }

    fn absorb(&mut self, step: &str, out: &StepOutput, stages: Vec<Stage>) {
        self.stages.extend(stages);
        for f in &out.flags {
            let mut f = f.clone();
            f.source = step.to_string();
            self.flags.push(f);
        }
        for a in &out.adjustments {
            let mut a = a.clone();
            a.source = step.to_string();
            // `check` proved these sums stay within MAX_AMOUNT_MINOR.
            self.total = self.total.saturating_add(a.amount_minor);
            if a.kind == PriceKind::Tax {
                self.tax = self.tax.saturating_add(a.amount_minor);
            }
            self.adjustments.push(a);
        }
        let reason = out.reason.clone().unwrap_or_default();
        match out.verdict {
            StepVerdict::Proceed => {}
            StepVerdict::Reject => {
                if self.reject.is_none() {
                    self.reject = Some((format!("{STEP_ACTOR_PREFIX}{step}"), reason));
                }
            }
            StepVerdict::Hold => self.holds.push(format!("step '{step}' asked for a hold: {reason}")),
        }
    }

    fn finish(mut self) -> Assessment {
        self.stages.sort_by_key(|s| s.level);
        let outcome = if let Some((by, reason)) = self.reject {
            Outcome::Reject { by, reason }
        } else if !self.holds.is_empty() {
            Outcome::Hold { reason: self.holds.join("; ") }
        } else {
            Outcome::Proceed
        };
        Assessment {
            subtotal_minor: self.subtotal,
            adjustments: self.adjustments,
            flags: self.flags,
            stages: self.stages,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests;
