//! Durability under `kill -9`: a child process writes numbered, synced batches and prints each number
//! once `write` has returned; the parent kills it with SIGKILL at a random moment, reopens the
//! database and checks that every acknowledged batch is there, whole, and nothing beyond a prefix of
//! the sequence. Done several times on the same database, so recovery from a crash is itself crashed.
//!
//! The child is this test executable, re-run with [`CHILD_DIRECTORY`] set and filtered to
//! [`crash_child_writer`]. A `kill -9` does not lose the operating system's page cache, so this checks
//! that a batch is in the write-ahead log before it is acknowledged; surviving a power loss rests on
//! the `sync` write option on top of that, which a test on one machine cannot cut the power to check.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use varde_storage::{ChainIdentity, Column, RocksStore, Store, WriteBatch};

/// Environment variable that turns the test executable into the writing child; its value is the
/// database directory.
const CHILD_DIRECTORY: &str = "VARDE_STORAGE_CRASH_CHILD_DIRECTORY";
/// Environment variable with the first batch number the child writes.
const CHILD_FIRST_BATCH: &str = "VARDE_STORAGE_CRASH_CHILD_FIRST_BATCH";
/// Prefix of the child's acknowledgement lines, so they are told apart from the test harness's output.
const ACKNOWLEDGED: &str = "acknowledged ";
/// Kills per test run; each one starts a child on the database the previous one left.
const KILLS: usize = 5;
/// The child is killed after at most this long, even if it acknowledged fewer batches than drawn.
const CHILD_RUN_MAX: Duration = Duration::from_secs(2);
/// Entries per batch, in several columns, all of which must be present for an acknowledged batch.
const ENTRIES_PER_BATCH: u8 = 4;
/// Key in Meta of the last batch number written (part of every batch).
const LAST_BATCH_KEY: &[u8] = b"crash-test/last_batch";

fn identity() -> ChainIdentity {
    ChainIdentity::new("varde-crash-test", [0x5a; 32])
}

/// A random number from the standard library's per-process hash keys (no RNG dependency needed).
fn random_below(bound: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % bound
}

fn batch_for(number: u64) -> WriteBatch {
    let mut batch = WriteBatch::new();
    let key = number.to_be_bytes();
    for entry in 0..ENTRIES_PER_BATCH {
        let value = [&key[..], &[entry]].concat();
        let column = [
            Column::Blocks,
            Column::Certificates,
            Column::TransactionIndex,
            Column::Receipts,
        ][usize::from(entry)];
        batch.put(column, key, value);
    }
    batch.put(Column::Meta, LAST_BATCH_KEY, key);
    batch
}

/// Every entry of batch `number` is present with its value.
fn batch_is_whole(store: &dyn Store, number: u64) -> bool {
    let key = number.to_be_bytes();
    (0..ENTRIES_PER_BATCH).all(|entry| {
        let column = [
            Column::Blocks,
            Column::Certificates,
            Column::TransactionIndex,
            Column::Receipts,
        ][usize::from(entry)];
        store.get(column, &key).unwrap() == Some([&key[..], &[entry]].concat())
    })
}

/// Not a test of its own: the body of the child process of
/// [`acknowledged_batches_survive_kill_nine`]. Without its environment variable it returns at once.
#[test]
#[ignore = "child process of acknowledged_batches_survive_kill_nine, which runs it"]
fn crash_child_writer() {
    let Ok(directory) = std::env::var(CHILD_DIRECTORY) else {
        return;
    };
    let first: u64 = std::env::var(CHILD_FIRST_BATCH).unwrap().parse().unwrap();
    let store = RocksStore::open(Path::new(&directory), &identity()).unwrap();
    let mut stdout = std::io::stdout().lock();
    for number in first.. {
        store.write(batch_for(number)).unwrap();
        writeln!(stdout, "{ACKNOWLEDGED}{number}").unwrap();
        stdout.flush().unwrap();
    }
}

/// Runs the child from batch `first` on `directory` and kills it at a random moment; returns the
/// numbers it acknowledged.
fn run_and_kill_child(directory: &Path, first: u64) -> Vec<u64> {
    let executable = std::env::current_exe().unwrap();
    let mut child = Command::new(executable)
        .args([
            "crash_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIRECTORY, directory)
        .env(CHILD_FIRST_BATCH, first.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let stdout = child.stdout.take().unwrap();
    let (lines_sender, lines) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness may print "test crash_child_writer ... " on the same line as the first one.
            let Some(position) = line.find(ACKNOWLEDGED) else {
                continue;
            };
            // Each line reaches the pipe in one write shorter than PIPE_BUF, so it arrives whole.
            let Ok(number) = line[position + ACKNOWLEDGED.len()..].trim().parse::<u64>() else {
                continue;
            };
            if lines_sender.send(number).is_err() {
                break;
            }
        }
    });

    // Kill after a random number of acknowledgements, plus a random delay of up to 3 ms so the kill
    // lands anywhere inside the next write.
    let acknowledgements_before_kill = 5 + random_below(150);
    let deadline = Instant::now() + CHILD_RUN_MAX;
    let mut acknowledged = Vec::new();
    while (acknowledged.len() as u64) < acknowledgements_before_kill {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(remaining) {
            Ok(number) => acknowledged.push(number),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_micros(random_below(3_000)));
    if let Ok(Some(status)) = child.try_wait() {
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        panic!("the writing child stopped by itself ({status}): {stderr}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Lines printed before the kill count as acknowledged too.
    acknowledged.extend(lines.try_iter());
    assert!(
        !acknowledged.is_empty(),
        "the child acknowledged nothing within {CHILD_RUN_MAX:?}"
    );
    acknowledged
}

// Every batch acknowledged before a SIGKILL is present and whole after reopening; batches form a gapless sequence.
#[test]
fn acknowledged_batches_survive_kill_nine() {
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("database");
    // Create the database (and its identity) before the first child.
    drop(RocksStore::open(&path, &identity()).unwrap());

    let mut next = 0u64;
    for kill in 0..KILLS {
        let acknowledged = run_and_kill_child(&path, next);
        let highest_acknowledged = *acknowledged.iter().max().unwrap();

        let store = RocksStore::open(&path, &identity())
            .unwrap_or_else(|error| panic!("kill {kill}: the database does not open: {error}"));
        for number in &acknowledged {
            assert!(
                batch_is_whole(&store, *number),
                "kill {kill}: acknowledged batch {number} lost"
            );
        }
        let last = store
            .get(Column::Meta, LAST_BATCH_KEY)
            .unwrap()
            .expect("a last batch");
        let last = u64::from_be_bytes(last.try_into().unwrap());
        assert!(
            last >= highest_acknowledged,
            "kill {kill}: last batch {last} < {highest_acknowledged}"
        );
        assert!(
            last <= highest_acknowledged + 1,
            "kill {kill}: batch {last} was never started"
        );
        // Atomic batches at a boundary: every batch up to the last one is whole, none after it exists.
        for number in 0..=last {
            assert!(
                batch_is_whole(&store, number),
                "kill {kill}: batch {number} is partial or missing"
            );
        }
        let after = (last + 1).to_be_bytes();
        for column in [
            Column::Blocks,
            Column::Certificates,
            Column::TransactionIndex,
            Column::Receipts,
        ] {
            assert_eq!(
                store.get(column, &after).unwrap(),
                None,
                "kill {kill}: a batch past {last}"
            );
        }
        eprintln!(
            "kill {kill}: batches {next}..={highest_acknowledged} acknowledged ({} lines), database ends at batch {last}",
            acknowledged.len()
        );
        next = last + 1;
    }
}
