//! One height of consensus with n = 4, 7 and 10 validators: n sans-IO `Engine`s in memory, each
//! with its own key and the real Ed25519 verifier, started together; every message an engine
//! sends is delivered once to every other engine (first in, first out), the proposer's block (64
//! bytes) is proposed when asked and every validation request answered "valid", until all n
//! engines have decided. No timer fires and nothing is persisted (a node would write each safety
//! state it is asked to before sending). Each engine verifies every proposal and vote of the
//! others, so a height costs about 3·n·(n−1) signature checks.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use varde_consensus::{
    Block, BlockId, Ed25519Verifier, Engine, EngineConfig, Input, Output, Request, SigningKey,
    Timeouts, ValidatorSet,
};

const CHAIN: &str = "varde-bench-chain";

fn engines(n: u8) -> Vec<Engine> {
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_bytes(&[i + 100; 32]))
        .collect();
    let validators =
        ValidatorSet::new(keys.iter().map(SigningKey::verifying_key).collect()).expect("a set");
    keys.into_iter()
        .map(|key| {
            Engine::new(
                EngineConfig::new(CHAIN, Timeouts::default()).expect("a config"),
                key,
                Arc::new(Ed25519Verifier),
                1,
                validators.clone(),
                None,
            )
            .expect("an engine")
        })
        .collect()
}

/// Queues what `output` of engine `from` asks for; returns whether it decided.
fn route(
    from: usize,
    output: Output,
    n: usize,
    block: &Block,
    queue: &mut VecDeque<(usize, Input)>,
) -> bool {
    for message in output.messages() {
        for to in (0..n).filter(|to| *to != from) {
            queue.push_back((to, Input::Message(message.clone())));
        }
    }
    for request in output.requests {
        let input = match request {
            Request::ProposeBlock { height, round } => Input::BlockToPropose {
                height,
                round,
                block: block.clone(),
            },
            Request::ValidateBlock { height, block } => Input::BlockVerdict {
                height,
                block_id: block.id,
                valid: true,
            },
        };
        queue.push_back((from, input));
    }
    output.decision.is_some()
}

/// Runs the engines until each has decided height 1; returns the number of inputs handled.
fn decide_one_height(mut engines: Vec<Engine>, block: &Block) -> usize {
    let n = engines.len();
    let mut queue = VecDeque::new();
    let mut decided = vec![false; n];
    for (index, engine) in engines.iter_mut().enumerate() {
        let output = engine.start();
        decided[index] |= route(index, output, n, block, &mut queue);
    }
    let mut handled = 0;
    while let Some((index, input)) = queue.pop_front() {
        let output = engines[index].handle(input);
        handled += 1;
        decided[index] |= route(index, output, n, block, &mut queue);
        if decided.iter().all(|done| *done) {
            break;
        }
    }
    assert!(decided.iter().all(|done| *done), "every engine decides");
    handled
}

fn consensus(c: &mut Criterion) {
    let block = Block {
        id: BlockId([0xb1; 32]),
        payload: vec![0xb2; 64].into(),
    };
    let mut group = c.benchmark_group("consensus_one_height");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [4u8, 7, 10] {
        group.bench_with_input(BenchmarkId::new("validators", n), &n, |b, &n| {
            b.iter_batched(
                || engines(n),
                |engines| decide_one_height(engines, black_box(&block)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, consensus);
criterion_main!(benches);
