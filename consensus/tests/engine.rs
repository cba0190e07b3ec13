//! Scenario tests of the engine, driven input by input: the rules of the paper, persistence before
//! sending, crash recovery without equivocation, catch-up, evidence and rejected input.

use std::sync::Arc;

use varde_consensus::{
    Block, BlockId, CertificateError, CommitCertificate, CommitSignature, Ed25519Verifier, Engine,
    EngineConfig, EngineError, Evidence, Input, Message, Outbound, Output, Proposal,
    ProposalMessage, RejectReason, Request, SafetyState, SignedProposal, SignedVote, SigningKey,
    Step, Timeouts, Timer, TimerKind, ValidatorSet, Vote, VoteKind,
};

const CHAIN: &str = "varde-test";

struct Network {
    keys: Vec<SigningKey>,
    validators: ValidatorSet,
}

fn network(n: u8) -> Network {
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
        .collect();
    let validators =
        ValidatorSet::new(keys.iter().map(SigningKey::verifying_key).collect()).unwrap();
    Network { keys, validators }
}

fn block(tag: u8) -> Block {
    Block {
        id: BlockId([tag; 32]),
        payload: vec![tag; 8].into(),
    }
}

impl Network {
    fn engine(&self, index: usize, height: u64, restored: Option<SafetyState>) -> Engine {
        self.engine_with_key(self.keys[index].clone(), height, restored)
    }

    fn engine_with_key(
        &self,
        key: SigningKey,
        height: u64,
        restored: Option<SafetyState>,
    ) -> Engine {
        let config = EngineConfig::new(CHAIN, Timeouts::default()).unwrap();
        Engine::new(
            config,
            key,
            Arc::new(Ed25519Verifier),
            height,
            self.validators.clone(),
            restored,
        )
        .unwrap()
    }

    fn proposal(&self, height: u64, round: u32, block: Block, valid_round: Option<u32>) -> Message {
        let proposer = self.validators.proposer(height, round);
        self.proposal_from(proposer, height, round, block, valid_round, Vec::new())
    }

    fn proposal_from(
        &self,
        proposer: u32,
        height: u64,
        round: u32,
        block: Block,
        valid_round: Option<u32>,
        proof_of_lock: Vec<SignedVote>,
    ) -> Message {
        let proposal = Proposal {
            height,
            round,
            valid_round,
            block_id: block.id,
            proposer,
        };
        Message::Proposal(ProposalMessage {
            signed: SignedProposal::sign(CHAIN, proposal, &self.keys[proposer as usize]),
            block,
            proof_of_lock,
        })
    }

    fn signed_vote(
        &self,
        validator: u32,
        kind: VoteKind,
        height: u64,
        round: u32,
        block: Option<u8>,
    ) -> SignedVote {
        let vote = Vote {
            kind,
            height,
            round,
            block_id: block.map(|tag| BlockId([tag; 32])),
            validator,
        };
        SignedVote::sign(CHAIN, vote, &self.keys[validator as usize])
    }

    fn vote(
        &self,
        validator: u32,
        kind: VoteKind,
        height: u64,
        round: u32,
        block: Option<u8>,
    ) -> Message {
        Message::Vote(self.signed_vote(validator, kind, height, round, block))
    }

    fn certificate(&self, height: u64, round: u32, tag: u8, signers: &[u32]) -> CommitCertificate {
        CommitCertificate {
            height,
            round,
            block_id: BlockId([tag; 32]),
            signatures: signers
                .iter()
                .map(|&validator| CommitSignature {
                    validator,
                    signature: self
                        .signed_vote(validator, VoteKind::Precommit, height, round, Some(tag))
                        .signature,
                })
                .collect(),
        }
    }
}

fn deliver(engine: &mut Engine, message: Message) -> Output {
    engine.handle(Input::Message(message))
}

fn own_votes(output: &Output, kind: VoteKind) -> Vec<Vote> {
    output
        .messages()
        .iter()
        .filter_map(|message| match message {
            Message::Vote(signed) if signed.vote.kind == kind => Some(signed.vote),
            _ => None,
        })
        .collect()
}

