//! The applications the simulated validators run through the node's own core: a light one
//! ([`SimpleApp`], most seeds) and Varde's real ledger over the in-memory store ([`LedgerSimApp`],
//! a share of seeds). Both hold blocks to the same kinds of rules (height, proposer, limits, time
//! against the node's clock); each comes with a referee that judges committed blocks for the
//! checker and keeps the validator-set history of the chain, and a forger that Byzantine
//! validators build valid-looking blocks with. The ledger runs governance: in governance
//! scenarios every pool starts with the proposals and approvals of the planned set changes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use sha2::{Digest, Sha256};
use varde_consensus::{
    Block, BlockId, Decision, Ed25519Verifier, Evidence, Height, Round, Signature,
    SignatureVerifier, SigningKey, ValidatorIndex, ValidatorSet, VerifyingKey,
};
use varde_ledger::Ledger;
use varde_ledger::domain::{Outcome, RejectionReason};
use varde_ledger::governance::ProposalStatus;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::proof::{self, LightClient};
use varde_ledger::signing::TransactionId;
use varde_node_core::{
    Application, BLOCK_TIME_DRIFT_MAX_MS, BlockLimits, BlockPath, CheckedBlock, Clock,
    CommittedBlock, LedgerAppError, LedgerApplication, LedgerHost, validators_of,
};
use varde_proto::v1;
use varde_storage::MemoryStore;

use super::faults::{Crashed, FaultyStore, Fuse, SharedDisk};
use super::scenario::{ChangeKind, GovernancePlan, Scenario};

/// Unix time at virtual time zero.
pub const SIM_EPOCH_UNIX_MS: i64 = 1_800_000_000_000;

/// What a node's application is opened with.
pub struct Setup<'a, S> {
    pub index: usize,
    /// Every consensus key the node holds (a rotated validator holds two).
    pub keys: &'a [SigningKey],
    pub disk: SharedDisk,
    pub fuse: Fuse,
    pub shared: &'a S,
    /// Evidence this node reported, for the checker.
    pub reports: Rc<RefCell<Vec<Evidence>>>,
    /// A broken rule: proposals are not held to this node's clock.
    pub skip_time_check: bool,
    /// A broken rule: the node's core is never told that governance changed the set.
    pub keep_old_validator_set: bool,
}

/// An application the simulator can run, forge blocks of, and referee.
pub trait SimApp: Application + Sized {
    /// What a run's nodes share: the genesis, the validator keys.
    type Shared;
    type Referee: Referee;

    /// `keys` holds each node's consensus keys, `genesis_set` the validators of the genesis.
    fn shared(
        chain_id: &str,
        scenario: &Scenario,
        keys: &[Vec<SigningKey>],
        genesis_set: &ValidatorSet,
        disks: &[SharedDisk],
    ) -> Self::Shared;

    fn open(setup: Setup<'_, Self::Shared>) -> Self;

    /// The validator set of the height after this node's committed head, as its own state says
    /// (`genesis` for an application without governance).
    fn validators(&self, genesis: &ValidatorSet) -> ValidatorSet;

    /// The validator-set history that node `node`'s committed state holds, each set's keys with
    /// its first height; `None` for an application without governance.
    fn set_history_of(
        _shared: &Self::Shared,
        _node: usize,
    ) -> Option<Vec<(Height, Vec<[u8; 32]>)>> {
        None
    }

    /// Why a light client that trusts the genesis alone refuses what node `node` serves: its
    /// validator-set history, each change proven by the certified header before it, and its last
    /// certified header. Empty when it accepts (or the application serves no light clients).
    fn light_client_problems(_shared: &Self::Shared, _node: usize) -> Vec<String> {
        Vec::new()
    }

    /// A valid-looking block for `height` by node `proposer` (in the light application, whose set
    /// never changes, the node is its validator index), on the chain of node `base` (which must
    /// be at `height - 1`), dated `time_unix_ms`, distinct per `nonce`; `oversized` puts it over
    /// the block limits.
    #[allow(clippy::too_many_arguments)]
    fn forge(
        shared: &Self::Shared,
        base: usize,
        proposer: ValidatorIndex,
        height: Height,
        round: Round,
        nonce: u64,
        time_unix_ms: i64,
        oversized: bool,
    ) -> Block;

    fn referee(shared: &Self::Shared) -> Self::Referee;
}

/// Judges each committed height once, in order, by every rule a block must meet.
pub trait Referee {
    /// What is wrong with `decision`; `latest_unix_ms` is the latest honest clock reading so far.
    fn problems(&mut self, decision: &Decision, latest_unix_ms: i64) -> Vec<String>;

    /// The validator sets of the judged chain, each with the first height it decides, ascending
    /// from the genesis set at height 1; the last one holds for the height after the last judged.
    fn set_history(&self) -> &[(Height, ValidatorSet)];

    /// The scenario's planned set changes that the judged chain did not enact by their height,
    /// with that height. Asked at the end of a run.
    fn plan_problems(&self) -> Vec<(Height, String)> {
        Vec::new()
    }

