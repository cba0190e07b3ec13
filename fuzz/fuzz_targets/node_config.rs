//! The node's TOML config (`NodeConfig::from_toml`, and the unvalidated parse that tools use to
//! rewrite a file). A valid config must come back unchanged from the TOML the node writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use varde_ledger::node_config::NodeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = NodeConfig::from_toml(text) {
        let written = config.to_toml();
        assert_eq!(NodeConfig::from_toml(&written), Ok(config));
    }
    if let Ok(config) = NodeConfig::from_toml_unvalidated(text) {
        let _ = config.validate();
        if let Some(network) = &config.network {
            let _ = (network.peer_keys(), network.observer_keys());
        }
    }
});
