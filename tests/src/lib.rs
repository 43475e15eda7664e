//! Harness for the end-to-end tests: starts the real `greenlight` binary on a random port with a
//! temporary database, and talks to it over HTTP. No mocks: real process, real SQLite file,
//! real sockets.

pub mod browser;
mod sinks;
pub mod totp;

pub use sinks::{Mail, Received, Receiver, SmtpSink};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binary under test: `$GREENLIGHT_BIN`, else `target/debug/greenlight` of this workspace
/// (`cargo xtask test` builds it first).
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GREENLIGHT_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let p = target.join("debug").join("greenlight");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p greenlight-host` (or `cargo xtask test`) first",
        p.display()
    );
    p
}

/// The workspace root, for shipped scripts and examples.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The plugins built by `cargo xtask plugins`: `$GREENLIGHT_PLUGINS` or `target/plugins`.
pub fn plugins() -> PathBuf {
    let dir =
        std::env::var_os("GREENLIGHT_PLUGINS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/plugins"));
    assert!(
        dir.join("large-order/manifest.toml").exists(),
        "{} has no built plugins: run `cargo xtask plugins` first",
        dir.display()
    );
    dir
}

/// Runs the CLI on a database and returns (exit code, stdout, stderr).
pub fn cli(db: &Path, args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env("GREENLIGHT_LOG", "warn")
        .output()
        .context("running greenlight")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A running server on its own temporary database. Its log goes to a file, checked when the
/// server is dropped: a panic anywhere in the server fails the test that drove it.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The database file.
    pub db: PathBuf,
    /// The server's pid, for reading its memory from /proc.
    pub pid: u32,
    log: tempfile::NamedTempFile,
    dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh database and a server on it.
    pub fn start() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("greenlight.db");
        let mut s = Server::on(&db)?;
        s.dir = Some(dir);
        Ok(s)
    }

    /// A fresh database and a server on it, started with extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("greenlight.db");
        let mut s = Server::on_with(&db, args)?;
        s.dir = Some(dir);
        Ok(s)
    }

    /// A fresh database and a server on it that logs by `filter` (`GREENLIGHT_LOG`) instead of
    /// warnings only.
    pub fn start_logging(filter: &str) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("greenlight.db");
        let mut s = Server::spawn(&db, &[], filter)?;
        s.dir = Some(dir);
        Ok(s)
    }

    /// A fresh database and a server on it, started with extra `serve` arguments and logging by
    /// `filter`.
    pub fn start_logging_with(filter: &str, args: &[&str]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("greenlight.db");
        let mut s = Server::spawn(&db, args, filter)?;
        s.dir = Some(dir);
        Ok(s)
    }

    /// A server on an existing database (e.g. after a crash).
    pub fn on(db: &Path) -> Result<Server> {
        Server::on_with(db, &[])
    }

    /// A server on an existing database, with extra `serve` arguments.
    pub fn on_with(db: &Path, args: &[&str]) -> Result<Server> {
        Server::spawn(db, args, "warn")
    }

    fn spawn(db: &Path, args: &[&str], log_filter: &str) -> Result<Server> {
        let log = tempfile::NamedTempFile::new().context("creating the server's log file")?;
        let mut child = Command::new(bin())
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0", "--escalation-interval", "1"])
            .args(args)
            .env("GREENLIGHT_LOG", log_filter)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.reopen()?))
            .spawn()
            .context("starting greenlight serve")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("greenlight serve printed {line:?} instead of `listening on http://ADDR`");
        };
        Ok(Server { child: Some(child), url: url.to_string(), db: db.to_path_buf(), pid, log, dir: None })
    }

    /// What the server wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The server's resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }

    /// Creates a tenant through the CLI and returns a client for its admin.
    pub fn tenant(&self, name: &str) -> Result<Client> {
        let (code, out, err) = cli(&self.db, &["tenant", "create", name])?;
        if code != 0 {
            bail!("tenant create failed: {err}");
        }
        Ok(self.client(out.trim()))
    }

    /// A client with a token.
    pub fn client(&self, token: &str) -> Client {
        Client::new(&self.url, token)
    }

    /// SIGKILL, no shutdown: what a crash looks like.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Installs a plugin built by `cargo xtask plugins` with the CLI; returns what it printed.
    pub fn install_plugin(&self, name: &str) -> Result<Value> {
        let manifest = plugins().join(name).join("manifest.toml");
        let (code, out, err) = cli(&self.db, &["plugin", "install", &manifest.to_string_lossy()])?;
        if code != 0 {
            bail!("installing {name}: {err}");
        }
        Ok(serde_json::from_str(out.trim())?)
    }

    /// Keeps the temporary folder alive after the server is gone.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self.dir.take()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_panics_are_told_from_plugin_output() {
        assert!(super::host_panic("thread 'tokio-runtime-worker' panicked at host/src/domain/order.rs:9:5:"));
        assert!(super::host_panic("ERROR a request panicked; it was rolled back and the host carries on error_id=1"));
        assert!(!super::host_panic("ERROR greenlight::plugin: panicked at testing/tp-panic/src/lib.rs:8:9:"));
        assert!(!super::host_panic("WARN order put on hold reason=step 'tp-panic' panicked: panicked at x"));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        let log = self.log();
        if std::thread::panicking() {
            // The test failed already: show what the server said, to explain why.
            if !log.is_empty() {
                eprintln!("--- greenlight serve log ---\n{log}--- end of log ---");
            }
        } else if let Some(line) = log.lines().find(|l| host_panic(l)) {
            panic!("the server panicked during this test ({line}); its log:\n{log}");
        }
    }
}