    /// Misbehaviour reports the judged chain recorded against validators outside the genesis
    /// set (their evidence verified against the set of its own height).
    fn added_validator_misbehaviour_recorded(&self) -> usize {
        0
    }
}

fn parent_time(disk: &SharedDisk, time_of: impl Fn(&Block) -> Option<i64>) -> i64 {
    disk.borrow()
        .chain
        .last()
        .and_then(|decision| time_of(&decision.block))
        .unwrap_or(SIM_EPOCH_UNIX_MS)
}

// --- The light application -------------------------------------------------------------------

const MAGIC: &[u8; 8] = b"SIMBLOCK";
const HEADER_LEN: usize = 8 + 8 + 4 + 4 + 8 + 8;
/// The block limit of the light application: a header and a little filler.
pub const SIMPLE_MAX_BLOCK_BYTES: usize = 256;

pub fn block_id_of(payload: &[u8]) -> BlockId {
    let mut hasher = Sha256::new();
    hasher.update(b"varde-sim/block\0");
    hasher.update(payload);
    BlockId(hasher.finalize().into())
}

/// A light block: magic, height, proposer, round, nonce, time, then `filler` bytes.
pub fn simple_block(
    height: Height,
    proposer: ValidatorIndex,
    round: Round,
    nonce: u64,
    time_unix_ms: i64,
    filler: usize,
) -> Block {
    let mut payload = Vec::with_capacity(HEADER_LEN + filler);
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&height.to_be_bytes());
    payload.extend_from_slice(&proposer.to_be_bytes());
    payload.extend_from_slice(&round.to_be_bytes());
    payload.extend_from_slice(&nonce.to_be_bytes());
    payload.extend_from_slice(&time_unix_ms.to_be_bytes());
    payload.resize(HEADER_LEN + filler, 0x42);
    Block {
        id: block_id_of(&payload),
        payload: payload.into(),
    }
}

struct SimpleHeader {
    height: Height,
    proposer: ValidatorIndex,
    time_unix_ms: i64,
}

fn simple_header(block: &Block) -> Option<SimpleHeader> {
    let payload = &block.payload;
    if payload.len() < HEADER_LEN || !payload.starts_with(MAGIC) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| payload.get(range);
    Some(SimpleHeader {
        height: u64::from_be_bytes(field(8..16)?.try_into().ok()?),
        proposer: u32::from_be_bytes(field(16..20)?.try_into().ok()?),
        time_unix_ms: i64::from_be_bytes(field(32..40)?.try_into().ok()?),
    })
}

fn simple_time(block: &Block) -> Option<i64> {
    simple_header(block).map(|header| header.time_unix_ms)
}

/// The rules of a light block: well formed, for this height, from a validator, its id its hash,
/// not older than its parent; a proposal also within the size limit and not dated more than the
/// drift ahead of `clock`.
fn simple_rules(
    height: Height,
    block: &Block,
    validators: usize,
    parent_time_unix_ms: i64,
    latest_unix_ms: Option<i64>,
) -> Result<(), String> {
    let header = simple_header(block).ok_or("malformed")?;
    if header.height != height {
        return Err(format!("for height {}", header.height));
    }
    if header.proposer as usize >= validators {
        return Err(format!("proposer {} is no validator", header.proposer));
    }
    if block.id != block_id_of(&block.payload) {
        return Err("its id is not its hash".to_owned());
    }
    if header.time_unix_ms < parent_time_unix_ms {
        return Err("dated before its parent".to_owned());
    }
    if let Some(latest) = latest_unix_ms {
        if block.payload.len() > SIMPLE_MAX_BLOCK_BYTES {
            return Err(format!("{} bytes, over the limit", block.payload.len()));
        }
        if header.time_unix_ms > latest.saturating_add(BLOCK_TIME_DRIFT_MAX_MS) {
            return Err("dated too far ahead".to_owned());
        }
    }
    Ok(())
}

pub struct SimpleApp {
    index: usize,
    validators: usize,
    disk: SharedDisk,
    fuse: Fuse,
    reports: Rc<RefCell<Vec<Evidence>>>,
    skip_time_check: bool,
    built: u64,
}

pub struct SimpleShared {
    validators: ValidatorSet,
}

impl Application for SimpleApp {
    type Executed = ();
    type Checked = ();
    type Error = Crashed;

    fn build_block(&mut self, height: Height, clock: Clock) -> Result<(Block, ()), Crashed> {
        self.built += 1;
        let time = clock.unix_ms.max(parent_time(&self.disk, simple_time));
        let nonce = self.built;
        let block = simple_block(height, self.index as u32, 0, nonce, time, 0);
        Ok((block, ()))
    }

    fn check_block(
        &self,
        height: Height,
        block: &Block,
        path: BlockPath,
        clock: Clock,
    ) -> Option<()> {
        let latest = match path {
            BlockPath::Proposed if self.skip_time_check => Some(i64::MAX / 2),
            BlockPath::Proposed => Some(clock.unix_ms),
            BlockPath::Certified => None,
        };
        let parent = parent_time(&self.disk, simple_time);
        simple_rules(height, block, self.validators, parent, latest).ok()
    }

