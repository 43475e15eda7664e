//! The shipped scripts: every example order under `scripts/examples/<script>/` gives exactly its
//! expected output through `greenlight step test`, the integrator's local loop.

use anyhow::{Context, Result};
use greenlight_tests::{bin, workspace};
use serde_json::Value;
use std::process::Command;

fn step_test(script: &str, order: &std::path::Path, config: Option<&std::path::Path>) -> Result<(i32, String, String)> {
    let mut cmd = Command::new(bin());
    cmd.args(["step", "test", "--script", script]).arg("--order").arg(order).env("GREENLIGHT_LOG", "warn");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn every_example_gives_its_expected_output() -> Result<()> {
    let scripts = workspace().join("scripts");
    let mut checked = 0;
    let mut names: Vec<_> =
        std::fs::read_dir(scripts.join("examples"))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    names.sort();
    for dir in names {
        let name = dir.file_name().and_then(|n| n.to_str()).context("name")?.to_string();
        let script = scripts.join(format!("{name}.rhai"));
        assert!(script.exists(), "examples/{name} has no script {}", script.display());
        let config = scripts.join(format!("{name}.config.json"));
        for entry in std::fs::read_dir(&dir)? {
            let order = entry?.path();
            let Some(case) = order.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".order.json"))
            else {
                continue;
            };
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{case}.expected.json")))?)
                    .with_context(|| format!("{name}/{case}.expected.json"))?;
            let (code, out, err) =
                step_test(script.to_str().context("path")?, &order, config.exists().then_some(config.as_path()))?;
            assert_eq!(code, 0, "{name}/{case}: {err}");
            let got: Value = serde_json::from_str(&out).with_context(|| format!("{name}/{case} printed {out}"))?;
            assert_eq!(got, expected, "{name}/{case}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples found");
    Ok(())
}

#[test]
fn step_test_reports_a_failing_script_and_exits_non_zero() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("spin.rhai");
    std::fs::write(&script, "fn evaluate(ctx) { loop { } }")?;
    let order = workspace().join("scripts/examples/vendor-eligibility/no-vendor.order.json");
    let (code, _, err) = step_test(script.to_str().context("path")?, &order, None)?;
    assert_eq!(code, 1);
    assert!(err.contains("operation budget"), "{err}");
    std::fs::write(&script, "fn evaluate(ctx) {\n  let = 2;\n}")?;
    let (code, _, err) = step_test(script.to_str().context("path")?, &order, None)?;
    assert_ne!(code, 0);
    assert!(err.contains("line 2"), "{err}");
    Ok(())
}