/// Whether a log line reports a panic of the host itself: Rust's panic message for a thread of
/// the server, or the host's report of a panic it caught. A plugin's own panic is logged as the
/// plugin's output (`panicked at testing/...`), fails only that call, and is not one.
fn host_panic(line: &str) -> bool {
    (line.contains("thread '") && line.contains("' panicked at "))
        || line.contains("panicked; it was rolled back and the host carries on")
}

/// A response: status and JSON body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
    /// Raw body.
    pub text: String,
}

impl Reply {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A downloaded response: status, headers (names in lower case) and raw body.
#[derive(Debug, Clone)]
pub struct Download {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Download {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Signs in to the dashboard's form as a browser would (no redirects followed), with an
/// `X-Forwarded-For` when given: the status and the session cookie (`gl_session=...`).
pub fn sign_in_form(
    url: &str,
    agent: &ureq::Agent,
    (tenant, name, password): (&str, &str, &str),
    forwarded_for: Option<&str>,
) -> Result<(u16, Option<String>)> {
    let mut req = agent.post(format!("{url}/sign-in"));
    if let Some(from) = forwarded_for {
        req = req.header("X-Forwarded-For", from);
    }
    let r = req.config().max_redirects(0).build().send_form([
        ("tenant", tenant),
        ("name", name),
        ("password", password),
    ])?;
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    Ok((r.status().as_u16(), cookie))
}

/// An HTTP client acting as one user.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// The bearer token.
    pub token: String,
}

impl Client {
    /// A client for `base` with `token`.
    pub fn new(base: &str, token: &str) -> Client {
        Client::with_agent(base, token, Client::agent(None))
    }

    /// A client for `base` with `token` and an agent of the caller's (e.g. one that trusts a
    /// test's own certificate).
    pub fn with_agent(base: &str, token: &str, agent: ureq::Agent) -> Client {
        Client { agent, base: base.to_string(), token: token.to_string() }
    }