    fn execute_block(&mut self, _: Height, _: &Block, _: ()) -> Result<Option<()>, Crashed> {
        Ok(Some(()))
    }

    fn commit_block(&mut self, decision: &Decision, _: (), _: Clock) -> Result<(), Crashed> {
        if !self.fuse.allows() {
            return Err(Crashed);
        }
        self.disk.borrow_mut().chain.push(decision.clone());
        Ok(())
    }

    fn has_waiting_transactions(&self) -> bool {
        true
    }

    fn report_misbehaviour(&mut self, evidence: &Evidence, _: Height, _: Clock) {
        self.reports.borrow_mut().push(evidence.clone());
    }
}

impl SimApp for SimpleApp {
    type Shared = SimpleShared;
    type Referee = SimpleReferee;

    fn shared(
        _: &str,
        _: &Scenario,
        _: &[Vec<SigningKey>],
        genesis_set: &ValidatorSet,
        _: &[SharedDisk],
    ) -> SimpleShared {
        SimpleShared {
            validators: genesis_set.clone(),
        }
    }

    fn open(setup: Setup<'_, SimpleShared>) -> Self {
        let built = setup.disk.borrow().chain.len() as u64 * 1_000;
        Self {
            index: setup.index,
            validators: setup.shared.validators.len(),
            disk: setup.disk,
            fuse: setup.fuse,
            reports: setup.reports,
            skip_time_check: setup.skip_time_check,
            built,
        }
    }

    fn forge(
        _: &SimpleShared,
        _: usize,
        proposer: ValidatorIndex,
        height: Height,
        round: Round,
        nonce: u64,
        time_unix_ms: i64,
        oversized: bool,
    ) -> Block {
        let filler = if oversized { SIMPLE_MAX_BLOCK_BYTES } else { 0 };
        simple_block(height, proposer, round, nonce, time_unix_ms, filler)
    }

    fn validators(&self, genesis: &ValidatorSet) -> ValidatorSet {
        genesis.clone()
    }

    fn referee(shared: &SimpleShared) -> SimpleReferee {
        SimpleReferee {
            validators: shared.validators.len(),
            parent_time_unix_ms: SIM_EPOCH_UNIX_MS,
            history: vec![(1, shared.validators.clone())],
        }
    }
}

pub struct SimpleReferee {
    validators: usize,
    parent_time_unix_ms: i64,
    history: Vec<(Height, ValidatorSet)>,
}

impl Referee for SimpleReferee {
    fn problems(&mut self, decision: &Decision, latest_unix_ms: i64) -> Vec<String> {
        let verdict = simple_rules(
            decision.height,
            &decision.block,
            self.validators,
            self.parent_time_unix_ms,
            Some(latest_unix_ms),
        );
        if let Some(time) = simple_time(&decision.block) {
            self.parent_time_unix_ms = time;
        }
        verdict.err().into_iter().collect()
    }

    fn set_history(&self) -> &[(Height, ValidatorSet)] {
        &self.history
    }
}

// --- Varde's ledger ----------------------------------------------------------------------------

/// The block limits of ledger runs: small, so that forged blocks can break them.
pub const LEDGER_LIMITS: BlockLimits = BlockLimits {
    max_transactions: 4,
    max_bytes: 64 * 1024,
};
/// How many anchors wait in every validator's pool at the start of a ledger run.
const LEDGER_TRANSACTIONS: usize = 12;

/// A valid organisation number (mod-11 check digit) for institution `index`.
fn org_number(index: usize) -> String {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    (0..)
        .map(|offset: u32| 91_000_000 + index as u32 * 37 + offset)
        .find_map(|stem| {
            let digits: Vec<u32> = stem
                .to_string()
                .chars()
                .map(|c| c.to_digit(10).unwrap_or(0))
                .collect();
            let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
            let check = match sum % 11 {
                0 => 0,
                1 => return None,
                remainder => 11 - remainder,
            };
            Some(format!("{stem}{check}"))
        })
        .expect("some stem has a check digit")
}

/// A submitting key of the simulation, derived from the seed and what it is for.
fn derived_key(seed: u64, purpose: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(format!("varde-sim/{purpose}/{seed}")).into())
}

fn organisation(index: usize) -> varde_ledger::identifiers::OrgNumber {
    varde_ledger::identifiers::OrgNumber::parse(&org_number(index))
        .expect("a valid organisation number")
}