/// Delivers a proposal for `tag` to a follower and answers its validity request.
fn propose_to(network: &Network, engine: &mut Engine, round: u32, tag: u8, valid: bool) -> Output {
    let output = deliver(engine, network.proposal(1, round, block(tag), None));
    assert!(
        output
            .requests
            .iter()
            .any(|request| matches!(request, Request::ValidateBlock { block, .. } if block.id == BlockId([tag; 32]))),
        "a new block is sent to the application for validation"
    );
    engine.handle(Input::BlockVerdict {
        height: 1,
        block_id: BlockId([tag; 32]),
        valid,
    })
}

// The proposer's proposal and prevote leave only behind the state that records them (L19, L24).
#[test]
fn proposer_persists_before_its_messages_leave() {
    let network = network(4);
    let proposer = network.validators.proposer(1, 0) as usize;
    let mut engine = network.engine(proposer, 1, None);
    let started = engine.start();
    assert!(started.requests.contains(&Request::ProposeBlock {
        height: 1,
        round: 0
    }));
    let output = engine.handle(Input::BlockToPropose {
        height: 1,
        round: 0,
        block: block(7),
    });
    let Outbound::PersistThenSend { state, messages } = &output.outbound else {
        panic!(
            "signed messages must wait for persistence, got {:?}",
            output.outbound
        );
    };
    assert_eq!(messages.len(), 2, "the proposal and the prevote for it");
    assert_eq!(
        state.own_proposal.as_ref().map(|own| own.block.id),
        Some(BlockId([7; 32]))
    );
    assert_eq!(
        state.own_prevote.as_ref().map(|vote| vote.vote.block_id),
        Some(Some(BlockId([7; 32])))
    );
    assert_eq!(state.step, Step::Prevote);
}

// A follower prevotes a valid proposal and nil for an invalid one (L22–L26).
#[test]
fn follower_prevotes_valid_blocks_and_nil_for_invalid_ones() {
    let network = network(4);
    let mut accepting = network.engine(0, 1, None);
    accepting.start();
    let output = propose_to(&network, &mut accepting, 0, 5, true);
    assert_eq!(
        own_votes(&output, VoteKind::Prevote)[0].block_id,
        Some(BlockId([5; 32]))
    );

    let mut refusing = network.engine(0, 1, None);
    refusing.start();
    let output = propose_to(&network, &mut refusing, 0, 5, false);
    assert_eq!(own_votes(&output, VoteKind::Prevote)[0].block_id, None);
}

// A polka for the proposal locks it and sends a precommit; a quorum of precommits decides, with a
// certificate anyone holding the validator set can verify (L36–L43, L49).
#[test]
fn polka_locks_and_precommits_decide() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    propose_to(&network, &mut engine, 0, 5, true);
    deliver(
        &mut engine,
        network.vote(2, VoteKind::Prevote, 1, 0, Some(5)),
    );
    let output = deliver(
        &mut engine,
        network.vote(3, VoteKind::Prevote, 1, 0, Some(5)),
    );
    assert_eq!(
        own_votes(&output, VoteKind::Precommit)[0].block_id,
        Some(BlockId([5; 32]))
    );
    let state = output.state_to_persist().expect("locking is persisted");
    assert_eq!(state.locked, Some((0, BlockId([5; 32]))));
    assert_eq!(
        state.valid.as_ref().map(|valid| valid.prevotes.len()),
        Some(3)
    );

    deliver(
        &mut engine,
        network.vote(2, VoteKind::Precommit, 1, 0, Some(5)),
    );
    let output = deliver(
        &mut engine,
        network.vote(3, VoteKind::Precommit, 1, 0, Some(5)),
    );
    let decision = output.decision.expect("three precommits of four decide");
    assert_eq!(decision.block.id, BlockId([5; 32]));
    assert_eq!(decision.certificate.signatures.len(), 3);
    decision
        .certificate
        .verify(CHAIN, &network.validators, &Ed25519Verifier)
        .expect("the certificate verifies");
    assert!(engine.is_decided());
}

