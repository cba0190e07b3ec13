//! `varde-node`: one validator. It wires the libp2p network, the mempool, the consensus engine, the
//! ledger, storage, the gRPC API and metrics together (DESIGN.md §5, §7).