/// The institutions of a run: one per genesis validator (organisation `i` for node `i`), the
/// hospital whose records are anchored (organisation `validator_count`), and in a governance run
/// the joiner's institution (organisation `validator_count + 1`), a submitter in the genesis
/// when governance gives it the validator role later. The validator that governance removes but
/// whose institution stays is a submitter too.
fn genesis_of(
    chain_id: &str,
    scenario: &Scenario,
    keys: &[Vec<SigningKey>],
    submitter: &SigningKey,
) -> Genesis {
    let count = scenario.validator_count;
    let plan = scenario.governance.as_ref();
    let stays_a_submitter = |node: usize| {
        plan.is_some_and(|plan| {
            plan.changes.iter().any(|change| {
                change.kind
                    == ChangeKind::RemoveValidator {
                        node,
                        whole_institution: false,
                    }
            })
        })
    };
    let mut institutions: Vec<Institution> = keys[..count]
        .iter()
        .enumerate()
        .map(|(index, node_keys)| {
            let (roles, public_keys) = if stays_a_submitter(index) {
                let key = derived_key(scenario.seed, &format!("institution-{index}"));
                (
                    vec![Role::Validator, Role::Submitter],
                    vec![key.verifying_key().to_bytes()],
                )
            } else {
                (vec![Role::Validator], Vec::new())
            };
            Institution {
                org_number: organisation(index),
                name: format!("Simulated health trust {index}"),
                roles,
                public_keys,
                validator_key: Some(node_keys[0].verifying_key().to_bytes()),
            }
        })
        .collect();
    institutions.push(Institution {
        org_number: organisation(count),
        name: "Simulated hospital".to_owned(),
        roles: vec![Role::Submitter],
        public_keys: vec![submitter.verifying_key().to_bytes()],
        validator_key: None,
    });
    let joiner_is_a_submitter = plan.is_some_and(|plan| {
        plan.changes.iter().any(|change| {
            matches!(
                change.kind,
                ChangeKind::AddValidator {
                    new_institution: false,
                    ..
                }
            )
        })
    });
    if joiner_is_a_submitter {
        let key = derived_key(scenario.seed, "joiner-institution");
        institutions.push(Institution {
            org_number: organisation(count + 1),
            name: "Simulated clinic".to_owned(),
            roles: vec![Role::Submitter],
            public_keys: vec![key.verifying_key().to_bytes()],
            validator_key: None,
        });
    }
    Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time_unix_ms: SIM_EPOCH_UNIX_MS,
        institutions,
    }
}

fn signed_transaction(
    chain_id: &str,
    key: &SigningKey,
    nonce: &[u8],
    action: v1::transaction_body::Action,
) -> v1::SignedTransaction {
    let body = v1::TransactionBody {
        chain_id: chain_id.to_owned(),
        expires_at_height: 10_000,
        expires_at_unix_ms: 0,
        nonce: nonce.to_vec(),
        action: Some(action),
    };
    varde_ledger::signing::sign_transaction(chain_id, key, &body).expect("a short chain id")
}

/// A planned change as the ledger knows it: its proposal's id, its height, what it is.
#[derive(Clone, Debug)]
struct PlannedProposal {
    id: TransactionId,
    effective_height: Height,
    description: String,
}

/// The governance transactions of `plan`, each change's proposal followed by its approvals,
/// all signed with the genesis consensus keys of honest validators.
fn governance_transactions(
    chain_id: &str,
    plan: &GovernancePlan,
    validator_count: usize,
    keys: &[Vec<SigningKey>],
) -> (Vec<v1::SignedTransaction>, Vec<PlannedProposal>) {
    use v1::membership_change::Change;
    let mut transactions = Vec::new();
    let mut proposals = Vec::new();
    let joiner_org = organisation(validator_count + 1).as_str().to_owned();
    for (position, planned) in plan.changes.iter().enumerate() {
        let (change, description) = match planned.kind {
            ChangeKind::AddValidator {
                node,
                new_institution: true,
            } => (
                Change::AddInstitution(v1::Member {
                    org_number: joiner_org.clone(),
                    name: "Simulated clinic".to_owned(),
                    roles: vec![v1::InstitutionRole::Validator as i32],
                    public_keys: Vec::new(),
                    validator_key: keys[node][0].verifying_key().to_bytes().to_vec(),
                }),
                format!("node {node}'s institution joins with a validator"),
            ),
            ChangeKind::AddValidator { node, .. } => (
                Change::AddValidator(v1::InstitutionKey {
                    org_number: joiner_org.clone(),
                    public_key: keys[node][0].verifying_key().to_bytes().to_vec(),
                }),
                format!("node {node} becomes a validator"),
            ),
            ChangeKind::RemoveValidator {
                node,
                whole_institution: true,
            } => (
                Change::RemoveInstitution(organisation(node).as_str().to_owned()),
                format!("node {node}'s institution leaves"),
            ),
            ChangeKind::RemoveValidator { node, .. } => (
                Change::RemoveValidator(organisation(node).as_str().to_owned()),
                format!("node {node} leaves the validator set"),
            ),
            ChangeKind::RotateKey { node } => (
                Change::RotateValidatorKey(v1::InstitutionKey {
                    org_number: organisation(node).as_str().to_owned(),
                    public_key: keys[node][1].verifying_key().to_bytes().to_vec(),
                }),
                format!("node {node}'s consensus key is rotated"),
            ),
        };
        let nonce = format!("varde-sim/governance/{position}");
        let proposal = signed_transaction(
            chain_id,
            &keys[planned.proposer][0],
            nonce.as_bytes(),
            v1::transaction_body::Action::ProposeChange(v1::ProposeChange {
                proposer_org_number: organisation(planned.proposer).as_str().to_owned(),
                change: Some(v1::MembershipChange {
                    change: Some(change),
                }),
                effective_height: planned.effective_height,
                approve_by_height: 0,
            }),
        );
        let id = varde_ledger::signing::envelope_id(chain_id, &proposal)
            .expect("a simulated key is 32 bytes");
        transactions.push(proposal);
        for approver in &planned.approvers {
            transactions.push(signed_transaction(
                chain_id,
                &keys[*approver][0],
                nonce.as_bytes(),
                v1::transaction_body::Action::ApproveChange(v1::ApproveChange {
                    approver_org_number: organisation(*approver).as_str().to_owned(),
                    proposal_id: id.0.to_vec(),
                }),
            ));
        }
        proposals.push(PlannedProposal {
            id,
            effective_height: planned.effective_height,
            description: format!("{description} at height {}", planned.effective_height),
        });
    }
    (transactions, proposals)
}

