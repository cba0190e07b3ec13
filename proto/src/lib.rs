//! Varde's wire types and gRPC service definitions (package `varde.v1`), generated at build time
//! from `proto/varde/v1/*.proto` without a system `protoc`.
//!
//! This crate holds no logic (ARCHITECTURE.md, "Code map"). The signing scheme is specified in
//! `proto/varde/v1/transaction.proto`; `testdata/signing-vectors.json` holds worked examples, and
//! `varde-ledger` implements and checks them.

/// Generated messages, clients and servers of package `varde.v1`.
pub mod v1 {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        rustdoc::all,
        unreachable_pub
    )]
    include!(concat!(env!("OUT_DIR"), "/varde.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every Varde `.proto` file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/varde_descriptor.bin"));

/// Where the signing test vectors live, relative to this crate's directory.
pub const SIGNING_VECTORS_PATH: &str = "testdata/signing-vectors.json";

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::v1;

    // The descriptor set decodes and names every varde.v1 service, as reflection will serve it.
    #[test]
    fn descriptor_set_lists_the_services() {
        #[derive(Clone, PartialEq, Message)]
        struct FileDescriptorSet {
            #[prost(message, repeated, tag = "1")]
            file: Vec<FileDescriptor>,
        }
        // Only the fields this test reads: name (1), package (2) and service (6).
        #[derive(Clone, PartialEq, Message)]
        struct FileDescriptor {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(string, tag = "2")]
            package: String,
            #[prost(message, repeated, tag = "6")]
            service: Vec<ServiceDescriptor>,
        }
        #[derive(Clone, PartialEq, Message)]
        struct ServiceDescriptor {
            #[prost(string, tag = "1")]
            name: String,
        }
        let set = FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        assert!(set.file.iter().all(|file| file.package == "varde.v1"));
        let mut services: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| file.service.iter().map(|service| service.name.clone()))
            .collect();
        services.sort();
        assert_eq!(services, ["Ledger", "Node", "Query"]);
        assert!(
            set.file
                .iter()
                .any(|file| file.name == "varde/v1/transaction.proto")
        );
    }

    // A body round-trips through its encoding and keeps its oneof action.
    #[test]
    fn transaction_body_round_trips() {
        let body = v1::TransactionBody {
            chain_id: "varde-test".to_owned(),
            expires_at_height: 10,
            action: Some(v1::transaction_body::Action::RevokeGrant(v1::RevokeGrant {
                issuer_org_number: "974760673".to_owned(),
                grant_id: vec![7; 32],
                reason: "patient withdrew consent".to_owned(),
            })),
            ..Default::default()
        };
        let decoded = v1::TransactionBody::decode(body.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, body);
    }
}
