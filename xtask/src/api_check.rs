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

/// Installs schemathesis into the test tools' Python environment (`python`) on first use;
/// returns its command.
fn schemathesis(python: &Path) -> Result<PathBuf> {
    let venv = python.parent().and_then(Path::parent).context("the test tools' environment")?;
    let ready = venv.join(".schemathesis-4.32.5");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let child = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting greenlight serve")?;
    Ok(Host { child, url: format!("http://127.0.0.1:{port}") })
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
        let status = Command::new(&schemathesis)
            .current_dir(&dir)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("{}/v1/openapi.json", host.url), "--checks", "all", "--wait-for-schema", "30"])
            .args(["--no-color", "-H", &format!("Authorization: Bearer {token}")])
            .status()
            .context("starting schemathesis")?;
        drop(host);
        if status.success() {
            passed += 1;
        } else {
            eprintln!("xtask: api-check as {role} failed; the host's log is {}", dir.join("serve.log").display());
            failed += 1;
        }
    }
    println!("api-check: {passed} roles passed, {failed} failed");
    Ok((passed, failed))
}
