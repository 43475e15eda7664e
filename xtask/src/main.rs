//! `cargo xtask <task>`: the project's two set-up commands and its helpers.
//!
//! - `demo`: installs the WASM targets if missing, builds, creates a fresh demo database
//!   (`demo-data/greenlight.db`) and serves it on 127.0.0.1:8080.
//! - `test`: everything the project tests: formatting, clippy with `-D warnings`, unit,
//!   property and end-to-end tests against the real binary.
//! - `bench`: release-mode measurements, each beside its baseline from the same run.
//! - `plugins`: builds the shipped plugins and the test fixtures ([`plugins`]).
//! - `api-check`: schemathesis against a demo host, once per role ([`api_check`]).

mod api_check;
mod plugins;

use anyhow::{Context, Result, bail};
use plugins::plugins;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// A string at `path` (e.g. `["package", "name"]`) of a TOML file.
fn toml_str(file: &Path, path: &[&str]) -> Result<Option<String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut value: toml::Value =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    for key in path {
        match value.get(*key) {
            Some(v) => value = v.clone(),
            None => return Ok(None),
        }
    }
    Ok(value.as_str().map(str::to_string))
}

fn demo(args: &[String]) -> Result<()> {
    let plugin_dir = plugins()?;
    run("build the host", cargo().args(["build", "-p", "greenlight-host", "--bin", "greenlight"]))?;
    let data = root().join("demo-data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("removing the old {}", data.display()))?;
    }
    std::fs::create_dir_all(&data)?;
    let bin = target_dir().join("debug").join("greenlight");
    let mut cmd = Command::new(bin);
    cmd.current_dir(root())
        .arg("--db")
        .arg(data.join("greenlight.db"))
        .args(["demo", "--scripts", "scripts", "--tokens-file", "demo-data/tokens.env", "--plugins"])
        .arg(&plugin_dir)
        .args(args);
    run("greenlight demo (Ctrl-C stops it)", &mut cmd)
}

/// The version of aiosmtpd the e-mail tests receive mail with.
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// A Python with aiosmtpd, the real SMTP server the e-mail tests send to: a virtual environment
/// under `target/test-tools`, created on first use. Returns its interpreter.
fn test_python() -> Result<PathBuf> {
    let venv = target_dir().join("test-tools").join("venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".aiosmtpd-1.4.6");
    if ready.exists() {
        return Ok(python);
    }
    run("create the test tools' Python environment", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(
        "install aiosmtpd (the SMTP server of the e-mail tests)",
        Command::new(&python).args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", AIOSMTPD]),
    )?;
    std::fs::write(&ready, AIOSMTPD)?;
    Ok(python)
}

/// The axe-core release the accessibility checks run (from the npm registry).
const AXE_CORE: &str = "axe-core@4.10.3";
/// Its script's SHA-256, so a changed package is refused rather than trusted.
const AXE_CORE_SHA256: &str = "880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb";

/// The browser tests' tools: Debian's Chromium and ChromeDriver (installed with apt-get when
/// missing; Debian's security channel moves their version, so the package, not a version, is
/// named) and axe-core, pinned and checked, unpacked under `target/test-tools`. Returns the
/// path of `axe.min.js`.
fn browser_tools() -> Result<PathBuf> {
    let (chromium, driver) = (Path::new("/usr/bin/chromium"), Path::new("/usr/bin/chromedriver"));
    if !chromium.exists() || !driver.exists() {
        let sudo = if is_root() { None } else { Some("sudo") };
        let apt = |args: &[&str]| {
            let mut cmd = Command::new(sudo.unwrap_or("apt-get"));
            if sudo.is_some() {
                cmd.arg("apt-get");
            }
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        };
        run("apt-get update (for chromium)", &mut apt(&["update", "-qq"]))?;
        run(
            "install chromium and chromium-driver (the browser tests)",
            &mut apt(&["install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"]),
        )?;
    }
    let dir = target_dir().join("test-tools").join("axe-core-4.10.3");
    let script = dir.join("package").join("axe.min.js");
    if !script.exists() {
        std::fs::create_dir_all(&dir)?;
        run(
            &format!("fetch {AXE_CORE} (the accessibility checks)"),
            Command::new("npm").args(["pack", AXE_CORE, "--silent"]).current_dir(&dir),
        )?;
        run("unpack axe-core", Command::new("tar").args(["xzf", "axe-core-4.10.3.tgz"]).current_dir(&dir))?;
    }
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&script)?))
    };
    if sha != AXE_CORE_SHA256 {
        bail!(
            "{} has SHA-256 {sha}, not the pinned {AXE_CORE_SHA256}: remove {} and run again",
            script.display(),
            dir.display()
        );
    }
    Ok(script)
}