/// Locks `engine` (validator 0) on block 5 in round 0 and moves it to round 1 without deciding.
fn lock_in_round_zero_then_move_on(network: &Network, engine: &mut Engine) {
    engine.start();
    propose_to(network, engine, 0, 5, true);
    deliver(engine, network.vote(2, VoteKind::Prevote, 1, 0, Some(5)));
    deliver(engine, network.vote(3, VoteKind::Prevote, 1, 0, Some(5)));
    deliver(engine, network.vote(2, VoteKind::Precommit, 1, 0, None));
    let output = deliver(engine, network.vote(3, VoteKind::Precommit, 1, 0, None));
    let timer = output
        .timers
        .iter()
        .find(|timer| timer.kind == TimerKind::Precommit)
        .copied()
        .expect("2f+1 precommits of any kind start the precommit timeout (L47)");
    engine.handle(Input::Timeout(timer));
    assert_eq!(engine.round(), 1);
}

// A validator locked on one block prevotes nil for another block proposed without a proof of lock
// (L23), but prevotes a later round's block when the proposal proves a newer polka (L28–L29).
#[test]
fn lock_holds_until_a_newer_polka_is_proven() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    lock_in_round_zero_then_move_on(&network, &mut engine);
    let output = propose_to(&network, &mut engine, 1, 9, true);
    assert_eq!(
        own_votes(&output, VoteKind::Prevote)[0].block_id,
        None,
        "locked on 5, 9 is refused"
    );

    // Round 2: block 9 with a proof that 2f+1 prevoted it in round 1.
    let nil_precommits: Vec<_> = (1..4)
        .map(|v| network.vote(v, VoteKind::Precommit, 1, 1, None))
        .collect();
    for precommit in nil_precommits {
        let output = deliver(&mut engine, precommit);
        if let Some(timer) = output
            .timers
            .iter()
            .find(|timer| timer.kind == TimerKind::Precommit)
        {
            engine.handle(Input::Timeout(*timer));
        }
    }
    assert_eq!(engine.round(), 2);
    let proof: Vec<_> = (1..4)
        .map(|v| network.signed_vote(v, VoteKind::Prevote, 1, 1, Some(9)))
        .collect();
    let proposer = network.validators.proposer(1, 2);
    let output = deliver(
        &mut engine,
        network.proposal_from(proposer, 1, 2, block(9), Some(1), proof),
    );
    let output = if output.messages().is_empty() {
        engine.handle(Input::BlockVerdict {
            height: 1,
            block_id: BlockId([9; 32]),
            valid: true,
        })
    } else {
        output
    };
    assert_eq!(
        own_votes(&output, VoteKind::Prevote)[0].block_id,
        Some(BlockId([9; 32])),
        "a proven polka in round 1 > locked round 0 unlocks"
    );
}

// Rebuilt from its persisted state after a crash, a validator re-sends what it signed and signs
// nothing conflicting, even when offered another proposal for the same round.
#[test]
fn restart_never_signs_a_conflicting_vote() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    let output = propose_to(&network, &mut engine, 0, 5, true);
    let persisted = output
        .state_to_persist()
        .cloned()
        .expect("the prevote is persisted");
    let first_prevote = own_votes(&output, VoteKind::Prevote)[0];
    drop(engine);

    let mut restarted = network.engine(0, 1, Some(persisted));
    let resumed = restarted.start();
    assert_eq!(
        own_votes(&resumed, VoteKind::Prevote),
        vec![first_prevote],
        "re-sent, not re-signed"
    );
    // The proposer equivocates: a second block for round 0.
    let output = deliver(&mut restarted, network.proposal(1, 0, block(6), None));
    let output2 = restarted.handle(Input::BlockVerdict {
        height: 1,
        block_id: BlockId([6; 32]),
        valid: true,
    });
    for out in [&output, &output2] {
        assert!(
            own_votes(out, VoteKind::Prevote)
                .iter()
                .all(|vote| *vote == first_prevote)
        );
    }
    assert_eq!(restarted.step(), Step::Prevote);
}

