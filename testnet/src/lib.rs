//! Varde's test networks: the deterministic consensus simulator ([`sim`], binary `varde-sim`); local
//! multi-process networks come with the node.

pub mod sim;
