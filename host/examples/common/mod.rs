//! What the benchmarks share: timing, the release `greenlight` binary and its CLI, a server
//! process, figures from `/proc`, and a raw HTTP/1.1 keep-alive client (so the load generator
//! spends as little of the machine as possible on itself, and what it times is the server).
//!
//! Not every benchmark uses every helper, hence `dead_code`.

#![allow(dead_code)]

pub mod raw;

use greenlight_host::domain::order::{Line, OrderInput};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `--quick`: fewer iterations, smaller data.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// Rounds to `digits` decimals, for the JSON rows.
pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Sorted durations with their percentiles.
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Sorts the samples; there must be at least one.
    pub fn new(mut v: Vec<Duration>) -> Samples {
        assert!(!v.is_empty(), "no samples");
        v.sort_unstable();
        Samples(v)
    }

    /// The `p`-th percentile (nearest rank).
    pub fn pct(&self, p: usize) -> Duration {
        self.0[(self.0.len() * p / 100).min(self.0.len() - 1)]
    }

    /// Median in milliseconds.
    pub fn median_ms(&self) -> f64 {
        self.pct(50).as_secs_f64() * 1e3
    }

    /// 99th percentile in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        self.pct(99).as_secs_f64() * 1e3
    }

    /// Median in microseconds.
    pub fn median_us(&self) -> f64 {
        self.pct(50).as_secs_f64() * 1e6
    }

    /// 99th percentile in microseconds.
    pub fn p99_us(&self) -> f64 {
        self.pct(99).as_secs_f64() * 1e6
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Times `f` `iterations` times after a warm-up of a tenth as many (as `step_calls` does).
pub fn measure(iterations: usize, mut f: impl FnMut()) -> Samples {
    for _ in 0..iterations / 10 + 10 {
        f();
    }
    Samples::new(
        (0..iterations)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// The benchmarks' order: five lines of `unit_price_minor` each, quantities 1 to 5, standard
/// tax, budget category `hardware`, vendor ACME, in EUR.
pub fn five_lines(cost_center: Option<&str>, description: &str, unit_price_minor: i64) -> OrderInput {
    OrderInput {
        cost_center: cost_center.map(Into::into),
        department: Some("IT".into()),
        customer_id: None,
        vendor_id: Some("ACME".into()),
        currency: "EUR".parse().expect("EUR"),
        lines: (0..5)
            .map(|i| Line {
                sku: format!("SKU-{i}"),
                description: Some(description.into()),
                quantity: 1 + i,
                unit_price_minor,
                tax_category: Some("standard".into()),
                budget_category: Some("hardware".into()),
            })
            .collect(),
        recurrence: None,
        attributes: Default::default(),
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The plugins built by `cargo xtask plugins`: `$GREENLIGHT_PLUGINS` or `target/plugins`.
pub fn plugins() -> PathBuf {
    let dir =
        std::env::var_os("GREENLIGHT_PLUGINS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/plugins"));
    assert!(
        dir.join("spend-limit/manifest.toml").exists(),
        "{} has no built plugins: run `cargo xtask plugins`",
        dir.display()
    );
    dir
}

/// The release `greenlight` binary: `$GREENLIGHT_BIN` (set by `cargo xtask bench`, which builds
/// it), else `target/release/greenlight`.
pub fn bin() -> PathBuf {
    let p = std::env::var_os("GREENLIGHT_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
        target.join("release").join("greenlight")
    });
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release -p greenlight-host --bin greenlight` (cargo xtask bench does)",
        p.display()
    );
    p
}

/// Runs the CLI on a database; returns its stdout, or panics with its stderr.
pub fn cli(db: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env("GREENLIGHT_LOG", "warn")
        .output()
        .expect("running greenlight");
    assert!(out.status.success(), "greenlight {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real `greenlight demo --no-serve` in `dir`: its plugins and scripts, positions and
/// configuration. Returns the database and the file of the users' tokens (shell variables).
pub fn demo(dir: &Path) -> (PathBuf, PathBuf) {
    let (db, tokens) = (dir.join("demo.db"), dir.join("tokens.env"));
    let (scripts, plugins) = (workspace().join("scripts"), plugins());
    let args = [
        "demo",
        "--no-serve",
        "--scripts",
        &scripts.to_string_lossy(),
        "--plugins",
        &plugins.to_string_lossy(),
        "--tokens-file",
        &tokens.to_string_lossy(),
    ];
    cli(&db, &args);
    (db, tokens)
}

/// A server process that printed `listening on http://ADDR` as its first line.
pub struct Process {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its process id, for `/proc`.
    pub pid: u32,
}

impl Process {
    /// `greenlight --db DB [global args] serve --listen 127.0.0.1:0`.
    pub fn serve(db: &Path, global: &[&str]) -> Process {
        let mut cmd = Command::new(bin());
        cmd.arg("--db").arg(db).args(global).args(["serve", "--listen", "127.0.0.1:0"]).env("GREENLIGHT_LOG", "warn");
        Process::spawn(cmd)
    }

    /// Starts `cmd` and waits for its `listening on http://ADDR` line.
    pub fn spawn(mut cmd: Command) -> Process {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("starting the server");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("reading the server's first line");
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            panic!("the server printed {line:?} instead of `listening on http://ADDR`");
        };
        // Whatever else it prints must not fill the pipe and stall it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Process { pid: child.id(), addr: addr.to_string(), child: Some(child) }
    }

    /// Stops it the way an operator would (SIGTERM: graceful shutdown), SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in MiB.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no {field}"));
    kib / 1024.0
}

/// User plus system CPU time of a process (`None`: this one), in seconds, from `/proc/PID/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s: Linux's fixed `USER_HZ`).
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map(|p| format!("/proc/{p}/stat")).unwrap_or_else(|| "/proc/self/stat".into());
    let text = std::fs::read_to_string(path).expect("reading /proc/PID/stat");
    // The command name (field 2) may contain spaces; the fields after it are plain numbers.
    let rest = &text[text.rfind(')').expect("stat format") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i - 3].parse::<f64>().expect("stat field");
    (ticks(14) + ticks(15)) / 100.0
}

/// CPU time over wall time of a process across `f`: how many cores it kept busy.
pub struct CpuMeter {
    pid: Option<u32>,
    cpu: f64,
    wall: Instant,
}

impl CpuMeter {
    /// Starts measuring a process (`None`: this one).
    pub fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter { pid, cpu: cpu_seconds(pid), wall: Instant::now() }
    }

    /// Cores used since the start.
    pub fn cores(&self) -> f64 {
        (cpu_seconds(self.pid) - self.cpu) / self.wall.elapsed().as_secs_f64()
    }
}

/// One HTTP/1.1 keep-alive connection; requests go one after the other.
pub struct Http {
    stream: TcpStream,
    addr: String,
    buf: Vec<u8>,
}

/// A response: status, head and body.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics on anything else, with the body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Panics unless the status is `want`.
    pub fn expect(self, want: u16, what: &str) -> Reply {
        assert_eq!(self.status, want, "{what}: {}", String::from_utf8_lossy(&self.body));
        self
    }
}