// A committed block from a peer is accepted only with a certificate of 2f+1 valid signatures.
#[test]
fn catch_up_accepts_only_valid_certificates() {
    let network = network(4);
    let cases: [(&[u32], Option<CertificateError>); 3] = [
        (&[0, 2, 3], None),
        (
            &[2, 3],
            Some(CertificateError::NoQuorum {
                signers: 2,
                quorum: 3,
            }),
        ),
        (&[3, 2, 1], Some(CertificateError::NotCanonical(2))),
    ];
    for (signers, expected_error) in cases {
        let mut engine = network.engine(1, 1, None);
        engine.start();
        let output = engine.handle(Input::CommittedBlock {
            block: block(4),
            certificate: network.certificate(1, 0, 4, signers),
        });
        match expected_error {
            None => assert_eq!(output.decision.map(|d| d.block.id), Some(BlockId([4; 32]))),
            Some(error) => {
                assert!(output.decision.is_none());
                assert_eq!(
                    output.rejections[0].reason,
                    RejectReason::InvalidCertificate(error)
                );
            }
        }
    }
    // A forged signature.
    let mut engine = network.engine(1, 1, None);
    engine.start();
    let mut certificate = network.certificate(1, 0, 4, &[0, 2, 3]);
    certificate.signatures[1].signature = network
        .signed_vote(2, VoteKind::Precommit, 1, 0, Some(8))
        .signature;
    let output = engine.handle(Input::CommittedBlock {
        block: block(4),
        certificate,
    });
    assert!(output.decision.is_none());
    assert_eq!(
        output.rejections[0].reason,
        RejectReason::InvalidCertificate(CertificateError::BadSignature(2))
    );
}

// Two different signed votes from one validator become one piece of verifiable evidence.
#[test]
fn double_votes_become_evidence_once() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    deliver(
        &mut engine,
        network.vote(3, VoteKind::Prevote, 1, 0, Some(1)),
    );
    let output = deliver(
        &mut engine,
        network.vote(3, VoteKind::Prevote, 1, 0, Some(2)),
    );
    assert_eq!(output.evidence.len(), 1);
    let Evidence::DuplicateVote { first, second } = &output.evidence[0] else {
        panic!("a duplicate vote");
    };
    assert_eq!((first.vote.validator, second.vote.validator), (3, 3));
    output.evidence[0]
        .verify(CHAIN, &network.validators, &Ed25519Verifier)
        .unwrap();
    let again = deliver(&mut engine, network.vote(3, VoteKind::Prevote, 1, 0, None));
    assert!(again.evidence.is_empty(), "one piece of evidence per slot");
}

// Votes from outside the set, forged signatures and proposals out of turn are refused, not counted.
#[test]
fn messages_from_outside_or_forged_are_rejected() {
    let network = network(4);
    let outsider = SigningKey::from_bytes(&[99; 32]);
    let mut engine = network.engine(0, 1, None);
    engine.start();

    let mut unknown = network.signed_vote(1, VoteKind::Prevote, 1, 0, None);
    unknown.vote.validator = 7;
    let output = deliver(&mut engine, Message::Vote(unknown));
    assert_eq!(output.rejections[0].reason, RejectReason::UnknownValidator);

    let vote = network.signed_vote(2, VoteKind::Prevote, 1, 0, None).vote;
    let forged = SignedVote::sign(CHAIN, vote, &outsider);
    let output = deliver(&mut engine, Message::Vote(forged));
    assert_eq!(output.rejections[0].reason, RejectReason::BadSignature);

    let not_proposer = (network.validators.proposer(1, 0) + 1) % 4;
    let output = deliver(
        &mut engine,
        network.proposal_from(not_proposer, 1, 0, block(3), None, Vec::new()),
    );
    assert_eq!(output.rejections[0].reason, RejectReason::NotTheProposer);

    let proposer = network.validators.proposer(1, 0);
    let mut mismatched = network.proposal_from(proposer, 1, 0, block(3), None, Vec::new());
    if let Message::Proposal(message) = &mut mismatched {
        message.block = block(4);
    }
    let output = deliver(&mut engine, mismatched);
    assert_eq!(
        output.rejections[0].reason,
        RejectReason::BlockDoesNotMatchProposal
    );
    assert_eq!(
        engine.step(),
        Step::Propose,
        "nothing rejected moved the engine"
    );
}

