//! Shared by the process tests: run the `varde` binary, read its JSON, and start a `varde dev`
//! child on a free loopback port, waiting for Status to answer rather than sleeping.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod testnet;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The demo hospital of `varde_node::demo` (its key is keys/hospital.pem in the data dir).
pub const HOSPITAL: &str = "993467049";
/// The demo municipality (keys/municipality.pem).
pub const MUNICIPALITY: &str = "964338531";
/// The demo consent authority (keys/consent-authority.pem).
pub const CONSENT_AUTHORITY: &str = "983544622";
/// The demo's second health trust, a third institution that reads (keys/health-trust.pem).
pub const HEALTH_TRUST: &str = "983974724";
/// The demo auditor (keys/auditor.pem).
pub const AUDITOR: &str = "974761394";
/// The chain id of every dev network.
pub const CHAIN_ID: &str = "varde-dev";
/// How long the dev node may take to serve Status (generous: debug build, 2 cores, CI).
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(120);

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs `varde` with `arguments` in `directory`, stdin closed (and no `VARDE_CA_FILE` from the
/// test's own environment: a test gives `--ca-file` itself).
pub fn varde(directory: &Path, arguments: &[&str]) -> Output {
    varde_with_env(directory, arguments, &[])
}

/// As `varde`, with these environment variables set.
pub fn varde_with_env(directory: &Path, arguments: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varde"))
        .args(arguments)
        .current_dir(directory)
        .env_remove("VARDE_CA_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the varde binary runs")
}

/// Runs `varde` with `input` on stdin.
pub fn varde_with_stdin(directory: &Path, arguments: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_varde"))
        .args(arguments)
        .current_dir(directory)
        .env_remove("VARDE_CA_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the varde binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Asserts the exit code, showing stdout and stderr when it differs, and returns the JSON output.
pub fn expect_code(output: &Output, code: i32) -> Value {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json(output)
}

/// A `varde dev` child process; killed if the test ends early, so no process outlives it.
pub struct DevNode {
    pub child: Child,
    /// The directory the process runs in and where its log is written.
    pub work_dir: PathBuf,
    pub data_dir: PathBuf,
    /// `https://127.0.0.1:PORT`: the dev node serves TLS.
    pub endpoint: String,
    /// The dev network's CA certificate (`DATA_DIR/tls/ca.pem`), for `--ca-file`.
    pub ca_file: String,
    pub log: PathBuf,
}

impl DevNode {
    /// Starts `varde dev --data-dir DATA_DIR` on a free port (logging to `work_dir/dev-N.log`)
    /// and returns once Status answers, with the Status document.
    pub fn start(work_dir: &Path, data_dir: &Path) -> (Self, Value) {
        let port = free_port();
        let endpoint = format!("https://127.0.0.1:{port}");
        let log = (0..)
            .map(|index| work_dir.join(format!("dev-{index}.log")))
            .find(|path| !path.exists())
            .unwrap();
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_varde"))
            .args(["dev", "--data-dir", data_dir.to_str().unwrap()])
            .args(["--grpc-addr", &format!("127.0.0.1:{port}")])
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut node = Self {
            child,
            work_dir: work_dir.to_owned(),
            data_dir: data_dir.to_owned(),
            endpoint,
            ca_file: data_dir.join("tls").join("ca.pem").display().to_string(),
            log,
        };
        let status = node.wait_for_status();
        (node, status)
    }

    /// Polls Status until it answers over TLS (the condition, not a fixed sleep), failing fast
    /// if the process exits first.
    fn wait_for_status(&mut self) -> Value {
        let started = Instant::now();
        loop {
            let output = varde(
                &self.work_dir,
                &[
                    "--json",
                    "status",
                    "--endpoint",
                    &self.endpoint,
                    "--ca-file",
                    &self.ca_file,
                ],
            );
            if output.status.success() {
                return json(&output);
            }
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!("varde dev exited with {exit}: {}", self.log_text());
            }
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "varde dev did not serve Status in time: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The path of a demo key, e.g. `key("hospital.pem")`.
    pub fn key(&self, file: &str) -> String {
        self.data_dir
            .join("keys")
            .join(file)
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Sends `signal` (e.g. "-INT", "-KILL") to the process and waits for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal} failed");
        self.child.wait().unwrap()
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's root directory.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The python of a venv named `name` under the cargo target's temp dir, with the requirements
/// file `requirements` (relative to the repository) installed; reused while its recorded
/// requirements equal the current file.
pub fn python_venv(name: &str, requirements: &str) -> PathBuf {
    let requirements = repository_root().join(requirements);
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let installed_marker = venv.join("varde-requirements.txt");
    if python.exists() && std::fs::read_to_string(&installed_marker).ok() == Some(wanted.clone()) {
        return python;
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .output();
    match created {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`python3 -m venv` failed; install python3-venv (scripts/setup.sh does): {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "cannot run python3 ({error}); install python3 and python3-venv (scripts/setup.sh does)"
        ),
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(&requirements)
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "pip install -r {} failed: {}",
        requirements.display(),
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(&installed_marker, wanted).unwrap();
    python
}
