//! Building the plugins: every crate under `plugins/` (and the test fixtures under
//! `plugins/testing/`) as a WebAssembly component, the native samples as shared libraries, each
//! laid out as `target/plugins/<name>/` with its manifest beside its code, ready for
//! `greenlight plugin install target/plugins/<name>/manifest.toml`.
//!
//! Approval steps are built for `wasm32-unknown-unknown` and made into components here (by
//! `wit-component`, no WASI adapter): they import nothing but the plugin API, so a step can reach
//! nothing else, and a third smaller. (Measured: a call takes as long as one of the same step
//! built for `wasm32-wasip2`, since the host makes WASI only when a guest first calls it.) Connectors and notifiers, and
//! any crate that sets `[package.metadata.greenlight] target = "wasm32-wasip2"` (the fixtures
//! standing for plugins built that way), are built for `wasm32-wasip2`.

use super::{cargo, root, run, target_dir, toml_str};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The targets plugins are built for.
const TARGETS: [&str; 2] = [PURE, WASIP2];
/// Approval steps: no WASI, made into components by `wit-component`.
const PURE: &str = "wasm32-unknown-unknown";
/// Connectors and notifiers: the Rust standard library's component target.
const WASIP2: &str = "wasm32-wasip2";

/// Adds the WASM targets the plugins build for, if rustup lacks them.
fn ensure_wasm_targets() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) => {
            let have = String::from_utf8_lossy(&out.stdout).to_string();
            for target in TARGETS {
                if !have.lines().any(|l| l.trim() == target) {
                    run(
                        &format!("rustup target add {target}"),
                        Command::new("rustup").args(["target", "add", target]),
                    )?;
                }
            }
            Ok(())
        }
        Err(_) => {
            eprintln!("xtask: rustup not found; install the targets {TARGETS:?} yourself to build plugins");
            Ok(())
        }
    }
}

/// The crates in a directory, by name.
fn crates_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists() && p.file_name().is_some_and(|n| n != "target"))
        .collect();
    found.sort();
    Ok(found)
}

/// The target a plugin crate is built for: its own choice, else by its manifest's world.
fn target_of(dir: &Path) -> Result<&'static str> {
    let chosen = toml_str(&dir.join("Cargo.toml"), &["package", "metadata", "greenlight", "target"])?;
    let world = toml_str(&dir.join("manifest.toml"), &["world"])?;
    Ok(match (chosen.as_deref(), world.as_deref()) {
        (Some(WASIP2), _) => WASIP2,
        (Some(PURE), _) | (None, Some("approval-step")) => PURE,
        (None, _) => WASIP2,
        (Some(other), _) => anyhow::bail!("{}: unknown plugin target '{other}'; use {PURE} or {WASIP2}", dir.display()),
    })
}

/// Makes a core module built for `wasm32-unknown-unknown` into a component: the plugin API's
/// types come from the component-type section `wit-bindgen` put in the module; no adapter.
fn componentize(module: &Path, out: &Path) -> Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .with_context(|| format!("{} is not a module wit-component can encode", module.display()))?
        .validate(true)
        .encode()
        .with_context(|| format!("making {} a component", module.display()))?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

/// The folders of JavaScript plugins in a directory: a `package.json` beside a `manifest.toml`.
fn js_plugins_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("package.json").exists() && p.join("manifest.toml").exists())
        .collect();
    found.sort();
    Ok(found)
}

