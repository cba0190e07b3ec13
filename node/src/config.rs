//! The node's TOML configuration and its validation: defined in `varde_ledger::node_config`, so
//! that the fuzz targets parse config files with the node's own code.

pub use varde_ledger::node_config::*;
