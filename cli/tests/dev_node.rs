//! End to end over real processes: `varde dev` as a child on a free loopback port in a temporary
//! data directory, driven by the `varde` binary (status, tx anchor --wait, query records, query
//! check), then stopped with SIGINT as Ctrl-C would.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The demo hospital of `varde_node::demo` (its key is keys/hospital.pem in the data dir).
const HOSPITAL: &str = "993467049";
/// The demo municipality (keys/municipality.pem).
const MUNICIPALITY: &str = "964338531";
/// How long the dev node may take to serve Status (generous: debug build, 2 cores, CI).
const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

/// Kills the dev node if the test ends early, so no process outlives it.
struct DevNode(Child);

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn varde(directory: &Path, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varde"))
        .args(arguments)
        .current_dir(directory)
        .stdin(Stdio::null())
        .output()
        .expect("the varde binary runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

// A record anchored with `tx anchor --wait` is applied and listed by `query records`; a second
// anchor of the same id is rejected (exit 3); the municipality's check is denied (exit 4); and
// SIGINT stops the dev node cleanly (exit 0).
#[test]
fn dev_node_anchor_and_query_through_the_cli() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let data_dir = dir.join("dev");
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("dev.log")).unwrap();
    let mut node = DevNode(
        Command::new(env!("CARGO_BIN_EXE_varde"))
            .args(["dev", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--grpc-addr", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // Wait for Status to answer (the condition, not a fixed sleep), failing fast if it exits.
    let started = Instant::now();
    let status = loop {
        let output = varde(dir, &["--json", "status", "--endpoint", &endpoint]);
        if output.status.success() {
            break json(&output);
        }
        if let Some(exit) = node.0.try_wait().unwrap() {
            panic!(
                "varde dev exited with {exit}: {}",
                std::fs::read_to_string(dir.join("dev.log")).unwrap()
            );
        }
        assert!(
            started.elapsed() < STARTUP_DEADLINE,
            "varde dev did not serve Status in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["chain_id"], "varde-dev");

    let hospital_key = data_dir.join("keys").join("hospital.pem");
    let hospital_key = hospital_key.to_str().unwrap();
    let subject = "5a".repeat(32);
    let anchor = [
        "--json",
        "tx",
        "anchor",
        "--endpoint",
        &endpoint,
        "--key",
        hospital_key,
        "--wait",
        "--custodian",
        HOSPITAL,
        "--record-id",
        "e2e-record-1",
        "--subject",
        &subject,
        "--category",
        "discharge-summary",
        "--location",
        "https://ehr.example.invalid/e2e-1",
        "--content-sha256",
        &subject,
    ];
    let applied = varde(dir, &anchor);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert_eq!(json(&applied)["receipt"]["outcome"], "applied");

    // The same anchor again, as a distinct transaction (another expiry): rejected, exit 3.
    let mut again = anchor.to_vec();
    again.extend(["--expires-in", "900"]);
    let rejected = varde(dir, &again);
    assert_eq!(rejected.status.code(), Some(3));
    assert_eq!(json(&rejected)["receipt"]["reason"], "record_exists");

    let listed = varde(
        dir,
        &[
            "--json",
            "query",
            "records",
            "--endpoint",
            &endpoint,
            "--key",
            hospital_key,
            "--subject",
            &subject,
            "--all",
        ],
    );
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let records = json(&listed)["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record_id"], "e2e-record-1");
    assert_eq!(records[0]["custodian"], HOSPITAL);

    let municipality_key = data_dir.join("keys").join("municipality.pem");
    let check = varde(
        dir,
        &[
            "--json",
            "query",
            "check",
            "--endpoint",
            &endpoint,
            "--key",
            municipality_key.to_str().unwrap(),
            "--accessor",
            MUNICIPALITY,
            "--record-custodian",
            HOSPITAL,
            "--record-id",
            "e2e-record-1",
            "--purpose",
            "TREAT",
        ],
    );
    assert_eq!(check.status.code(), Some(4));
    assert_eq!(json(&check)["allowed"], false);

    // Ctrl-C: the node stops cleanly and exits 0.
    let interrupted = Command::new("kill")
        .args(["-INT", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let exit = node.0.wait().unwrap();
    assert!(
        exit.success(),
        "varde dev exited with {exit}: {}",
        std::fs::read_to_string(dir.join("dev.log")).unwrap()
    );
}