/// Whether this process runs as root (uid 0), read from /proc so no libc call is needed.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn test() -> Result<()> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
    run("cargo clippy -D warnings", cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The binary the end-to-end tests drive comes out of the same invocation as the tests, so
    // the workspace's dependencies (wasmtime among them) are built once, with one feature set:
    // `cargo build -p greenlight-host` alone resolves features differently and builds them again.
    run("build the tests and the greenlight binary", cargo().args(["test", "--workspace", "--no-run"]))?;
    let plugin_dir = plugins()?;
    let python = test_python()?;
    let axe = browser_tools()?;
    let bin = target_dir().join("debug").join("greenlight");
    let (mut passed, mut failed) = run_counting_tests(
        cargo()
            .args(["test", "--workspace"])
            .env("GREENLIGHT_BIN", bin)
            .env("GREENLIGHT_PLUGINS", &plugin_dir)
            .env("GREENLIGHT_TEST_PYTHON", &python)
            .env("GREENLIGHT_AXE", &axe),
    )?;
    // The shipped plugins' own unit tests run natively, as a plugin author's would (JavaScript
    // ones under Node.js): one cargo
    // invocation per world, since the SDK takes exactly one world feature and cargo unifies
    // features across the packages of one invocation.
    const NATIVE_TESTS: [&[&str]; 3] = [
        &["large-order", "cost-center", "spend-limit", "subscription", "compliance", "customer-credit"],
        &["notify-webhook", "notify-email", "notify-sms"],
        &["erp-rest"],
    ];
    for group in NATIVE_TESTS {
        let mut cmd = cargo();
        cmd.args(["test", "--manifest-path", "plugins/Cargo.toml"]);
        for name in group {
            cmd.args(["-p", name]);
        }
        cmd.arg("--target-dir").arg(target_dir().join("plugins-native"));
        let (p, f) = run_counting_tests(&mut cmd)?;
        passed += p;
        failed += f;
    }
    let (p, f) = plugins::js_tests()?;
    passed += p;
    failed += f;
    // The HTTP contract, checked by schemathesis: one test per role.
    let (p, f) = api_check::check(&target_dir().join("debug").join("greenlight"), &plugin_dir, &python)?;
    passed += p;
    failed += f;
    // The one closing line CI reads: the whole suite, not the last test binary.
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("xtask: cargo test --workspace");
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().context("could not start cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word)?.split_whitespace().last()?.parse::<u64>().ok())
            };
            passed += count("passed").unwrap_or(0);
            failed += count("failed").unwrap_or(0);
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed))
}

/// The benchmarks, each a release-mode example that prints one `BENCH {json}` line per row.
const BENCHES: [(&str, &str); 9] = [
    ("step_calls", "step calls: through the host vs raw wasmtime and raw rhai"),
    ("policy_chain", "policy chain: the demo tenant's whole chain vs the sum of its raw step calls"),
    ("durable_submits", "durable submits: group commit vs one fsync per change vs raw inserts"),
    ("audit_verify", "audit verify: the stored chain vs sha256 over the same bytes"),
    ("http_end_to_end", "HTTP end to end and memory: the release binary under load vs axum hello-world"),
    ("request_view", "request view and reports: the first filtered page and the summary over 1,000,000 orders"),
    ("startup", "start-up: serve to the first answer with 10 plugins, artifact cache warm and cold"),
    ("simulation", "what-if: orders simulated per second on the demo chain vs the two evaluations alone"),
    ("notifier_calls", "notifiers: the JavaScript one's calls and loads vs the Rust one's"),
];