fn anchors(
    chain_id: &str,
    custodian: &str,
    key: &SigningKey,
    seed: u64,
) -> Vec<v1::SignedTransaction> {
    (0..LEDGER_TRANSACTIONS)
        .map(|index| {
            let tag = Sha256::digest(format!("varde-sim/anchor/{seed}/{index}"));
            let body = v1::TransactionBody {
                chain_id: chain_id.to_owned(),
                expires_at_height: 10_000,
                expires_at_unix_ms: 0,
                nonce: tag[..16].to_vec(),
                action: Some(v1::transaction_body::Action::AnchorRecord(
                    v1::AnchorRecord {
                        custodian_org_number: custodian.to_owned(),
                        record_id: format!("sim-record-{index}"),
                        subject_pseudonym: Sha256::digest(tag).to_vec(),
                        category_code: "psychiatry".to_owned(),
                        location_uri: format!("https://ehr.example.invalid/sim/record-{index}"),
                        content_sha256: vec![0x5a; 32],
                        confidentiality: v1::Confidentiality::Normal as i32,
                        created_at_unix_ms: SIM_EPOCH_UNIX_MS,
                    },
                )),
            };
            let body = body.encode_to_vec();
            let parts =
                varde_ledger::signing::sign(chain_id, key, &body).expect("a short chain id");
            v1::SignedTransaction {
                body,
                signer_public_key: parts.signer_public_key.to_vec(),
                signature: parts.signature.to_vec(),
            }
        })
        .collect()
}

/// Verifies each distinct (key, digest, signature) once per run: transaction signatures are
/// checked by every node's ledger, and the answer is the same for all of them.
type VerificationKey = ([u8; 32], [u8; 32], [u8; 64]);

#[derive(Default)]
pub struct CachingVerifier {
    cache: Mutex<HashMap<VerificationKey, bool>>,
}

impl CachingVerifier {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl SignatureVerifier for CachingVerifier {
    fn verify(&self, key: &VerifyingKey, digest: &[u8; 32], signature: &Signature) -> bool {
        let entry = (key.to_bytes(), *digest, signature.to_bytes());
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache
            .entry(entry)
            .or_insert_with(|| Ed25519Verifier.verify(key, digest, signature))
    }
}

pub struct LedgerShared {
    genesis: Genesis,
    /// Each node's consensus keys.
    keys: Vec<Vec<SigningKey>>,
    /// What waits in every pool at the start: the governance transactions first, then anchors.
    transactions: Vec<v1::SignedTransaction>,
    /// Each node's ledger store, read for forging on its chain and for the checks.
    stores: Vec<Arc<MemoryStore>>,
    /// The keys of honest nodes, whose misbehaviour reports the ledger must take.
    honest_keys: HashSet<[u8; 32]>,
    planned: Vec<PlannedProposal>,
}

impl LedgerShared {
    /// Node `node`'s committed ledger, opened afresh (so that its membership is the current one).
    fn ledger_of(&self, node: usize) -> Ledger<Arc<MemoryStore>> {
        Ledger::open(self.stores[node].clone(), self.genesis.clone())
            .expect("a simulated ledger reopens")
    }
}

/// The pool and the outside world of a simulated ledger node.
pub struct SimHost {
    ledger: Ledger<FaultyStore>,
    pool: Vec<(TransactionId, v1::SignedTransaction)>,
    reports: Rc<RefCell<Vec<Evidence>>>,
}

impl LedgerHost for SimHost {
    type Store = FaultyStore;

    fn ledger(&self) -> &Ledger<FaultyStore> {
        &self.ledger
    }

    fn select_transactions(&mut self, limits: BlockLimits) -> Vec<v1::SignedTransaction> {
        self.pool
            .iter()
            .take(limits.max_transactions)
            .map(|(_, transaction)| transaction.clone())
            .collect()
    }

    fn admitted(&self, id: &TransactionId, signature: &[u8]) -> bool {
        self.pool
            .iter()
            .any(|(admitted, transaction)| admitted == id && transaction.signature == signature)
    }

    fn drop_transaction(&mut self, id: Option<&TransactionId>) {
        match id {
            Some(id) => self.pool.retain(|(admitted, _)| admitted != id),
            None => self.pool.clear(),
        }
    }