    /// The agent every client uses; with `tls`, it trusts those roots only.
    pub fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
        let mut config =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30)));
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        config.build().into()
    }

    fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply> {
        let mut resp = r?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body, text })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GET.
    pub fn get(&self, path: &str) -> Result<Reply> {
        Self::finish(self.agent.get(format!("{}{path}", self.base)).header("Authorization", self.auth()).call())
    }

    /// POST a JSON value.
    pub fn post(&self, path: &str, body: Value) -> Result<Reply> {
        Self::finish(
            self.agent.post(format!("{}{path}", self.base)).header("Authorization", self.auth()).send_json(body),
        )
    }

    /// POST raw text as the body.
    pub fn post_raw(&self, path: &str, body: &str) -> Result<Reply> {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    /// POST raw bytes as the body (`application/octet-stream`).
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Reply> {
        Self::finish(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", self.auth())
                .header("Content-Type", "application/octet-stream")
                .send(body),
        )
    }

    /// GET, keeping the raw body and the headers (for downloads).
    pub fn download(&self, path: &str) -> Result<Download> {
        let mut resp = self.agent.get(format!("{}{path}", self.base)).header("Authorization", self.auth()).call()?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = resp.body_mut().with_config().limit(u64::MAX).read_to_vec()?;
        Ok(Download { status, headers, body })
    }

    /// POST without a body.
    pub fn post_empty(&self, path: &str) -> Result<Reply> {
        Self::finish(self.agent.post(format!("{}{path}", self.base)).header("Authorization", self.auth()).send_empty())
    }

    /// PUT a JSON value.
    pub fn put(&self, path: &str, body: Value) -> Result<Reply> {
        Self::finish(
            self.agent.put(format!("{}{path}", self.base)).header("Authorization", self.auth()).send_json(body),
        )
    }

    /// PATCH a JSON value.
    pub fn patch(&self, path: &str, body: Value) -> Result<Reply> {
        Self::finish(
            self.agent.patch(format!("{}{path}", self.base)).header("Authorization", self.auth()).send_json(body),
        )
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Result<Reply> {
        Self::finish(self.agent.delete(format!("{}{path}", self.base)).header("Authorization", self.auth()).call())
    }

    /// An order's audit trail, oldest first.
    pub fn audit(&self, order_id: &str) -> Result<Vec<Value>> {
        let r = self.get(&format!("/v1/orders/{order_id}/audit"))?;
        Ok(r.body.as_array().cloned().unwrap_or_default())
    }

    /// The first audit entry of an order with this action (`Null` when there is none).
    pub fn audit_entry(&self, order_id: &str, action: &str) -> Result<Value> {
        Ok(self.audit(order_id)?.into_iter().find(|e| e["action"] == action).unwrap_or_default())
    }

    /// Creates a user (as admin) and returns a client acting as that user.
    pub fn user(&self, name: &str, roles: &[&str], extra: Value) -> Result<Client> {
        let mut body = json!({"name": name, "roles": roles});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.post("/v1/admin/users", body)?;
        if r.status != 201 {
            bail!("creating user {name}: {} {}", r.status, r.text);
        }
        Ok(Client::new(&self.base, r.body["token"].as_str().context("token")?))
    }

    /// Installs a script (as admin) and enables it with a config at a position.
    pub fn enable_script(&self, name: &str, source: &str, position: i64, config: Value) -> Result<()> {
        let r = self.post("/v1/admin/scripts", json!({"name": name, "source": source}))?;
        if r.status != 201 {
            bail!("installing {name}: {} {}", r.status, r.text);
        }
        let r = self.put(
            &format!("/v1/admin/extensions/{name}"),
            json!({"enabled": true, "position": position, "config": config}),
        )?;
        if r.status != 200 {
            bail!("enabling {name}: {} {}", r.status, r.text);
        }
        Ok(())
    }

    /// Installs a shipped script from `scripts/` with its shipped config.
    pub fn enable_shipped(&self, name: &str, position: i64) -> Result<()> {
        let dir = workspace().join("scripts");
        let source = std::fs::read_to_string(dir.join(format!("{name}.rhai")))?;
        let cfg = dir.join(format!("{name}.config.json"));
        let config = if cfg.exists() { serde_json::from_str(&std::fs::read_to_string(cfg)?)? } else { json!({}) };
        self.enable_script(name, &source, position, config)
    }

    /// Waits (as an admin) until the tenant has a dead delivery, up to `timeout`, and returns the
    /// first one listed.
    pub fn wait_dead_delivery(&self, timeout: Duration) -> Result<Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let r = self.get("/v1/admin/deliveries?state=dead")?;
            if let Some(d) = r.body["deliveries"].as_array().and_then(|d| d.first()).cloned() {
                return Ok(d);
            }
            if std::time::Instant::now() > deadline {
                bail!("no delivery went dead within {timeout:?}: {}", r.text);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates an order and returns its id.
    pub fn order(&self, body: Value) -> Result<String> {
        let r = self.post("/v1/orders", body)?;
        if r.status != 201 {
            bail!("creating order: {} {}", r.status, r.text);
        }
        Ok(r.body["id"].as_str().context("id")?.to_string())
    }

    /// Submits an order and returns the reply.
    pub fn submit(&self, id: &str) -> Result<Reply> {
        self.post_empty(&format!("/v1/orders/{id}/submit"))
    }

    /// Decides a stage.
    pub fn decide(&self, id: &str, stage: &str, decision: &str, comment: Option<&str>) -> Result<Reply> {
        let mut body = json!({"stage": stage, "decision": decision});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        self.post(&format!("/v1/orders/{id}/decisions"), body)
    }
}

/// A simple order body: one line of `quantity × unit_price_minor` EUR.
pub fn order_body(quantity: i64, unit_price_minor: i64) -> Value {
    json!({"currency": "EUR", "lines": [{"sku": "SKU-1", "description": "widget", "quantity": quantity, "unit_price_minor": unit_price_minor}]})
}

/// `serve` arguments for delivery tests: loopback receivers allowed, retries after 100 ms then
/// 200 ms (capped at 1 s), `max_attempts` attempts in all, a dispatcher round every 50 ms.
pub fn fast_delivery(max_attempts: &'static str) -> Vec<&'static str> {
    vec![
        "--allow-private-network",
        "--delivery-backoff-ms",
        "100",
        "--delivery-max-delay-secs",
        "1",
        "--delivery-max-attempts",
        max_attempts,
        "--dispatch-interval-ms",
        "50",
    ]
}
