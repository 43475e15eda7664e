//! HTTP end to end under load, and the host's memory idle and under that load: the release
//! `greenlight serve` as its own process, against an axum hello-world (also its own process) driven
//! by the very same load generator on the same machine, in the same run.
//!
//! Why: every other figure is in-process; this one is what a client sees — parsing, auth,
//! routing, evaluation, group commit, JSON out — with as many concurrent clients as the durable
//! submits row. The hello-world says what the machine, the generator and HTTP alone cost, so the
//! ratio is the host's own share.
//!
//! - Set-up: a tenant (`greenlight tenant create`), one requester per client with a spend limit,
//!   eight approvers, and the shipped `scripts/spend-limit.rhai` enabled, so every order needs
//!   exactly one approval stage.
//! - Load: each client (one thread, one keep-alive HTTP/1.1 connection) loops create → submit →
//!   approve (as an approver) for a fixed time after a warm-up; every request is timed.
//! - Figure: median and p99 latency per request over all three kinds (per kind and per whole
//!   flow in the JSON). Baseline: the median of `GET /` on the hello-world.
//! - The load generator's own cost is reported: its CPU time over wall time (`/proc/self/stat`),
//!   i.e. the cores it kept busy, beside the host's.
//! - Memory: the host's `VmRSS` after start-up (idle) and its `VmHWM` (peak) after the load, from
//!   `/proc/PID/status`.
//!
//! `cargo xtask bench` runs it (`--clients N`, default 64; `--seconds S`). Re-executed with
//! `--hello-server` it is the hello-world server.

#![allow(clippy::float_arithmetic, missing_docs, clippy::unwrap_used)]

mod common;

use common::{CpuMeter, Http, Process, Samples};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The baseline server: axum's hello-world on a multi-threaded tokio runtime, as `serve` runs.
fn hello_server() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
        axum::serve(listener, app).await.unwrap();
    });
}

/// Runs `clients` threads, each with its own connection: `work` once per iteration, first for the
/// warm-up, then timed until `run` is over. Returns what the threads returned, the wall time of
/// the timed part, and the cores the generator (this process) and the server used meanwhile.
fn drive<T: Send + 'static>(
    addr: &str,
    server_pid: u32,
    clients: usize,
    warm_up: Duration,
    run: Duration,
    work: impl Fn(usize, &mut Http, &mut Vec<T>) + Send + Sync + 'static,
) -> (Vec<T>, f64, f64, f64) {
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (addr, work, start) = (addr.to_string(), work.clone(), start.clone());
            std::thread::spawn(move || {
                let mut h = Http::connect(&addr);
                let mut discard = Vec::new();
                let warm_until = Instant::now() + warm_up;
                while Instant::now() < warm_until {
                    work(i, &mut h, &mut discard);
                }
                start.wait();
                let until = Instant::now() + run;
                let mut out = Vec::new();
                while Instant::now() < until {
                    work(i, &mut h, &mut out);
                }
                out
            })
        })
        .collect();
    start.wait();
    let (me, server) = (CpuMeter::start(None), CpuMeter::start(Some(server_pid)));
    let wall = Instant::now();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    let (me, server, wall) = (me.cores(), server.cores(), wall.elapsed().as_secs_f64());
    (all, wall, me, server)
}

/// One timed request: which (0 create, 1 submit, 2 approve, 3 the whole flow) and how long.
type Timed = (u8, Duration);