// A non-validator key follows the chain without ever signing.
#[test]
fn observers_never_sign() {
    let network = network(4);
    let mut observer = network.engine_with_key(SigningKey::from_bytes(&[42; 32]), 1, None);
    let started = observer.start();
    assert!(started.messages().is_empty());
    let output = propose_to(&network, &mut observer, 0, 5, true);
    assert!(output.messages().is_empty());
    for validator in [0, 2, 3] {
        deliver(
            &mut observer,
            network.vote(validator, VoteKind::Precommit, 1, 0, Some(5)),
        );
    }
    assert!(observer.is_decided());
}

// f+1 validators in a later round pull the engine into that round, with their votes as its proof
// of being there (L55).
#[test]
fn f_plus_one_later_votes_skip_the_round() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    deliver(&mut engine, network.vote(2, VoteKind::Prevote, 1, 5, None));
    assert_eq!(engine.round(), 0, "one validator alone proves nothing");
    let output = deliver(&mut engine, network.vote(3, VoteKind::Prevote, 1, 6, None));
    assert_eq!(
        engine.round(),
        5,
        "the highest round f+1 validators reached"
    );
    let state = output
        .state_to_persist()
        .expect("the new round is persisted");
    assert_eq!(state.round_proof.len(), 2);
}

// Messages of the next height wait until the host has applied the decision, then count.
#[test]
fn next_height_messages_wait_for_the_decision() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    let early = network.proposal(2, 0, block(8), None);
    let output = deliver(&mut engine, early);
    assert_eq!(
        output.sync_from,
        Some(1),
        "a peer ahead is a hint to fetch committed blocks"
    );
    engine.handle(Input::CommittedBlock {
        block: block(4),
        certificate: network.certificate(1, 0, 4, &[1, 2, 3]),
    });
    let output = engine.start_next_height(network.validators.clone());
    assert_eq!(engine.height(), 2);
    assert!(
        output
            .requests
            .iter()
            .any(|request| matches!(request, Request::ValidateBlock { height: 2, .. })),
        "the buffered proposal is processed at its height"
    );
}

// A safety state from a height beyond the next one means lost blocks: refuse to start.
#[test]
fn safety_state_ahead_of_the_chain_is_refused() {
    let network = network(4);
    let mut state = network.engine(0, 3, None).safety_state();
    state.height = 3;
    let config = EngineConfig::new(CHAIN, Timeouts::default()).unwrap();
    let refused = Engine::new(
        config,
        network.keys[0].clone(),
        Arc::new(Ed25519Verifier),
        1,
        network.validators.clone(),
        Some(state),
    );
    assert!(matches!(
        refused.err(),
        Some(EngineError::SafetyStateAhead {
            persisted: 3,
            starting: 1
        })
    ));
}

// Timeouts grow with the round, so that after stabilisation a round eventually outlasts delays.
#[test]
fn timeouts_grow_with_the_round() {
    let network = network(4);
    let mut engine = network.engine(0, 1, None);
    let propose_delay = |output: &Output| -> u64 {
        output
            .timers
            .iter()
            .find(|timer: &&Timer| timer.kind == TimerKind::Propose)
            .map(|timer| timer.delay_ms)
            .unwrap()
    };
    let round_zero = propose_delay(&engine.start());
    deliver(&mut engine, network.vote(2, VoteKind::Prevote, 1, 3, None));
    let output = deliver(&mut engine, network.vote(3, VoteKind::Prevote, 1, 3, None));
    assert!(propose_delay(&output) > round_zero);
}

// Chain ids are length-prefixed in every digest: empty or oversized ones are refused.
#[test]
fn chain_id_must_fit() {
    assert!(EngineConfig::new("", Timeouts::default()).is_err());
    assert!(EngineConfig::new("x".repeat(257), Timeouts::default()).is_err());
    assert!(EngineConfig::new("varde-prod", Timeouts::default()).is_ok());
}

