//! The applications the simulated validators run through the node's own core: a light one
//! ([`SimpleApp`], most seeds) and Varde's real ledger over the in-memory store ([`LedgerSimApp`],
//! a share of seeds). Both hold blocks to the same kinds of rules (height, proposer, limits, time
//! against the node's clock); each comes with a referee that judges committed blocks for the
//! checker, and a forger that Byzantine validators build valid-looking blocks with.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use sha2::{Digest, Sha256};
use varde_consensus::{
    Block, BlockId, Decision, Ed25519Verifier, Evidence, Height, Round, Signature,
    SignatureVerifier, SigningKey, ValidatorIndex, VerifyingKey,
};
use varde_ledger::Ledger;
use varde_ledger::membership::{Genesis, Institution, Role};
use varde_ledger::signing::TransactionId;
use varde_node_core::{
    Application, BLOCK_TIME_DRIFT_MAX_MS, BlockLimits, BlockPath, CheckedBlock, Clock,
    CommittedBlock, LedgerAppError, LedgerApplication, LedgerHost,
};
use varde_proto::v1;
use varde_storage::MemoryStore;

use super::faults::{Crashed, FaultyStore, Fuse, SharedDisk};

/// Unix time at virtual time zero.
pub const SIM_EPOCH_UNIX_MS: i64 = 1_800_000_000_000;

/// What a node's application is opened with.
pub struct Setup<'a, S> {
    pub index: usize,
    pub key: &'a SigningKey,
    pub disk: SharedDisk,
    pub fuse: Fuse,
    pub shared: &'a S,
    /// Evidence this node reported, for the checker.
    pub reports: Rc<RefCell<Vec<Evidence>>>,
    /// A broken rule: proposals are not held to this node's clock.
    pub skip_time_check: bool,
}

/// An application the simulator can run, forge blocks of, and referee.
pub trait SimApp: Application + Sized {
    /// What a run's nodes share: the genesis, the validator keys.
    type Shared;
    type Referee: Referee;

    fn shared(chain_id: &str, seed: u64, keys: &[SigningKey], disks: &[SharedDisk])
    -> Self::Shared;

