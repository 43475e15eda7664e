//! The real receivers the end-to-end tests point the host at: an HTTP receiver on loopback (a
//! webhook endpoint, an SMS provider, an ERP double) and an SMTP server (aiosmtpd).

use super::workspace;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request line, e.g. `POST /hook HTTP/1.1`.
    pub request_line: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (Null if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A real HTTP receiver on loopback (a webhook endpoint, an SMS provider): records every request
/// and answers with the status `respond` picks for the n-th request (0-based), after `delay`.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    /// Starts on a free port.
    pub fn start(respond: impl Fn(usize) -> u16 + Send + Sync + 'static, delay: Duration) -> Result<Receiver> {
        Receiver::on_port(0, respond, delay)
    }

    /// Starts on a given port (0: a free one), e.g. again where a stopped one was.
    pub fn on_port(
        port: u16,
        respond: impl Fn(usize) -> u16 + Send + Sync + 'static,
        delay: Duration,
    ) -> Result<Receiver> {
        Receiver::serve(port, move |n, _| {
            std::thread::sleep(delay);
            (respond(n), String::new())
        })
    }

    /// A small HTTP server (an ERP test double speaking its real contract): `handler` gets the
    /// request's number (0-based) and the request, and returns the status and a JSON body. It may
    /// sleep to play a slow server.
    pub fn serve(
        port: u16,
        handler: impl Fn(usize, &Received) -> (u16, String) + Send + Sync + 'static,
    ) -> Result<Receiver> {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let origin = format!("http://{}", listener.local_addr()?);
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (got2, stop2) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or_default().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => body.extend_from_slice(&chunk[..k]),
                    }
                }
                // Recorded before it is answered, so a test sees a request its handler is still on.
                let request = Received { request_line, headers, body };
                if let Ok(mut g) = got2.lock() {
                    g.push(request.clone());
                }
                let (status, reply) = handler(n, &request);
                n += 1;
                let _ = write!(
                    sock,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Ok(Receiver { origin, got, stop })
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Waits until `pred` holds for what was received, up to `timeout`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if pred(&got) {
                return Ok(got);
            }
            if std::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}; received {} requests", got.len());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.origin.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One e-mail an [`SmtpSink`] received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Header names in lower case, with their (unfolded) values.
    pub headers: Vec<(String, String)>,
    /// The body, with quoted-printable decoded.
    pub body: String,
}

impl Mail {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn parse(text: &str) -> Mail {
        let text = text.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let qp =
            headers.iter().any(|(k, v)| k == "content-transfer-encoding" && v.eq_ignore_ascii_case("quoted-printable"));
        let body = if qp { decode_quoted_printable(body) } else { body.to_string() };
        Mail { headers, body }
    }
}

fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if let (b'=', Some(Ok(b))) = (bytes[i], hex.map(|h| u8::from_str_radix(h, 16))) {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A real SMTP server on loopback: aiosmtpd, installed by `cargo xtask test` into
/// `target/test-tools` (`$GREENLIGHT_TEST_PYTHON` names its interpreter), storing what it
/// receives in a maildir the test reads.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server on a free port and waits until it accepts connections.
    pub fn start() -> Result<SmtpSink> {
        let python = std::env::var_os("GREENLIGHT_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/test-tools/venv/bin/python"));
        if !python.exists() {
            bail!(
                "no Python with aiosmtpd at {}: run `cargo xtask test`, which installs it, or set GREENLIGHT_TEST_PYTHON",
                python.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting aiosmtpd")?;
        let sink = SmtpSink { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                bail!("aiosmtpd did not start listening on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sink)
    }

    /// `smtp://127.0.0.1:PORT`, for `--smtp-relay`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Mail> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(new).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        files.sort();
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).map(|t| Mail::parse(&t)).collect()
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Mail>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return Ok(got);
            }
            if std::time::Instant::now() > deadline {
                bail!("timed out waiting for {n} e-mails; {} arrived", got.len());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