    fn has_waiting_transactions(&self) -> bool {
        !self.pool.is_empty()
    }

    fn committed(&mut self, block: CommittedBlock, _: Clock) {
        self.pool.retain(|(id, _)| {
            !block
                .receipts
                .iter()
                .any(|receipt| receipt.transaction_id == *id)
        });
    }

    fn submit_report(&mut self, report: v1::SignedTransaction) {
        if let Some(id) = varde_ledger::signing::envelope_id(self.ledger.chain_id(), &report) {
            self.pool.push((id, report));
        }
    }
}

/// Varde's ledger application, recording each commit on the simulated disk's chain.
pub struct LedgerSimApp {
    inner: LedgerApplication<SimHost>,
    disk: SharedDisk,
    skip_time_check: bool,
    keep_old_validator_set: bool,
}

impl Application for LedgerSimApp {
    type Executed = varde_ledger::ExecutedBlock;
    type Checked = CheckedBlock;
    type Error = LedgerAppError;

    fn build_block(
        &mut self,
        height: Height,
        clock: Clock,
    ) -> Result<(Block, Self::Executed), LedgerAppError> {
        self.inner.build_block(height, clock)
    }

    fn check_block(
        &self,
        height: Height,
        block: &Block,
        path: BlockPath,
        clock: Clock,
    ) -> Option<CheckedBlock> {
        let clock = if self.skip_time_check {
            Clock {
                unix_ms: i64::MAX / 2,
                ..clock
            }
        } else {
            clock
        };
        self.inner.check_block(height, block, path, clock)
    }

    fn execute_block(
        &mut self,
        height: Height,
        block: &Block,
        checked: CheckedBlock,
    ) -> Result<Option<Self::Executed>, LedgerAppError> {
        self.inner.execute_block(height, block, checked)
    }

    fn commit_block(
        &mut self,
        decision: &Decision,
        executed: Self::Executed,
        clock: Clock,
    ) -> Result<(), LedgerAppError> {
        self.inner.commit_block(decision, executed, clock)?;
        self.disk.borrow_mut().chain.push(decision.clone());
        Ok(())
    }

    fn has_waiting_transactions(&self) -> bool {
        self.inner.has_waiting_transactions()
    }

    fn report_misbehaviour(&mut self, evidence: &Evidence, height: Height, clock: Clock) {
        self.inner
            .host()
            .reports
            .borrow_mut()
            .push(evidence.clone());
        self.inner.report_misbehaviour(evidence, height, clock);
    }

    fn take_validator_change(&mut self) -> Option<ValidatorSet> {
        let change = self.inner.take_validator_change();
        if self.keep_old_validator_set {
            return None;
        }
        change
    }

    fn signing_key_changed(&mut self, key: &SigningKey) {
        self.inner.signing_key_changed(key);
    }
}

impl SimApp for LedgerSimApp {
    type Shared = LedgerShared;
    type Referee = LedgerReferee;

    fn shared(
        chain_id: &str,
        scenario: &Scenario,
        keys: &[Vec<SigningKey>],
        _genesis_set: &ValidatorSet,
        disks: &[SharedDisk],
    ) -> LedgerShared {
        let submitter = derived_key(scenario.seed, "submitter");
        let genesis = genesis_of(chain_id, scenario, keys, &submitter);
        let custodian = organisation(scenario.validator_count).as_str().to_owned();
        let stores: Vec<Arc<MemoryStore>> = disks
            .iter()
            .map(|disk| disk.borrow().store.clone())
            .collect();
        for store in &stores {
            Ledger::open(store.clone(), genesis.clone()).expect("a fresh simulated ledger opens");
        }
        let (mut transactions, planned) = match &scenario.governance {
            Some(plan) => governance_transactions(chain_id, plan, scenario.validator_count, keys),
            None => (Vec::new(), Vec::new()),
        };
        transactions.extend(anchors(chain_id, &custodian, &submitter, scenario.seed));
        let honest_keys = keys
            .iter()
            .enumerate()
            .filter(|(node, _)| scenario.strategy_of(*node).is_none())
            .flat_map(|(_, node_keys)| node_keys.iter())
            .map(|key| key.verifying_key().to_bytes())
            .collect();
        LedgerShared {
            genesis,
            keys: keys.to_vec(),
            transactions,
            stores,
            honest_keys,
            planned,
        }
    }

