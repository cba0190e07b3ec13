//! Ed25519 as Varde uses it: signing a 32-byte signing digest, verifying one signature (strict, as
//! the node checks transactions and votes, and plain), and batch verification of 64 and 256
//! signatures, each by a different key (ed25519-dalek's `verify_batch`, the `batch` feature).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, verify_batch};

/// A distinct key and a distinct 32-byte message for each `i`.
fn signers(count: usize) -> (Vec<SigningKey>, Vec<[u8; 32]>) {
    let keys = (0..count)
        .map(|i| {
            let mut seed = [0x5a; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let messages = (0..count)
        .map(|i| {
            let mut message = [0x17; 32];
            message[..8].copy_from_slice(&(i as u64).to_le_bytes());
            message
        })
        .collect();
    (keys, messages)
}

fn ed25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (keys, messages) = signers(1);
    let key = &keys[0];
    let public = key.verifying_key();
    let signature = key.sign(&messages[0]);
    group.bench_function("sign", |b| b.iter(|| key.sign(black_box(&messages[0]))));
    group.bench_function("verify_strict", |b| {
        b.iter(|| {
            public
                .verify_strict(black_box(&messages[0]), black_box(&signature))
                .expect("verifies")
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            ed25519_dalek::Verifier::verify(&public, black_box(&messages[0]), &signature)
                .expect("verifies")
        })
    });
    for count in [64usize, 256] {
        let (keys, messages) = signers(count);
        let publics: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let signatures: Vec<Signature> = keys
            .iter()
            .zip(&messages)
            .map(|(key, message)| key.sign(message))
            .collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(|message| &message[..]).collect();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("verify_batch_distinct_keys", count),
            &count,
            |b, _| {
                b.iter(|| {
                    verify_batch(black_box(&message_refs), &signatures, &publics)
                        .expect("the batch verifies")
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ed25519);
criterion_main!(benches);
