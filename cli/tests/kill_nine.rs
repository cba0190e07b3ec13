//! Crash recovery over real processes: `varde dev` is killed with SIGKILL while transactions stream
//! in, restarted on the same data directory, and must still hold every transaction it acknowledged
//! as committed.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{CHAIN_ID, DevNode, HOSPITAL, expect_code, json, varde};

/// Concurrent submitters.
const SUBMITTERS: usize = 4;
/// Acknowledgements to collect before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 12;
/// Upper bound for the streaming phase.
const STREAM_DEADLINE: Duration = Duration::from_secs(40);

/// One anchor acknowledged as committed: its record id, transaction id and block height.
#[derive(Debug, Clone)]
struct Acknowledged {
    record_id: String,
    transaction_id: String,
    height: u64,
}

// SIGKILL mid-stream of `tx anchor --wait` from four concurrent loops, then a restart on the same
// directory: the node serves Status again, its height is at least that of every acknowledged
// receipt, and every acknowledged record is listed with the acknowledged transaction as its last.
#[test]
fn acknowledged_transactions_survive_kill_nine() {
    let directory = tempfile::tempdir().unwrap();
    let dir = directory.path();
    let data_dir = dir.join("dev");
    let (mut node, _) = DevNode::start(dir, &data_dir);
    let endpoint = node.endpoint.clone();
    let ca_file = node.ca_file.clone();
    let hospital_key = node.key("hospital.pem");

    let acknowledged = Mutex::new(Vec::<Acknowledged>::new());
    let stop = AtomicBool::new(false);
    let subject = "6b".repeat(32);
    let killed_after = std::thread::scope(|scope| {
        for submitter in 0..SUBMITTERS {
            let (acknowledged, stop) = (&acknowledged, &stop);
            let (endpoint, ca_file, hospital_key, subject) =
                (&endpoint, &ca_file, &hospital_key, &subject);
            scope.spawn(move || {
                for sequence in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let record_id = format!("kill9-{submitter}-{sequence}");
                    let output = varde(
                        dir,
                        &[
                            "--json",
                            "tx",
                            "anchor",
                            "--endpoint",
                            endpoint,
                            "--ca-file",
                            ca_file,
                            "--chain-id",
                            CHAIN_ID,
                            "--key",
                            hospital_key,
                            "--wait",
                            "--wait-timeout",
                            "10",
                            "--custodian",
                            HOSPITAL,
                            "--record-id",
                            &record_id,
                            "--subject",
                            subject,
                            "--category",
                            "laboratory",
                            "--location",
                            &format!("https://ehr.example.invalid/{record_id}"),
                            "--content-sha256",
                            subject,
                        ],
                    );
                    if output.status.code() != Some(0) {
                        // The node is gone (or the submission was cut short): not acknowledged.
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        panic!(
                            "anchor failed before the kill: {}",
                            String::from_utf8_lossy(&output.stderr)
                        );
                    }
                    let document = json(&output);
                    assert_eq!(document["receipt"]["outcome"], "applied", "{document}");
                    acknowledged.lock().unwrap().push(Acknowledged {
                        record_id,
                        transaction_id: document["transaction_id"].as_str().unwrap().to_owned(),
                        height: document["receipt"]["height"].as_u64().unwrap(),
                    });
                }
            });
        }

        // Kill once enough acknowledgements arrived, while the submitters keep going.
        let started = Instant::now();
        while acknowledged.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_KILL {
            assert!(
                started.elapsed() < STREAM_DEADLINE,
                "too few acknowledgements in time: {}",
                node.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let killed_after = acknowledged.lock().unwrap().len();
        stop.store(true, Ordering::SeqCst);
        let exit = node.signal_and_wait("-KILL");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&exit),
            Some(9)
        );
        killed_after
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= killed_after);
    drop(node);

    // Restart on the same directory: it opens cleanly and answers Status.
    let (mut restarted, status) = DevNode::start(dir, &data_dir);
    assert_eq!(status["chain_id"], CHAIN_ID);
    let highest = acknowledged.iter().map(|ack| ack.height).max().unwrap();
    assert!(
        status["height"].as_u64().unwrap() >= highest,
        "height {} after restart is below an acknowledged receipt's height {highest}",
        status["height"]
    );

    let listed = expect_code(
        &varde(
            dir,
            &[
                "--json",
                "query",
                "records",
                "--endpoint",
                &restarted.endpoint,
                "--ca-file",
                &restarted.ca_file,
                "--key",
                &hospital_key,
                "--custodian",
                HOSPITAL,
                "--all",
            ],
        ),
        0,
    );
    let records: HashMap<&str, &serde_json::Value> = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| (record["record_id"].as_str().unwrap(), record))
        .collect();
    for ack in &acknowledged {
        let record = records.get(ack.record_id.as_str()).unwrap_or_else(|| {
            panic!(
                "acknowledged record {} (height {}) lost after kill -9",
                ack.record_id, ack.height
            )
        });
        assert_eq!(record["last_transaction_id"], ack.transaction_id.as_str());
        assert_eq!(record["anchored_at_height"], ack.height);
    }

    let exit = restarted.signal_and_wait("-INT");
    assert!(exit.success(), "{}", restarted.log_text());
}