    /// Signs with the key of the node's that its ledger's membership names as a validator (a
    /// rotation may have taken effect while it was down), else with its first.
    fn open(setup: Setup<'_, LedgerShared>) -> Self {
        let store = FaultyStore {
            inner: setup.disk.borrow().store.clone(),
            fuse: setup.fuse,
        };
        let ledger = Ledger::open(store, setup.shared.genesis.clone())
            .expect("the simulated ledger reopens");
        let chain_id = ledger.chain_id().to_owned();
        let validator_keys = ledger.membership().validator_keys();
        let key = setup
            .keys
            .iter()
            .find(|key| validator_keys.contains(&key.verifying_key().to_bytes()))
            .unwrap_or(&setup.keys[0])
            .clone();
        let pool = setup
            .shared
            .transactions
            .iter()
            .filter_map(|transaction| {
                Some((
                    varde_ledger::signing::envelope_id(&chain_id, transaction)?,
                    transaction.clone(),
                ))
            })
            .collect();
        let host = SimHost {
            ledger,
            pool,
            reports: setup.reports,
        };
        Self {
            inner: LedgerApplication::new(host, key, LEDGER_LIMITS),
            disk: setup.disk,
            skip_time_check: setup.skip_time_check,
            keep_old_validator_set: setup.keep_old_validator_set,
        }
    }

    fn validators(&self, _genesis: &ValidatorSet) -> ValidatorSet {
        validators_of(&self.inner.host().ledger.membership())
            .expect("the simulated membership names Ed25519 keys")
    }

    fn forge(
        shared: &LedgerShared,
        base: usize,
        proposer: ValidatorIndex,
        height: Height,
        _round: Round,
        nonce: u64,
        time_unix_ms: i64,
        oversized: bool,
    ) -> Block {
        let count = if oversized {
            LEDGER_LIMITS.max_transactions + 1 + (nonce % 3) as usize
        } else {
            (nonce % (LEDGER_LIMITS.max_transactions as u64 + 1)) as usize
        };
        let transactions = shared.transactions.iter().take(count).cloned().collect();
        let proposer_key = shared.keys[proposer as usize][0].verifying_key().to_bytes();
        // The nonce moves the time by a millisecond or so, so that forged blocks differ.
        let time = time_unix_ms.saturating_add((nonce % 7) as i64);
        match shared
            .ledger_of(base)
            .execute_block(proposer_key, time, transactions)
        {
            Ok(executed) if executed.head.height == height => Block {
                id: BlockId(executed.block_hash),
                payload: executed.block.encode_to_vec().into(),
            },
            // The base is not at this height, or the time went back: a block that cannot hold.
            _ => simple_block(height, proposer, 0, nonce, time, 0),
        }
    }

    fn referee(shared: &LedgerShared) -> LedgerReferee {
        let ledger = Ledger::open(MemoryStore::new(), shared.genesis.clone())
            .expect("the referee's ledger opens");
        let genesis_set =
            validators_of(&ledger.membership()).expect("the simulated genesis names Ed25519 keys");
        LedgerReferee {
            ledger,
            history: vec![(1, genesis_set)],
            honest_keys: shared.honest_keys.clone(),
            planned: shared.planned.clone(),
            added_validator_misbehaviour: 0,
        }
    }

    fn set_history_of(shared: &LedgerShared, node: usize) -> Option<Vec<(Height, Vec<[u8; 32]>)>> {
        let records = varde_ledger::governance::validator_sets(&*shared.stores[node])
            .expect("the simulated store reads");
        Some(
            records
                .into_iter()
                .map(|record| (record.from_height, record.keys))
                .collect(),
        )
    }

    fn light_client_problems(shared: &LedgerShared, node: usize) -> Vec<String> {
        match follow_from_genesis(&shared.genesis, &shared.ledger_of(node)) {
            Ok(()) => Vec::new(),
            Err(problem) => vec![problem],
        }
    }
}

/// What a light client that trusts `genesis` alone does with a node's chain: checks its
/// validator-set history, follows each change with the certified header before it, and then
/// verifies the header of the node's head.
fn follow_from_genesis(genesis: &Genesis, ledger: &Ledger<Arc<MemoryStore>>) -> Result<(), String> {
    let Some(head) = ledger.head().map_err(|error| error.to_string())? else {
        return Ok(());
    };
    let served = proof::validator_set_history(ledger).map_err(|error| error.to_string())?;
    let mut light = LightClient::from_genesis(genesis).map_err(|error| error.to_string())?;
    let to_follow = light
        .check_validator_sets(&served)
        .map_err(|error| format!("its history: {error}"))?;
    let header = |height: Height| {
        proof::certified_header(ledger, height)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("no certified header at height {height}"))
    };
    for entry in &to_follow {
        let before = header(entry.from_height - 1)?;
        light
            .follow_set_change(entry, &before)
            .map_err(|error| format!("the change at height {}: {error}", entry.from_height))?;
    }
    light
        .verify_header(&header(head.height)?)
        .map_err(|error| format!("its head at height {}: {error}", head.height))?;
    Ok(())
}

/// Re-executes every committed block on a ledger of its own, after checking its rules, and keeps
/// the validator-set history the chain gives.
pub struct LedgerReferee {
    ledger: Ledger<MemoryStore>,
    history: Vec<(Height, ValidatorSet)>,
    honest_keys: HashSet<[u8; 32]>,
    planned: Vec<PlannedProposal>,
    added_validator_misbehaviour: usize,
}

