//! `cargo xtask api-check`: the HTTP contract of `/v1/openapi.json` checked against a running
//! host by schemathesis (pinned, in the test tools' Python environment), once per role: a fresh
//! demo tenant each time, every check schemathesis has, a fixed seed and bounded examples
//! (`xtask/api-check.toml`, which also names the few operations whose rules depend on the
//! tenant's data or the clock). `cargo xtask test` runs it after the tests.

use super::{root, run, target_dir};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The schemathesis release the check runs.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Whose tokens the check runs with: the demo's users of four roles (variable, role).
const ROLES: [(&str, &str); 4] =
    [("ADMIN", "admin"), ("ALICE", "requester"), ("CAROL", "approver"), ("GRACE", "auditor")];

/// The longest one role's run may take.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Installs schemathesis into the test tools' Python environment (`python`) on first use;
/// returns its command.
fn schemathesis(python: &Path) -> Result<PathBuf> {
    let venv = python.parent().and_then(Path::parent).context("the test tools' environment")?;
    let ready = venv.join(format!(".{}", SCHEMATHESIS.replace("==", "-")));
    if !ready.exists() {
        run(
            &format!("install {SCHEMATHESIS} (the API contract check)"),
            Command::new(python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", SCHEMATHESIS]),
        )?;
        std::fs::write(&ready, SCHEMATHESIS)?;
    }
    Ok(venv.join("bin").join("schemathesis"))
}

/// A token from the demo's tokens file (`export VAR=value` lines).
fn token(file: &Path, var: &str) -> Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {var}=")))
        .map(str::to_string)
        .with_context(|| format!("no {var} in {}", file.display()))
}

/// A host serving a fresh demo tenant, stopped when dropped.
struct Host {
    child: std::process::Child,
    url: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host(bin: &Path, plugins: &Path, dir: &Path) -> Result<Host> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let db = dir.join("greenlight.db");
    let demo = Command::new(bin)
        .current_dir(root())
        .arg("--db")
        .arg(&db)
        .args(["demo", "--scripts", "scripts", "--no-serve", "--plugins"])
        .arg(plugins)
        .arg("--tokens-file")
        .arg(dir.join("tokens.env"))
        .stdout(Stdio::null())
        .status()
        .context("starting greenlight demo")?;
    if !demo.success() {
        bail!("greenlight demo failed ({demo})");
    }
    // Port 0: the host takes a free one and says which on its first line (no race with another
    // process for a port picked here).
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let mut child = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting greenlight serve")?;
    let stdout = child.stdout.take().context("the host's output")?;
    let mut host = Host { child, url: String::new() };
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    host.url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("listening on ").nth(1).map(|u| u.trim().to_string()))
        .context("the host did not say where it listens")?;
    // Keep reading its output so the host never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(host)
}

/// Runs the check once per role; returns how many roles passed and how many failed.
pub fn check(bin: &Path, plugins: &Path, python: &Path) -> Result<(u64, u64)> {
    let schemathesis = schemathesis(python)?;
    let config = root().join("xtask").join("api-check.toml");
    let (mut passed, mut failed) = (0, 0);
    for (var, role) in ROLES {
        let dir = target_dir().join("api-check").join(role);
        let host = host(bin, plugins, &dir)?;
        let token = token(&dir.join("tokens.env"), var)?;
        eprintln!("xtask: api-check as {role} ({var}) against {}", host.url);
        let mut run = Command::new(&schemathesis)
            .current_dir(&dir)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{}/v1/openapi.json", host.url), "--checks", "all", "--wait-for-schema", "30"])
            .args(["--request-timeout", "10", "--no-color", "-H", &format!("Authorization: Bearer {token}")])
            .spawn()
            .context("starting schemathesis")?;
        // A run takes about half a minute; one that hangs is stopped and counts as failed.
        let deadline = std::time::Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = run.try_wait()? {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = run.kill();
                let _ = run.wait();
                eprintln!("xtask: api-check as {role} took longer than {} s and was stopped", RUN_LIMIT.as_secs());
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let status = status.is_some_and(|s| s.success());
        drop(host);
        if status {
            passed += 1;
        } else {
            eprintln!("xtask: api-check as {role} failed; the host's log is {}", dir.join("serve.log").display());
            failed += 1;
        }
    }
    println!("api-check: {passed} roles passed, {failed} failed");
    Ok((passed, failed))
}