fn main() {
    if std::env::args().any(|a| a == "--hello-server") {
        hello_server();
        return;
    }
    let quick = common::quick();
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", if quick { 5 } else { 20 }) as u64;
    let warm_up = Duration::from_secs(if quick { 1 } else { 3 });
    const APPROVERS: usize = 8;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let admin = common::cli(&db, &["tenant", "create", "bench"]).trim().to_string();
    let mut host = Process::serve(&db, &[]);
    let mut h = Http::connect(&host.addr);
    h.get("/healthz", None).expect(200, "healthz");
    std::thread::sleep(Duration::from_millis(500));
    let idle_mib = common::status_mib(host.pid, "VmRSS");

    // One requester per client (spend limit 100.00), approvers, and the spend-limit rule.
    let user = |h: &mut Http, name: &str, roles: serde_json::Value, limit: Option<i64>| -> String {
        let body = json!({"name": name, "roles": roles, "spend_limit_minor": limit});
        h.post("/v1/admin/users", &admin, &body).expect(201, "create user").json()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let requesters: Vec<String> =
        (0..clients).map(|i| user(&mut h, &format!("req-{i:03}"), json!(["requester"]), Some(10_000))).collect();
    let approvers: Vec<String> =
        (0..APPROVERS).map(|i| user(&mut h, &format!("appr-{i}"), json!(["approver"]), None)).collect();
    let source = std::fs::read_to_string(common::workspace().join("scripts/spend-limit.rhai")).unwrap();
    h.post("/v1/admin/scripts", &admin, &json!({"name": "spend-limit", "source": source})).expect(201, "add script");
    h.put("/v1/admin/extensions/spend-limit", &admin, &json!({"enabled": true, "config": {"level": 2}}))
        .expect(200, "enable script");
    drop(h);

    let order = json!({
        "department": "IT", "vendor_id": "ACME", "currency": "EUR",
        "lines": [
            {"sku": "LAPTOP-14", "description": "laptop", "quantity": 2, "unit_price_minor": 120_000, "tax_category": "standard", "budget_category": "hardware"},
            {"sku": "DOCK-1", "description": "dock", "quantity": 2, "unit_price_minor": 18_000, "tax_category": "standard", "budget_category": "hardware"},
            {"sku": "CABLE-2", "quantity": 4, "unit_price_minor": 1_500, "budget_category": "hardware"}
        ]
    })
    .to_string();
    let decision = json!({"stage": "user-approval", "decision": "approve", "comment": "ok"}).to_string();
    let (requesters, approvers) = (Arc::new(requesters), Arc::new(approvers));
    let flow = move |i: usize, h: &mut Http, out: &mut Vec<Timed>| {
        let (me, approver) = (&requesters[i], &approvers[i % APPROVERS]);
        let t = Instant::now();
        let created = h.request("POST", "/v1/orders", Some(me.as_str()), Some(&order)).expect(201, "create");
        let t1 = Instant::now();
        let id = created.json()["id"].as_str().unwrap().to_string();
        let t2 = Instant::now();
        let submitted =
            h.request("POST", &format!("/v1/orders/{id}/submit"), Some(me.as_str()), None).expect(200, "submit");
        let t3 = Instant::now();
        let approved = h
            .request("POST", &format!("/v1/orders/{id}/decisions"), Some(approver.as_str()), Some(&decision))
            .expect(200, "approve");
        let t4 = Instant::now();
        assert!(String::from_utf8_lossy(&submitted.body).contains("\"status\":\"pending_approval\""));
        assert!(String::from_utf8_lossy(&approved.body).contains("\"status\":\"approved\""));
        out.extend([(0, t1 - t), (1, t3 - t2), (2, t4 - t3), (3, (t1 - t) + (t4 - t2))]);
    };
    let (timed, wall, gen_cores, host_cores) =
        drive(&host.addr, host.pid, clients, warm_up, Duration::from_secs(seconds), flow);
    let loaded_mib = common::status_mib(host.pid, "VmHWM");
    let rss_after_mib = common::status_mib(host.pid, "VmRSS");
    host.stop();

    let kind = |k: u8| Samples::new(timed.iter().filter(|(w, _)| *w == k).map(|(_, d)| *d).collect());
    let requests = Samples::new(timed.iter().filter(|(w, _)| *w < 3).map(|(_, d)| *d).collect());
    let (create, submit, approve, flows) = (kind(0), kind(1), kind(2), kind(3));
    let flows_per_s = flows.len() as f64 / wall;

    // The baseline: the same generator and clients against axum's hello-world.
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.arg("--hello-server");
    let mut hello = Process::spawn(cmd);
    let hello_secs = if quick { 3 } else { 10 };
    let get = |_: usize, h: &mut Http, out: &mut Vec<Duration>| {
        let t = Instant::now();
        h.get("/", None).expect(200, "hello");
        out.push(t.elapsed());
    };
    let (hello_timed, hello_wall, hello_gen_cores, hello_server_cores) =
        drive(&hello.addr, hello.pid, clients, warm_up, Duration::from_secs(hello_secs), get);
    hello.stop();
    let hello_n = hello_timed.len();
    let base = Samples::new(hello_timed);

    println!(
        "HTTP end to end, {clients} clients, {seconds} s: {:.0} requests/s ({flows_per_s:.0} flows/s), per request median {:.2} ms, p99 {:.2} ms (create {:.2}/{:.2}, submit {:.2}/{:.2}, approve {:.2}/{:.2}; flow {:.2}/{:.2}); generator {gen_cores:.2} cores, host {host_cores:.2} cores",
        requests.len() as f64 / wall,
        requests.median_ms(),
        requests.p99_ms(),
        create.median_ms(),
        create.p99_ms(),
        submit.median_ms(),
        submit.p99_ms(),
        approve.median_ms(),
        approve.p99_ms(),
        flows.median_ms(),
        flows.p99_ms()
    );
    println!(
        "axum hello-world, same generator: {:.0} requests/s, median {:.3} ms, p99 {:.3} ms; generator {hello_gen_cores:.2} cores, server {hello_server_cores:.2} cores",
        hello_n as f64 / hello_wall,
        base.median_ms(),
        base.p99_ms()
    );
    println!(
        "host memory: {idle_mib:.1} MiB idle (VmRSS), {loaded_mib:.1} MiB peak under load (VmHWM), {rss_after_mib:.1} MiB after"
    );

    let ms = |s: &Samples| json!({"median": common::round(s.median_ms(), 2), "p99": common::round(s.p99_ms(), 2)});
    let rows = [
        json!({
            "row": "HTTP end to end",
            "what": format!(
                "create + submit + approve, {clients} keep-alive clients, release binary, latency per request; load generator {gen_cores:.2} cores, host {host_cores:.2} cores"
            ),
            "figure": common::round(requests.median_ms(), 2), "p99": common::round(requests.p99_ms(), 2), "unit": "ms",
            "create_ms": ms(&create), "submit_ms": ms(&submit), "approve_ms": ms(&approve), "flow_ms": ms(&flows),
            "requests_per_s": (requests.len() as f64 / wall).round(), "flows_per_s": flows_per_s.round(),
            "generator_cores": common::round(gen_cores, 2), "host_cores": common::round(host_cores, 2),
            "baseline": format!("axum hello-world GET / (own process), same generator and clients; generator {hello_gen_cores:.2} cores"),
            "baseline_value": common::round(base.median_ms(), 3),
            "baseline_p99": common::round(base.p99_ms(), 3),
            "baseline_requests_per_s": (hello_n as f64 / hello_wall).round(),
            "baseline_generator_cores": common::round(hello_gen_cores, 2),
            "ratio": common::round(requests.median_ms() / base.median_ms(), 1),
            "goal": "p99 < 20 ms", "met": requests.p99_ms() < 20.0,
        }),
        json!({
            "row": "Memory, idle", "what": "host VmRSS after start-up, before any request but /healthz",
            "figure": common::round(idle_mib, 1), "unit": "MiB",
            "baseline": "-", "baseline_value": null, "ratio": null,
            "goal": "< 60 MiB", "met": idle_mib < 60.0,
        }),
        json!({
            "row": "Memory, under load", "what": format!("host VmHWM (peak RSS) after the HTTP end-to-end load ({clients} clients)"),
            "figure": common::round(loaded_mib, 1), "unit": "MiB", "rss_after_mib": common::round(rss_after_mib, 1),
            "baseline": "-", "baseline_value": null, "ratio": null,
            "goal": "< 250 MiB", "met": loaded_mib < 250.0,
        }),
    ];
    for r in rows {
        println!("BENCH {r}");
    }
}
