//! `greenlight simulate`: the what-if from the command line, with a progress bar on a terminal
//! and a table of the orders that would change.

use super::runtime;
use anyhow::{Context, Result};
use greenlight_host::approvals::{Approvals, CandidateChange, OrderDifference, OrderSelection, Progress};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn run(
    approvals: &Approvals,
    tenant: &str,
    changes: &Path,
    status: Option<&str>,
    limit: usize,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(changes).with_context(|| format!("reading {}", changes.display()))?;
    let list: Vec<CandidateChange> =
        serde_json::from_str(&text).with_context(|| format!("{} must be a JSON list of changes", changes.display()))?;
    let status = status.map(|s| s.parse()).transpose().map_err(|e: String| anyhow::anyhow!("--status: {e}"))?;
    let selection = OrderSelection { status, limit: Some(limit), ..Default::default() };
    // Drawn on stderr only when it is a terminal, so piped output stays the table alone.
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} orders, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let tick = bar.clone();
    let progress: Progress = Box::new(move |done, of| {
        tick.set_length(of as u64);
        tick.set_position(done as u64);
    });
    let report = runtime()?.block_on(approvals.simulate_as_operator(tenant, list, selection, progress));
    bar.finish_and_clear();
    let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<38} {:<17} {:<17} changes", "order", "now", "with the candidate")?;
    for OrderDifference { order_id, difference: d } in &report.differences {
        let mut what = Vec::new();
        for (label, list) in [
            ("+stage", &d.stages_added),
            ("-stage", &d.stages_removed),
            ("~stage", &d.stages_changed),
            ("+flag", &d.flags_added),
            ("-flag", &d.flags_removed),
        ] {
            what.extend(list.iter().map(|x| format!("{label} {x}")));
        }
        writeln!(out, "{:<38} {:<17} {:<17} {}", order_id, d.before.as_str(), d.after.as_str(), what.join(", "))?;
    }
    writeln!(
        out,
        "{} orders evaluated ({} skipped: never evaluated), {} plans and {} verdicts would change{}; candidate {}",
        report.orders_evaluated,
        report.orders_skipped,
        report.plans_changed,
        report.verdicts_changed,
        if report.truncated { " (stopped at the time limit)" } else { "" },
        report.candidate_hash
    )?;
    Ok(ExitCode::SUCCESS)
}
