//! A small WebDriver client: headless Chromium driven through ChromeDriver (both from Debian's
//! packages, installed by `cargo xtask test`), and axe-core (pinned, from the npm registry) run in
//! the page for accessibility. Only what the browser tests use: open, find, type, click, read,
//! screenshot, run a script.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
}

/// axe-core's script, from `$GREENLIGHT_AXE` (set by `cargo xtask test`).
pub fn axe_script() -> Result<String> {
    let path = std::env::var_os("GREENLIGHT_AXE").map(PathBuf::from).context(
        "GREENLIGHT_AXE is not set: run the browser tests through `cargo xtask test`, which installs axe-core",
    )?;
    std::fs::read_to_string(&path).with_context(|| format!("reading axe-core from {}", path.display()))
}

/// A ChromeDriver process and one headless Chromium session on it; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium with a new, empty profile.
    pub fn start() -> Result<Browser> {
        let chromedriver = env_path("GREENLIGHT_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = env_path("GREENLIGHT_CHROMIUM", "/usr/bin/chromium");
        for tool in [&chromedriver, &chromium] {
            if !tool.exists() {
                bail!(
                    "{} is missing: `cargo xtask test` installs Debian's chromium and chromium-driver",
                    tool.display()
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(format!("{base}/status")).call().is_err() {
            if Instant::now() > deadline {
                bail!("ChromeDriver did not answer on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir()?;
        // The flags keep Chromium off the network it cannot reach here, and sandboxless as root.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let mut b = Browser { driver, base, session: String::new(), agent, _profile: profile };
        let created = b.raw("POST", "/session", Some(caps))?;
        b.session = created["value"]["sessionId"].as_str().context("ChromeDriver created no session")?.to_string();
        Ok(b)
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call()?,
            ("DELETE", _) => self.agent.delete(&url).call()?,
            (_, b) => self.agent.post(&url).send_json(b.unwrap_or(json!({})))?,
        };
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        if status >= 400 {
            bail!("WebDriver {method} {path}: {status} {}", v["value"]["message"]);
        }
        Ok(v)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        Ok(self.raw(method, &format!("/session/{}{path}", self.session), body)?["value"].take())
    }

    /// Opens a URL and waits for the page to load.
    pub fn open(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(json!({"url": url})))?;
        Ok(())
    }

    /// The current URL.
    pub fn url(&self) -> Result<String> {
        Ok(self.cmd("GET", "/url", None)?.as_str().unwrap_or_default().to_string())
    }

    /// The page's HTML as it is now.
    pub fn source(&self) -> Result<String> {
        Ok(self.cmd("GET", "/source", None)?.as_str().unwrap_or_default().to_string())
    }

    /// The first element matching a CSS selector.
    pub fn find(&self, css: &str) -> Result<String> {
        let v = self
            .cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .with_context(|| format!("no element matches {css}"))?;
        Ok(v[ELEMENT].as_str().with_context(|| format!("no element reference for {css} in {v}"))?.to_string())
    }

    /// Types into the element matching `css` (for a file input: an absolute path uploads it).
    pub fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{e}/value"), Some(json!({"text": text})))?;
        Ok(())
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) -> Result<()> {
        let e = self.find(css)?;
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))?;
        Ok(())
    }

    /// Clicks the element matching `css` and waits until the page it leads to has loaded (a
    /// form's answer, a link's page), up to 20 s.
    pub fn submit(&self, css: &str) -> Result<()> {
        self.script("window.__greenlight_old_page = true;", json!([]))?;
        self.click(css)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.script(
                "return window.__greenlight_old_page === undefined && document.readyState === 'complete';",
                json!([]),
            );
            if matches!(state, Ok(Value::Bool(true))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("clicking {css} led to no new page within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to 10 s until an element matching `css` shows text containing `wanted` (a part
    /// of the page swapped in by a script), and returns that text.
    pub fn wait_for_text(&self, css: &str, wanted: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(t) = self.text(css)
                && t.contains(wanted)
            {
                return Ok(t);
            }
            if Instant::now() > deadline {
                bail!("no {css} showed {wanted:?} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The visible text of the element matching `css`.
    pub fn text(&self, css: &str) -> Result<String> {
        let e = self.find(css)?;
        Ok(self.cmd("GET", &format!("/element/{e}/text"), None)?.as_str().unwrap_or_default().to_string())
    }

    /// Runs a script in the page and returns its result.
    pub fn script(&self, script: &str, args: Value) -> Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// Saves a PNG screenshot of the window.
    pub fn screenshot(&self, to: &Path) -> Result<()> {
        let b64 = self.cmd("GET", "/screenshot", None)?;
        let bytes = decode_base64(b64.as_str().context("screenshot")?)?;
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(to, bytes)?;
        Ok(())
    }

    /// Runs axe-core on the page and returns the serious and critical violations, each as
    /// `id: help (the first offending element)`.
    pub fn accessibility_violations(&self, axe: &str) -> Result<Vec<String>> {
        self.script(axe, json!([]))?;
        let found = self.cmd(
            "POST",
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[arguments.length - 1];
                           axe.run(document, {resultTypes: ['violations']})
                              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                                        node: (v.nodes[0] || {}).html}))))
                              .catch(e => done([{id: 'axe-failed', impact: 'critical', help: String(e)}]));",
                "args": []
            })),
        )?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| format!("{}: {} ({})", v["id"], v["help"], v["node"]))
            .collect())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (screenshots), without a dependency for one call.
fn decode_base64(s: &str) -> Result<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c).context("not base64")? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::decode_base64("aGVsbG8=").unwrap_or_default(), b"hello");
        assert_eq!(super::decode_base64("aGk=").unwrap_or_default(), b"hi");
        assert_eq!(super::decode_base64("YWJj").unwrap_or_default(), b"abc");
    }
}