/// Installs the JavaScript plugins' tools with `npm ci` unless the lock file they were installed
/// from is the one checked in (a marker in `node_modules` keeps its SHA-256) and jco is there.
fn ensure_js_tools(plugins: &Path) -> Result<()> {
    use sha2::Digest;
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|o| o.status.success()) {
        anyhow::bail!(
            "npm is missing: install Node.js 20.19 or newer with npm (they build the JavaScript plugins under plugins/)"
        );
    }
    let lock = std::fs::read(plugins.join("package-lock.json")).context("reading plugins/package-lock.json")?;
    let want = hex::encode(sha2::Sha256::digest(&lock));
    let modules = plugins.join("node_modules");
    let marker = modules.join(".greenlight-lock-sha256");
    let installed = std::fs::read_to_string(&marker).is_ok_and(|have| have.trim() == want);
    if installed && modules.join(".bin").join("jco").exists() {
        return Ok(());
    }
    // `--include=dev`: jco is a development dependency, which NODE_ENV=production would omit.
    run(
        "npm ci (the JavaScript plugins' tools, pinned by plugins/package-lock.json)",
        Command::new("npm")
            .args(["ci", "--include=dev", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(plugins),
    )?;
    std::fs::write(&marker, want).with_context(|| format!("writing {}", marker.display()))
}

/// Builds one JavaScript plugin with its own `npm run build`; returns its component.
fn build_js(plugins: &Path, dir: &Path, component: &str) -> Result<PathBuf> {
    let workspace = dir.strip_prefix(plugins).unwrap_or(dir);
    run(
        &format!("build JavaScript plugin {}", workspace.display()),
        Command::new("npm").args(["run", "build", "--silent", "--workspace"]).arg(workspace).current_dir(plugins),
    )?;
    let built = dir.join("dist").join(component);
    anyhow::ensure!(built.exists(), "{}: `npm run build` wrote no dist/{component}", dir.display());
    Ok(built)
}

/// The JavaScript plugins' own unit tests, under Node.js (`npm test` in each workspace that has
/// one), once [`plugins`] has installed their tools: (passed, failed), summed from the TAP
/// summary lines `# pass N` and `# fail N`.
pub fn js_tests() -> Result<(u64, u64)> {
    let plugins = root().join("plugins");
    eprintln!("xtask: npm test (the JavaScript plugins' unit tests)");
    let out = Command::new("npm")
        .args(["test", "--workspaces", "--if-present", "--", "--test-reporter=tap"])
        .current_dir(&plugins)
        .output()
        .context("could not start npm test")?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let sum = |key: &str| -> u64 { text.lines().filter_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok()).sum() };
    let (passed, failed) = (sum("# pass "), sum("# fail "));
    if !out.status.success() && failed == 0 {
        anyhow::bail!("npm test failed ({}) without a failing test: see its output above", out.status);
    }
    Ok((passed, failed))
}

/// Builds every plugin and lays each out under `target/plugins/<name>/`; returns that folder.
pub fn plugins() -> Result<PathBuf> {
    ensure_wasm_targets()?;
    let target = target_dir();
    let wasm_target = target.join("wasm-plugins");
    let native_target = target.join("native-plugins");
    let components = wasm_target.join("components");
    std::fs::create_dir_all(&components)?;
    let plugins = root().join("plugins");
    // Shipped plugins (plugins/<name>) first, then the test fixtures (plugins/testing/<name>).
    let mut wasm_crates = crates_in(&plugins)?;
    wasm_crates.extend(crates_in(&plugins.join("testing"))?);
    // One cargo invocation per plugin: each picks its own world feature of the SDK, which a
    // whole-workspace build would unify.
    for dir in &wasm_crates {
        let package = toml_str(&dir.join("Cargo.toml"), &["package", "name"])?
            .with_context(|| format!("{} has no package name", dir.display()))?;
        let wasm = target_of(dir)?;
        run(
            &format!("build WASM plugin {package} ({wasm})"),
            cargo()
                .args(["build", "--release", "--target", wasm, "--manifest-path", "plugins/Cargo.toml", "-p", &package])
                .arg("--target-dir")
                .arg(&wasm_target),
        )?;
    }
    let out = target.join("plugins");
    std::fs::create_dir_all(&out)?;
    let mut js = js_plugins_in(&plugins)?;
    js.extend(js_plugins_in(&plugins.join("testing"))?);
    if !js.is_empty() {
        ensure_js_tools(&plugins)?;
    }
    let mut dirs = wasm_crates.clone();
    dirs.extend(crates_in(&plugins.join("native"))?);
    dirs.extend(js.iter().cloned());
    for dir in dirs {
        let manifest = dir.join("manifest.toml");
        if !manifest.exists() {
            continue;
        }
        let field = |key: &str| toml_str(&manifest, &[key]);
        let name = field("name")?.with_context(|| format!("{} has no name", manifest.display()))?;
        let built = if let (Some(component), true) = (field("component")?, js.contains(&dir)) {
            build_js(&plugins, &dir, &component)?
        } else if let Some(component) = field("component")? {
            let wasm = target_of(&dir)?;
            let built = wasm_target.join(wasm).join("release").join(&component);
            if wasm == PURE {
                let made = components.join(&component);
                componentize(&built, &made)?;
                made
            } else {
                built
            }
        } else {
            let library =
                field("library")?.with_context(|| format!("{} names no component or library", manifest.display()))?;
            run(
                &format!("build native plugin {name}"),
                cargo()
                    .args(["build", "--release", "--manifest-path"])
                    .arg(dir.join("Cargo.toml"))
                    .arg("--target-dir")
                    .arg(&native_target),
            )?;
            native_target.join("release").join(library)
        };
        let dest = out.join(&name);
        std::fs::create_dir_all(&dest)?;
        std::fs::copy(&manifest, dest.join("manifest.toml"))?;
        let file = built.file_name().context("file name")?;
        std::fs::copy(&built, dest.join(file)).with_context(|| format!("copying {}", built.display()))?;
    }
    eprintln!("xtask: plugins are in {}", out.display());
    Ok(out)
}