/// `cargo xtask bench [--quick]`: builds the release binary and the benchmarks, runs every
/// benchmark, prints one table of figures beside their same-run baselines, and writes the rows to
/// `target/bench/results.json`. Plugins come from `$GREENLIGHT_PLUGINS` when it names a folder of
/// built plugins, else they are built (`cargo xtask plugins`).
fn bench(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let plugin_dir = match std::env::var_os("GREENLIGHT_PLUGINS").map(PathBuf::from) {
        Some(dir) if dir.join("spend-limit").join("manifest.toml").exists() => {
            eprintln!("xtask: using the plugins in {}", dir.display());
            dir
        }
        _ => plugins()?,
    };
    let built = std::time::Instant::now();
    // Everything is built first, so the run time below is the benchmarks' alone.
    run(
        "build the release binary and the benchmarks",
        cargo().args(["build", "--release", "-p", "greenlight-host", "--bin", "greenlight", "--examples"]),
    )?;
    let build_seconds = built.elapsed().as_secs();
    let bin = target_dir().join("release").join("greenlight");
    let started = std::time::Instant::now();
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let mut timings = Vec::new();
    let mut failed = Vec::new();
    for (example, what) in BENCHES {
        eprintln!("==> {what}");
        let one = std::time::Instant::now();
        // The binaries built above, run directly: nothing rebuilds while the clock runs.
        let out = Command::new(target_dir().join("release").join("examples").join(example))
            .current_dir(root())
            .args(args)
            .env("GREENLIGHT_PLUGINS", &plugin_dir)
            .env("GREENLIGHT_BIN", &bin)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running the {example} benchmark"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            match line.strip_prefix("BENCH ") {
                Some(json) => {
                    rows.push(serde_json::from_str(json).with_context(|| format!("{example}: bad BENCH line {json}"))?)
                }
                None => eprintln!("    {line}"),
            }
        }
        let ms = one.elapsed().as_millis() as u64;
        eprintln!("    ({}.{} s)", ms / 1000, ms % 1000 / 100);
        timings.push(serde_json::json!({"example": example, "milliseconds": ms, "ok": out.status.success()}));
        // One broken benchmark does not hide the others' figures.
        if !out.status.success() {
            eprintln!("xtask: the {example} benchmark failed ({})", out.status);
            failed.push(example);
        }
    }
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("\n| row | what | figure | p99 | baseline (same run) | baseline figure | ratio | goal | met |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let unit = r["unit"].as_str().unwrap_or("");
        println!(
            "| {} | {} | {} {unit} | {} | {} | {} | {} | {} | {} |",
            cell(&r["row"]),
            cell(&r["what"]),
            cell(&r["figure"]),
            r.get("p99").map(|p| format!("{} {unit}", cell(p))).unwrap_or_else(|| "-".into()),
            cell(&r["baseline"]),
            if r["baseline_value"].is_null() {
                "-".to_string()
            } else {
                format!("{} {unit}", cell(&r["baseline_value"]))
            },
            if r["ratio"].is_null() { "-".to_string() } else { format!("{}x", cell(&r["ratio"])) },
            cell(&r["goal"]),
            match r["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
        );
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let results = serde_json::json!({
        "quick": quick,
        "cores": cores,
        "seconds": started.elapsed().as_secs(),
        "build_seconds": build_seconds,
        "benchmarks": timings,
        "failed": failed,
        "rows": rows,
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    println!(
        "\n{} rows in {} s (after {build_seconds} s of building) on {cores} cores; written to {}",
        rows.len(),
        started.elapsed().as_secs(),
        dir.join("results.json").display()
    );
    if !failed.is_empty() {
        bail!("benchmarks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `cargo xtask dist`: a self-contained folder a user can copy to a server —
/// `target/dist/greenlight/` with the release binary, the shipped plugins and scripts as its
/// catalog (`greenlight serve` installs the `catalog` folder beside it at start), and a README.
/// Test fixtures and the native sample are left out.
fn dist() -> Result<()> {
    let built = plugins()?;
    run(
        "build the release binary",
        cargo().args(["build", "--release", "-p", "greenlight-host", "--bin", "greenlight"]),
    )?;
    let out = target_dir().join("dist").join("greenlight");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing the old {}", out.display()))?;
    }
    let catalog = out.join("catalog");
    std::fs::create_dir_all(catalog.join("plugins"))?;
    std::fs::create_dir_all(catalog.join("scripts"))?;
    std::fs::copy(target_dir().join("release").join("greenlight"), out.join("greenlight"))?;
    // The shipped plugins are the crates directly under plugins/; their built folder is named
    // after the manifest's `name`.
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(root().join("plugins"))? {
        let manifest = entry?.path().join("manifest.toml");
        if let Some(name) = manifest.exists().then(|| toml_str(&manifest, &["name"])).transpose()?.flatten() {
            shipped.push(name);
        }
    }
    shipped.sort();
    for name in &shipped {
        let (from, to) = (built.join(name), catalog.join("plugins").join(name));
        std::fs::create_dir_all(&to)?;
        for file in std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))? {
            let file = file?;
            std::fs::copy(file.path(), to.join(file.file_name()))?;
        }
    }
    let mut scripts = 0;
    for entry in std::fs::read_dir(root().join("scripts"))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".rhai") || name.ends_with(".config.json") {
            std::fs::copy(&path, catalog.join("scripts").join(&name))?;
            scripts += usize::from(name.ends_with(".rhai"));
        }
    }
    std::fs::write(out.join("README.md"), DIST_README)?;
    eprintln!(
        "xtask: {} holds greenlight, {} plugins and {scripts} scripts in catalog/, and README.md",
        out.display(),
        shipped.len()
    );
    Ok(())
}

/// The README of a `cargo xtask dist` folder.
const DIST_README: &str = "# Greenlight

This folder is self-contained: copy it to a server.

    ./greenlight --db greenlight.db tenant create acme          # prints the admin's API token
    ./greenlight --db greenlight.db tenant set-password --tenant acme admin   # reads it from stdin
    ./greenlight --db greenlight.db serve --listen 0.0.0.0:8080

`serve` installs `catalog/` (the shipped plugins and scripts) at start, so every tenant's admin
can enable them on the dashboard's Extensions page or with `PUT /v1/admin/extensions/{name}`.
Installing is idempotent; a newer version in a later catalog is offered, never swapped in:
admins take up a script's upgrade themselves, the operator a plugin's with
`greenlight plugin upgrade NAME`. Behind a proxy that terminates TLS, add `--secure-cookies`.
";

/// `cargo xtask api-check` on its own: builds what it needs, then checks.
fn api_check() -> Result<()> {
    run("build the host", cargo().args(["build", "-p", "greenlight-host", "--bin", "greenlight"]))?;
    let plugin_dir = plugins()?;
    let python = test_python()?;
    let (_, failed) = api_check::check(&target_dir().join("debug").join("greenlight"), &plugin_dir, &python)?;
    if failed > 0 {
        bail!("the API contract check failed for {failed} roles");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("plugins") => plugins().map(|_| ()),
        Some("dist") => dist(),
        Some("api-check") => api_check(),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo|test|bench|plugins|dist|api-check>\n  demo   build and serve a demo tenant on 127.0.0.1:8080\n  test   everything the project tests\n  bench  release-mode measurements against same-run baselines\n  plugins  build every plugin into target/plugins/<name>/\n  dist   a self-contained folder (binary, shipped plugins and scripts, README) in target/dist/greenlight/\n  api-check  schemathesis against a throwaway demo host, with the tokens of four roles"
            );
            std::process::exit(2);
        }
    }
}