// Forged messages of the next height in an honest validator's name take none of its places in
// the buffer: only messages whose signature verifies wait, so the genuine proposal still counts.
#[test]
fn forged_next_height_messages_crowd_out_nobody() {
    let network = network(4);
    let outsider = SigningKey::from_bytes(&[99; 32]);
    let mut engine = network.engine(0, 1, None);
    engine.start();
    let next_proposer = network.validators.proposer(2, 0);
    for round in 0..20 {
        for validator in [next_proposer, 500] {
            let vote = Vote {
                kind: VoteKind::Prevote,
                height: 2,
                round,
                block_id: None,
                validator,
            };
            deliver(
                &mut engine,
                Message::Vote(SignedVote::sign(CHAIN, vote, &outsider)),
            );
        }
    }
    deliver(&mut engine, network.proposal(2, 0, block(8), None));
    engine.handle(Input::CommittedBlock {
        block: block(4),
        certificate: network.certificate(1, 0, 4, &[1, 2, 3]),
    });
    let output = engine.start_next_height(network.validators.clone());
    assert!(
        output.requests.iter().any(
            |request| matches!(request, Request::ValidateBlock { height: 2, block } if block.id == BlockId([8; 32]))
        ),
        "the genuine proposal waited and is processed at its height"
    );
    assert!(
        output.rejections.is_empty(),
        "forged messages were refused when they came, not buffered"
    );
}

// A persisted safety state that was corrupted or tampered with is refused with an error that
// says so, never a panic: own votes of another height or round, or not signed by this
// validator, a vote recorded at a step before it, a round proof of another height, a lock or
// a proposal that does not fit the round.
#[test]
fn tampered_safety_state_is_refused_with_an_error() {
    let network = network(4);
    let proposer = network.validators.proposer(1, 0) as usize;
    let mut engine = network.engine(proposer, 1, None);
    engine.start();
    let output = engine.handle(Input::BlockToPropose {
        height: 1,
        round: 0,
        block: block(5),
    });
    let persisted = output
        .state_to_persist()
        .cloned()
        .expect("the proposal and prevote are persisted");
    assert!(persisted.own_prevote.is_some() && persisted.own_proposal.is_some());
    let other = (proposer as u32 + 1) % 4;
    type Tamper = fn(&mut SafetyState, &Network, u32);
    let tamperings: [(&str, Tamper); 9] = [
        ("own prevote of another height", |state, _, _| {
            state.own_prevote.as_mut().unwrap().vote.height = 2;
        }),
        ("own prevote of another round", |state, _, _| {
            state.own_prevote.as_mut().unwrap().vote.round = 3;
        }),
        ("own prevote in another's name", |state, network, other| {
            *state.own_prevote.as_mut().unwrap() =
                network.signed_vote(other, VoteKind::Prevote, 1, 0, Some(5));
        }),
        ("own prevote with a changed block", |state, _, _| {
            state.own_prevote.as_mut().unwrap().vote.block_id = Some(BlockId([6; 32]));
        }),
        ("prevote recorded at the propose step", |state, _, _| {
            state.step = Step::Propose;
        }),
        (
            "precommit recorded at the prevote step",
            |state, network, _| {
                let own = state.own_prevote.as_ref().unwrap().vote.validator;
                state.own_precommit =
                    Some(network.signed_vote(own, VoteKind::Precommit, 1, 0, None));
            },
        ),
        ("round proof of another height", |state, network, other| {
            state.round_proof = vec![network.signed_vote(other, VoteKind::Precommit, 7, 0, None)];
        }),
        ("lock ahead of the round", |state, _, _| {
            state.locked = Some((4, BlockId([5; 32])));
        }),
        ("own proposal of another round", |state, _, _| {
            state.own_proposal.as_mut().unwrap().signed.proposal.round = 2;
        }),
    ];
    for (what, tamper) in tamperings {
        let mut state = persisted.clone();
        tamper(&mut state, &network, other);
        let config = EngineConfig::new(CHAIN, Timeouts::default()).unwrap();
        let refused = Engine::new(
            config,
            network.keys[proposer].clone(),
            Arc::new(Ed25519Verifier),
            1,
            network.validators.clone(),
            Some(state),
        );
        let Err(error) = refused else {
            panic!("{what}: accepted");
        };
        assert!(
            matches!(error, EngineError::InvalidSafetyState { .. }),
            "{what}: {error}"
        );
        assert!(
            error.to_string().contains("safety state"),
            "{what}: the message names the state: {error}"
        );
    }
    let resumed = network.engine(proposer, 1, Some(persisted));
    assert_eq!(
        resumed.step(),
        Step::Prevote,
        "the untampered state resumes"
    );
}
