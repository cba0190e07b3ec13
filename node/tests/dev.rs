//! `varde dev` on a fresh and then on an existing data directory.

use std::time::Duration;

use tokio::sync::oneshot;
use varde_node::dev::{DevLayout, DevOptions, run_dev};

async fn run_until(dir: &std::path::Path, condition: impl Fn() -> bool) {
    let (stop, stopped) = oneshot::channel::<()>();
    let options = DevOptions {
        data_dir: dir.to_owned(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
    };
    let running = tokio::spawn(run_dev(options, async move {
        let _ = stopped.await;
    }));
    // The dev node reports progress only through its files; poll them with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dev node did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

// A fresh directory gets keys, genesis, config and committed demo data; a second run resumes
// without regenerating keys or reloading the demo data.
#[tokio::test]
async fn dev_initialises_once_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let layout = DevLayout::new(dir.path());
    run_until(dir.path(), || layout.demo_loaded_marker().exists()).await;
    let key_before = std::fs::read(layout.keys_dir().join("hospital.pem")).unwrap();
    let genesis_before = std::fs::read(layout.genesis()).unwrap();
    let marker_time = std::fs::metadata(layout.demo_loaded_marker())
        .unwrap()
        .modified()
        .unwrap();

    run_until(dir.path(), || true).await;
    assert_eq!(
        std::fs::read(layout.keys_dir().join("hospital.pem")).unwrap(),
        key_before
    );
    assert_eq!(std::fs::read(layout.genesis()).unwrap(), genesis_before);
    assert_eq!(
        std::fs::metadata(layout.demo_loaded_marker())
            .unwrap()
            .modified()
            .unwrap(),
        marker_time
    );

    // Every demo transaction is in the database: four in the first blocks, then the access event.
    let config = varde_node::NodeConfig::load(&layout.config()).unwrap();
    let genesis = varde_node::node::read_genesis(&config.genesis_path).unwrap();
    let store = varde_node::node::open_store(&config, &genesis).unwrap();
    let ledger = varde_ledger::Ledger::open(store, genesis).unwrap();
    let view = varde_ledger::state::StateView::new(ledger.store());
    assert_eq!(varde_ledger::accumulator::size(&view).unwrap(), 5);
}