impl LedgerReferee {
    /// A misbehaviour report by an honest node that the ledger refused as invalid evidence: the
    /// engine's evidence must verify against the set of its height.
    fn refused_evidence(
        &self,
        transaction: &v1::SignedTransaction,
        outcome: &Outcome,
    ) -> Option<String> {
        let Outcome::Rejected {
            reason: RejectionReason::InvalidEvidence,
            detail,
        } = outcome
        else {
            return None;
        };
        let signer = <[u8; 32]>::try_from(transaction.signer_public_key.as_slice()).ok()?;
        self.honest_keys
            .contains(&signer)
            .then(|| format!("the ledger refused an honest node's misbehaviour report: {detail}"))
    }

    /// Whether `transaction`, applied, recorded misbehaviour of a validator outside the genesis
    /// set.
    fn records_added_validator(&self, transaction: &v1::SignedTransaction) -> bool {
        let Ok(body) = v1::TransactionBody::decode(transaction.body.as_slice()) else {
            return false;
        };
        let Some(v1::transaction_body::Action::ReportMisbehaviour(report)) = body.action else {
            return false;
        };
        let Some(Ok(evidence)) = report
            .evidence
            .as_ref()
            .map(varde_ledger::consensus_wire::evidence_from_wire)
        else {
            return false;
        };
        let set_at = |height: Height| {
            &self
                .history
                .iter()
                .rev()
                .find(|(from, _)| *from <= height)
                .unwrap_or(&self.history[0])
                .1
        };
        let genesis = &self.history[0].1;
        set_at(evidence.height())
            .key(evidence.validator())
            .is_some_and(|key| genesis.index_of(key).is_none())
    }
}

impl Referee for LedgerReferee {
    fn problems(&mut self, decision: &Decision, latest_unix_ms: i64) -> Vec<String> {
        let Ok(decoded) = varde_ledger::ledger::decode_block(&decision.block.payload) else {
            return vec!["not a ledger block".to_owned()];
        };
        let Some(header) = decoded.header.clone() else {
            return vec!["no header".to_owned()];
        };
        let mut problems = Vec::new();
        let proposer = <[u8; 32]>::try_from(header.proposer.as_slice()).unwrap_or([0; 32]);
        if header.height != decision.height {
            problems.push(format!("header height {}", header.height));
        }
        if !self
            .ledger
            .membership()
            .validator_keys()
            .contains(&proposer)
        {
            problems.push("proposed by no validator of its height".to_owned());
        }
        if !LEDGER_LIMITS.admit(&decoded.transactions) {
            problems.push("over the block limits".to_owned());
        }
        if header.time_unix_ms > latest_unix_ms.saturating_add(BLOCK_TIME_DRIFT_MAX_MS) {
            problems.push("dated too far ahead".to_owned());
        }
        let transactions = decoded.transactions.clone();
        match self
            .ledger
            .execute_block(proposer, header.time_unix_ms, decoded.transactions)
        {
            Ok(executed)
                if executed.block_hash == decision.block.id.0
                    && executed.block.header.as_ref() == Some(&header) =>
            {
                for (transaction, receipt) in transactions.iter().zip(&executed.receipts) {
                    problems.extend(self.refused_evidence(transaction, &receipt.outcome));
                    if receipt.is_applied() && self.records_added_validator(transaction) {
                        self.added_validator_misbehaviour += 1;
                    }
                }
                let next_set = executed
                    .next_membership()
                    .map(|membership| validators_of(membership));
                match self.ledger.commit(executed) {
                    Ok(_) => match next_set {
                        Some(Ok(set))
                            if self.history.last().is_some_and(|(_, last)| *last != set) =>
                        {
                            self.history.push((decision.height + 1, set));
                        }
                        Some(Err(error)) => {
                            problems.push(format!("governance gave an unusable set: {error}"));
                        }
                        _ => {}
                    },
                    Err(error) => problems.push(format!("the referee cannot commit it: {error}")),
                }
            }
            Ok(_) => problems.push("re-execution gives another block".to_owned()),
            Err(error) => problems.push(format!("re-execution fails: {error}")),
        }
        problems
    }

    fn set_history(&self) -> &[(Height, ValidatorSet)] {
        &self.history
    }

    fn added_validator_misbehaviour_recorded(&self) -> usize {
        self.added_validator_misbehaviour
    }

    fn plan_problems(&self) -> Vec<(Height, String)> {
        let height = self.ledger.height();
        self.planned
            .iter()
            .filter(|planned| height + 1 >= planned.effective_height)
            .filter_map(|planned| {
                let proposal = self.ledger.proposal(&planned.id).ok().flatten();
                let status = proposal.as_ref().map(|proposal| proposal.status_at(height));
                if status == Some(ProposalStatus::Enacted) {
                    return None;
                }
                let failure = proposal
                    .map(|proposal| proposal.failure)
                    .filter(|failure| !failure.is_empty())
                    .map(|failure| format!(": {failure}"))
                    .unwrap_or_default();
                Some((
                    planned.effective_height,
                    format!(
                        "the planned change \"{}\" was not enacted (its proposal is {}){failure}",
                        planned.description,
                        status.map_or("not on the ledger".to_owned(), |status| format!(
                            "{status:?}"
                        ))
                    ),
                ))
            })
            .collect()
    }
}
