//! Compiles `proto/varde/v1/*.proto` with protox (no system `protoc`), writes the descriptor set for
//! server reflection, and generates the prost messages and, with the `grpc` feature, the tonic stubs.

use std::path::PathBuf;

const PROTO_FILES: [&str; 8] = [
    "proto/varde/v1/consensus.proto",
    "proto/varde/v1/transaction.proto",
    "proto/varde/v1/state.proto",
    "proto/varde/v1/storage.proto",
    "proto/varde/v1/proof.proto",
    "proto/varde/v1/query_service.proto",
    "proto/varde/v1/ledger_service.proto",
    "proto/varde/v1/node_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let file_descriptor_set = protox::compile(PROTO_FILES, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("varde_descriptor.bin"),
        prost::Message::encode_to_vec(&file_descriptor_set),
    )?;
    // Cargo tells build scripts the crate's features through the environment.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(file_descriptor_set)?;
    Ok(())
}