    fn open(setup: Setup<'_, Self::Shared>) -> Self;

    /// A valid-looking block for `height` by `proposer`, on the chain of node `base` (which must
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
    validators: usize,
    disks: Vec<SharedDisk>,
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

    fn shared(_: &str, _: u64, keys: &[SigningKey], disks: &[SharedDisk]) -> SimpleShared {
        SimpleShared {
            validators: keys.len(),
            disks: disks.to_vec(),
        }
    }

    fn open(setup: Setup<'_, SimpleShared>) -> Self {
        let built = setup.disk.borrow().chain.len() as u64 * 1_000;
        Self {
            index: setup.index,
            validators: setup.shared.validators,
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

    fn referee(shared: &SimpleShared) -> SimpleReferee {
        let _ = &shared.disks;
        SimpleReferee {
            validators: shared.validators,
            parent_time_unix_ms: SIM_EPOCH_UNIX_MS,
        }
    }
}

pub struct SimpleReferee {
    validators: usize,
    parent_time_unix_ms: i64,
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

fn genesis_of(chain_id: &str, keys: &[SigningKey], submitter: &SigningKey) -> Genesis {
    let mut institutions: Vec<Institution> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| Institution {
            org_number: varde_ledger::identifiers::OrgNumber::parse(&org_number(index))
                .expect("a valid organisation number"),
            name: format!("Simulated health trust {index}"),
            roles: vec![Role::Validator],
            public_keys: Vec::new(),
            validator_key: Some(key.verifying_key().to_bytes()),
        })
        .collect();
    institutions.push(Institution {
        org_number: varde_ledger::identifiers::OrgNumber::parse(&org_number(keys.len()))
            .expect("a valid organisation number"),
        name: "Simulated hospital".to_owned(),
        roles: vec![Role::Submitter],
        public_keys: vec![submitter.verifying_key().to_bytes()],
        validator_key: None,
    });
    Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time_unix_ms: SIM_EPOCH_UNIX_MS,
        institutions,
    }
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
    keys: Vec<SigningKey>,
    transactions: Vec<v1::SignedTransaction>,
    /// Each node's committed ledger, read-only, for forging on its chain.
    views: Vec<Ledger<Arc<MemoryStore>>>,
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
}

impl SimApp for LedgerSimApp {
    type Shared = LedgerShared;
    type Referee = LedgerReferee;

    fn shared(
        chain_id: &str,
        seed: u64,
        keys: &[SigningKey],
        disks: &[SharedDisk],
    ) -> LedgerShared {
        let submitter =
            SigningKey::from_bytes(&Sha256::digest(format!("varde-sim/submitter/{seed}")).into());
        let genesis = genesis_of(chain_id, keys, &submitter);
        let custodian = genesis
            .institutions
            .last()
            .expect("the submitter")
            .org_number
            .as_str()
            .to_owned();
        let views = disks
            .iter()
            .map(|disk| {
                Ledger::open(disk.borrow().store.clone(), genesis.clone())
                    .expect("a fresh simulated ledger opens")
            })
            .collect();
        LedgerShared {
            transactions: anchors(chain_id, &custodian, &submitter, seed),
            genesis,
            keys: keys.to_vec(),
            views,
        }
    }

    fn open(setup: Setup<'_, LedgerShared>) -> Self {
        let store = FaultyStore {
            inner: setup.disk.borrow().store.clone(),
            fuse: setup.fuse,
        };
        let ledger = Ledger::open(store, setup.shared.genesis.clone())
            .expect("the simulated ledger reopens");
        let chain_id = ledger.chain_id().to_owned();
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
            inner: LedgerApplication::new(host, setup.key.clone(), LEDGER_LIMITS),
            disk: setup.disk,
            skip_time_check: setup.skip_time_check,
        }
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
        let proposer_key = shared.keys[proposer as usize].verifying_key().to_bytes();
        // The nonce moves the time by a millisecond or so, so that forged blocks differ.
        let time = time_unix_ms.saturating_add((nonce % 7) as i64);
        match shared.views[base].execute_block(proposer_key, time, transactions) {
            Ok(executed) if executed.head.height == height => Block {
                id: BlockId(executed.block_hash),
                payload: executed.block.encode_to_vec().into(),
            },
            // The base is not at this height, or the time went back: a block that cannot hold.
            _ => simple_block(height, proposer, 0, nonce, time, 0),
        }
    }

    fn referee(shared: &LedgerShared) -> LedgerReferee {
        LedgerReferee {
            ledger: Ledger::open(MemoryStore::new(), shared.genesis.clone())
                .expect("the referee's ledger opens"),
            validator_keys: shared
                .keys
                .iter()
                .map(|key| key.verifying_key().to_bytes())
                .collect(),
        }
    }
}

/// Re-executes every committed block on a ledger of its own, after checking its rules.
pub struct LedgerReferee {
    ledger: Ledger<MemoryStore>,
    validator_keys: Vec<[u8; 32]>,
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
        if !self.validator_keys.contains(&proposer) {
            problems.push("proposed by no validator".to_owned());
        }
        if !LEDGER_LIMITS.admit(&decoded.transactions) {
            problems.push("over the block limits".to_owned());
        }
        if header.time_unix_ms > latest_unix_ms.saturating_add(BLOCK_TIME_DRIFT_MAX_MS) {
            problems.push("dated too far ahead".to_owned());
        }
        match self
            .ledger
            .execute_block(proposer, header.time_unix_ms, decoded.transactions)
        {
            Ok(executed)
                if executed.block_hash == decision.block.id.0
                    && executed.block.header.as_ref() == Some(&header) =>
            {
                if let Err(error) = self.ledger.commit(executed) {
                    problems.push(format!("the referee cannot commit it: {error}"));
                }
            }
            Ok(_) => problems.push("re-execution gives another block".to_owned()),
            Err(error) => problems.push(format!("re-execution fails: {error}")),
        }
        problems
    }
}