impl Http {
    /// Connects to `127.0.0.1:PORT`.
    pub fn connect(addr: &str) -> Http {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        Http { stream, addr: addr.to_string(), buf: Vec::with_capacity(16 * 1024) }
    }

    /// GET with an optional bearer token.
    pub fn get(&mut self, path: &str, token: Option<&str>) -> Reply {
        self.request("GET", path, token, None)
    }

    /// POST a JSON body.
    pub fn post(&mut self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        self.request("POST", path, Some(token), Some(&body.to_string()))
    }

    /// PUT a JSON body.
    pub fn put(&mut self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        self.request("PUT", path, Some(token), Some(&body.to_string()))
    }

    /// Signs in to the dashboard and returns the session cookie (`gl_session=...`).
    pub fn sign_in(&mut self, tenant: &str, name: &str, password: &str) -> String {
        let form = format!("tenant={tenant}&name={name}&password={}", password.replace(' ', "+"));
        let req = format!(
            "POST /sign-in HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            self.addr,
            form.len()
        );
        self.stream.write_all(req.as_bytes()).expect("sign-in");
        let reply = self.read_reply().expect("sign-in reply");
        assert_eq!(reply.status, 303, "sign-in: {}", String::from_utf8_lossy(&reply.body));
        reply
            .head
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string()
    }

    /// GET a dashboard page with a session cookie.
    pub fn page(&mut self, path: &str, cookie: &str) -> Reply {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\r\n", self.addr);
        self.stream.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        self.read_reply().unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// One request and its whole response. Panics on I/O errors: a benchmark that loses its
    /// connection has nothing to report.
    pub fn request(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(t) = token {
            req.push_str("Authorization: Bearer ");
            req.push_str(t);
            req.push_str("\r\n");
        }
        match body {
            Some(b) => {
                req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len()));
                req.push_str(b);
            }
            None => req.push_str("\r\n"),
        }
        self.stream.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.read_reply().unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what} in {head:?}"));
        let status: u16 =
            head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
            })
            .or((status == 204 || status == 304).then_some(0))
            .ok_or_else(|| bad("no content-length"))?;
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok(Reply { status, head, body })
    }
}
