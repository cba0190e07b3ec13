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

// A fresh directory gets keys, genesis, a local CA and TLS certificate, config and committed
// demo data (loaded over TLS); a second run resumes without regenerating keys or certificates
// or reloading the demo data.
#[tokio::test]
async fn dev_initialises_once_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let layout = DevLayout::new(dir.path());
    run_until(dir.path(), || layout.demo_loaded_marker().exists()).await;
    let key_before = std::fs::read(layout.keys_dir().join("hospital.pem")).unwrap();
    let genesis_before = std::fs::read(layout.genesis()).unwrap();
    let tls = layout.tls_files();
    let ca_before = std::fs::read(&tls.ca_certificate).unwrap();
    let certificate_before = std::fs::read(&tls.certificate_chain).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&tls.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the TLS key is private");
    }
    let written = varde_node::NodeConfig::load(&layout.config()).unwrap();
    let served = written.grpc_tls.clone().unwrap();
    assert!(!served.plaintext);
    assert_eq!(served.private_key_path.unwrap(), tls.private_key);
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
    assert_eq!(std::fs::read(&tls.ca_certificate).unwrap(), ca_before);
    assert_eq!(
        std::fs::read(&tls.certificate_chain).unwrap(),
        certificate_before
    );
    assert_eq!(
        std::fs::metadata(layout.demo_loaded_marker())
            .unwrap()
            .modified()
            .unwrap(),
        marker_time
    );

    // A directory made before gRPC had TLS (no [grpc_tls], no tls/) gets both once and runs.
    let text = std::fs::read_to_string(layout.config()).unwrap();
    let mut old = varde_node::NodeConfig::from_toml_unvalidated(&text).unwrap();
    old.grpc_tls = None;
    std::fs::write(layout.config(), old.to_toml()).unwrap();
    std::fs::remove_dir_all(layout.tls_dir()).unwrap();
    run_until(dir.path(), || true).await;
    assert!(tls.ca_certificate.exists());
    assert!(
        varde_node::NodeConfig::load(&layout.config())
            .unwrap()
            .grpc_tls
            .is_some()
    );

    // Every demo transaction is in the database: four in the first blocks, then the read under
    // the grant and the emergency read.
    let config = varde_node::NodeConfig::load(&layout.config()).unwrap();
    let genesis = varde_node::node::read_genesis(&config.genesis_path).unwrap();
    let store = varde_node::node::open_store(&config, &genesis).unwrap();
    let ledger = varde_ledger::Ledger::open(store, genesis).unwrap();
    let view = varde_ledger::state::StateView::new(ledger.store());
    assert_eq!(varde_ledger::accumulator::size(&view).unwrap(), 6);
}
