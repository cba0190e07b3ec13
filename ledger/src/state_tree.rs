//! The state tree: a sparse Merkle tree over 256-bit keys that commits to the ledger's current
//! records, grants and patient blocks, with proofs of presence and of absence
//! (docs/decisions/0006-state-tree.md).
//!
//! Shape. Each leaf sits at the shallowest depth where its key's path is its own; a subtree with
//! no leaf hashes to 32 zero bytes; a subtree with one leaf hashes to that leaf; any other subtree
//! is an interior node of its two halves. So the root depends on the set of (key, value hash)
//! pairs alone, never on the order of updates.
//!
//! leaf = SHA-256(0x02 || key || value hash); interior = SHA-256(0x03 || left || right); the tags
//! differ from the ledger tree's (0x00, 0x01), so neither tree's hashes pass for the other's.
//!
//! Storage (`Column::StateTree`): the node at depth d on a key's path under depth (2 bytes BE) ||
//! the first ceil(d/8) bytes of the key, the bits below depth d cleared; value 0x02 || key ||
//! value hash, or 0x03 || left || right. Updates rewrite only the nodes on changed paths; the
//! tree holds the current state, so proofs are served at the head.

use sha2::{Digest, Sha256};
use varde_storage::{Column, Store};

use crate::state::{StateError, StateView};

/// A state key or a value hash.
pub type Hash = [u8; 32];

/// The hash of an empty subtree.
pub const EMPTY: Hash = [0u8; 32];

const LEAF_TAG: u8 = 0x02;
const INTERIOR_TAG: u8 = 0x03;
/// Key length in bits: the deepest a leaf can sit.
pub const KEY_BITS: usize = 256;

pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_TAG]);
    hasher.update(key);
    hasher.update(value_hash);
    hasher.finalize().into()
}

pub fn interior_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([INTERIOR_TAG]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Bit `depth` of `key`, the most significant bit first.
fn bit(key: &Hash, depth: usize) -> bool {
    key[depth / 8] >> (7 - depth % 8) & 1 == 1
}

/// `key` with bit `depth` set to `value`.
fn with_bit(mut key: Hash, depth: usize, value: bool) -> Hash {
    let mask = 1u8 << (7 - depth % 8);
    if value {
        key[depth / 8] |= mask;
    } else {
        key[depth / 8] &= !mask;
    }
    key
}

/// True when `a` and `b` agree on their first `depth` bits.
fn share_prefix(a: &Hash, b: &Hash, depth: usize) -> bool {
    (0..depth).all(|index| bit(a, index) == bit(b, index))
}

fn node_key(depth: usize, path: &Hash) -> Vec<u8> {
    let bytes = depth.div_ceil(8);
    let mut key = Vec::with_capacity(2 + bytes);
    key.extend_from_slice(&(depth as u16).to_be_bytes());
    key.extend_from_slice(&path[..bytes]);
    if depth % 8 != 0 {
        let last = key.len() - 1;
        key[last] &= 0xFFu8 << (8 - depth % 8);
    }
    key
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Leaf { key: Hash, value: Hash },
    Interior { left: Hash, right: Hash },
}

impl Node {
    fn encode(&self) -> Vec<u8> {
        let (tag, first, second) = match self {
            Node::Leaf { key, value } => (LEAF_TAG, key, value),
            Node::Interior { left, right } => (INTERIOR_TAG, left, right),
        };
        let mut bytes = Vec::with_capacity(65);
        bytes.push(tag);
        bytes.extend_from_slice(first);
        bytes.extend_from_slice(second);
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Node, StateError> {
        let corrupt = || StateError::Corrupt {
            column: Column::StateTree,
            detail: format!("a state tree node of {} bytes does not decode", bytes.len()),
        };
        if bytes.len() != 65 {
            return Err(corrupt());
        }
        let first: Hash = bytes[1..33].try_into().expect("32 bytes");
        let second: Hash = bytes[33..].try_into().expect("32 bytes");
        match bytes[0] {
            LEAF_TAG => Ok(Node::Leaf {
                key: first,
                value: second,
            }),
            INTERIOR_TAG => Ok(Node::Interior {
                left: first,
                right: second,
            }),
            _ => Err(corrupt()),
        }
    }
}

/// A subtree after an update, as its parent needs to see it.
#[derive(Debug, Clone, Copy)]
enum Subtree {
    Empty,
    /// One leaf, stored at the subtree's own depth.
    Leaf {
        key: Hash,
        value: Hash,
    },
    Interior(Hash),
}

impl Subtree {
    fn hash(&self) -> Hash {
        match self {
            Subtree::Empty => EMPTY,
            Subtree::Leaf { key, value } => leaf_hash(key, value),
            Subtree::Interior(hash) => *hash,
        }
    }
}

fn load<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    depth: usize,
    path: &Hash,
) -> Result<Option<Node>, StateError> {
    view.get(Column::StateTree, &node_key(depth, path))?
        .map(|bytes| Node::decode(&bytes))
        .transpose()
}

fn missing(depth: usize) -> StateError {
    StateError::Corrupt {
        column: Column::StateTree,
        detail: format!("a state tree node at depth {depth} is missing below a non-empty hash"),
    }
}

/// The root of the stored tree.
pub fn root<S: Store + ?Sized>(view: &StateView<'_, S>) -> Result<Hash, StateError> {
    Ok(match load(view, 0, &EMPTY)? {
        None => EMPTY,
        Some(Node::Leaf { key, value }) => leaf_hash(&key, &value),
        Some(Node::Interior { left, right }) => interior_hash(&left, &right),
    })
}

/// Sets (`Some(value hash)`) or removes (`None`) each key and returns the new root. `changes` must
/// be sorted by key with each key once.
pub fn update<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    changes: &[(Hash, Option<Hash>)],
) -> Result<Hash, StateError> {
    debug_assert!(changes.windows(2).all(|pair| pair[0].0 < pair[1].0));
    if changes.is_empty() {
        return root(view);
    }
    let current = load(view, 0, &EMPTY)?;
    Ok(update_subtree(view, 0, current, changes)?.hash())
}

/// Applies `changes` (all on this subtree's path) to the subtree at `depth` holding `current`.
fn update_subtree<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    depth: usize,
    current: Option<Node>,
    changes: &[(Hash, Option<Hash>)],
) -> Result<Subtree, StateError> {
    let path = changes[0].0;
    match current {
        None => {
            let leaves: Vec<(Hash, Hash)> = changes
                .iter()
                .filter_map(|(key, value)| value.map(|value| (*key, value)))
                .collect();
            build(view, depth, &path, &leaves)
        }
        Some(Node::Leaf { key, value }) => {
            let mut leaves: Vec<(Hash, Hash)> = changes
                .iter()
                .filter_map(|(key, value)| value.map(|value| (*key, value)))
                .collect();
            if changes
                .binary_search_by(|(changed, _)| changed.cmp(&key))
                .is_err()
            {
                let at = leaves.partition_point(|(other, _)| *other < key);
                leaves.insert(at, (key, value));
            }
            build(view, depth, &path, &leaves)
        }
        Some(Node::Interior { left, right }) => {
            let split = changes.partition_point(|(key, _)| !bit(key, depth));
            let (left_changes, right_changes) = changes.split_at(split);
            let left = child(view, depth, &path, false, left, left_changes)?;
            let right = child(view, depth, &path, true, right, right_changes)?;
            join(view, depth, &path, left, right)
        }
    }
}

/// One half of an interior node at `depth`, updated with the changes on its side.
fn child<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    depth: usize,
    path: &Hash,
    side: bool,
    hash: Hash,
    changes: &[(Hash, Option<Hash>)],
) -> Result<Subtree, StateError> {
    let child_path = with_bit(*path, depth, side);
    let stored = if hash == EMPTY {
        None
    } else {
        Some(load(view, depth + 1, &child_path)?.ok_or_else(|| missing(depth + 1))?)
    };
    if changes.is_empty() {
        return Ok(match stored {
            None => Subtree::Empty,
            Some(Node::Leaf { key, value }) => Subtree::Leaf { key, value },
            Some(Node::Interior { .. }) => Subtree::Interior(hash),
        });
    }
    update_subtree(view, depth + 1, stored, changes)
}

/// The subtree at `depth` made of its two updated halves, stored in canonical shape: a lone leaf
/// moves up to this depth.
fn join<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    depth: usize,
    path: &Hash,
    left: Subtree,
    right: Subtree,
) -> Result<Subtree, StateError> {
    let here = node_key(depth, path);
    Ok(match (left, right) {
        (Subtree::Empty, Subtree::Empty) => {
            view.delete(Column::StateTree, here);
            Subtree::Empty
        }
        (Subtree::Leaf { key, value }, Subtree::Empty)
        | (Subtree::Empty, Subtree::Leaf { key, value }) => {
            view.delete(Column::StateTree, node_key(depth + 1, &key));
            view.put(Column::StateTree, here, Node::Leaf { key, value }.encode());
            Subtree::Leaf { key, value }
        }
        (left, right) => {
            let (left, right) = (left.hash(), right.hash());
            view.put(
                Column::StateTree,
                here,
                Node::Interior { left, right }.encode(),
            );
            Subtree::Interior(interior_hash(&left, &right))
        }
    })
}

/// Stores the subtree at `depth` holding exactly `leaves` (sorted, on this path), replacing what
/// was stored at this depth; deeper nodes on the path are new.
fn build<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    depth: usize,
    path: &Hash,
    leaves: &[(Hash, Hash)],
) -> Result<Subtree, StateError> {
    let here = node_key(depth, path);
    match leaves {
        [] => {
            view.delete(Column::StateTree, here);
            Ok(Subtree::Empty)
        }
        [(key, value)] => {
            view.put(
                Column::StateTree,
                here,
                Node::Leaf {
                    key: *key,
                    value: *value,
                }
                .encode(),
            );
            Ok(Subtree::Leaf {
                key: *key,
                value: *value,
            })
        }
        _ => {
            let split = leaves.partition_point(|(key, _)| !bit(key, depth));
            let (left, right) = leaves.split_at(split);
            let left = build_half(view, depth + 1, left)?;
            let right = build_half(view, depth + 1, right)?;
            let (left, right) = (left.hash(), right.hash());
            view.put(
                Column::StateTree,
                here,
                Node::Interior { left, right }.encode(),
            );
            Ok(Subtree::Interior(interior_hash(&left, &right)))
        }
    }
}

fn build_half<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    depth: usize,
    leaves: &[(Hash, Hash)],
) -> Result<Subtree, StateError> {
    match leaves.first() {
        None => Ok(Subtree::Empty),
        Some((path, _)) => {
            let path = *path;
            build(view, depth, &path, leaves)
        }
    }
}

/// Where a key's path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// An empty subtree: the key is absent.
    Empty,
    /// A leaf: the key itself (present with this value hash), or another key that shares the path
    /// so far (the key is absent).
    Leaf { key: Hash, value_hash: Hash },
}

/// A proof for one key: the siblings on its path from the root down, and where the path ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    pub siblings: Vec<Hash>,
    pub terminal: Terminal,
}

/// The proof for `key` in the stored tree.
pub fn prove<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    key: &Hash,
) -> Result<StateProof, StateError> {
    let mut siblings = Vec::new();
    let mut node = load(view, 0, key)?;
    let mut depth = 0;
    loop {
        match node {
            None => {
                return Ok(StateProof {
                    siblings,
                    terminal: Terminal::Empty,
                });
            }
            Some(Node::Leaf { key, value }) => {
                return Ok(StateProof {
                    siblings,
                    terminal: Terminal::Leaf {
                        key,
                        value_hash: value,
                    },
                });
            }
            Some(Node::Interior { left, right }) => {
                let (next, sibling) = if bit(key, depth) {
                    (right, left)
                } else {
                    (left, right)
                };
                siblings.push(sibling);
                depth += 1;
                if next == EMPTY {
                    node = None;
                } else {
                    node = Some(load(view, depth, key)?.ok_or_else(|| missing(depth))?);
                }
            }
        }
    }
}

/// Why a state proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    #[error("the proof's path is {0} levels deep; a key has {KEY_BITS} bits")]
    TooDeep(usize),
    #[error("the proof's last sibling is empty, so its path would end higher up")]
    NotCanonical,
    #[error("the proof ends at a leaf whose key does not share the path")]
    LeafOffPath,
    #[error("the proof does not lead to the state root")]
    WrongRoot,
}

/// Checks `proof` for `key` against `root`: `Ok(Some(value hash))` when the key is present,
/// `Ok(None)` when it is proven absent.
pub fn verify(
    root: &Hash,
    key: &Hash,
    proof: &StateProof,
) -> Result<Option<Hash>, StateProofError> {
    let depth = proof.siblings.len();
    if depth > KEY_BITS {
        return Err(StateProofError::TooDeep(depth));
    }
    // In the canonical shape a path never ends beside an empty sibling: that leaf, or that
    // emptiness, would sit one level up.
    if proof.siblings.last() == Some(&EMPTY) {
        return Err(StateProofError::NotCanonical);
    }
    let (mut hash, found) = match proof.terminal {
        Terminal::Empty => (EMPTY, None),
        Terminal::Leaf {
            key: leaf_key,
            value_hash,
        } => {
            if !share_prefix(&leaf_key, key, depth) {
                return Err(StateProofError::LeafOffPath);
            }
            let found = (leaf_key == *key).then_some(value_hash);
            (leaf_hash(&leaf_key, &value_hash), found)
        }
    };
    for (level, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, level) {
            interior_hash(sibling, &hash)
        } else {
            interior_hash(&hash, sibling)
        };
    }
    if hash != *root {
        return Err(StateProofError::WrongRoot);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use varde_storage::{MemoryStore, Store};

    use super::*;

    /// The root of a set of leaves by the definition, without storage.
    fn reference_root(leaves: &BTreeMap<Hash, Hash>, depth: usize) -> Hash {
        match leaves.len() {
            0 => EMPTY,
            1 => {
                let (key, value) = leaves.iter().next().unwrap();
                leaf_hash(key, value)
            }
            _ => {
                let (left, right): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    leaves.iter().partition(|(key, _)| !bit(key, depth));
                interior_hash(
                    &reference_root(&left, depth + 1),
                    &reference_root(&right, depth + 1),
                )
            }
        }
    }

    /// The number of nodes of the canonical tree of a set of leaves.
    fn reference_nodes(leaves: &BTreeMap<Hash, Hash>, depth: usize) -> usize {
        match leaves.len() {
            0 => 0,
            1 => 1,
            _ => {
                let (left, right): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    leaves.iter().partition(|(key, _)| !bit(key, depth));
                1 + reference_nodes(&left, depth + 1) + reference_nodes(&right, depth + 1)
            }
        }
    }

    fn key(seed: u16) -> Hash {
        Sha256::digest(seed.to_be_bytes()).into()
    }

    fn apply(store: &MemoryStore, changes: &BTreeMap<Hash, Option<Hash>>) -> Hash {
        let mut view = StateView::new(store);
        let changes: Vec<_> = changes.iter().map(|(key, value)| (*key, *value)).collect();
        let root = update(&mut view, &changes).unwrap();
        store.write(view.into_batch()).unwrap();
        root
    }

    proptest! {
        // After any sequence of batches of sets and removals, the stored root is the reference
        // root of the resulting set, each key's proof verifies to its value or its absence, and
        // the store holds exactly the nodes of the canonical shape (no leftovers).
        #[test]
        fn updates_keep_the_canonical_tree(
            batches in prop::collection::vec(
                prop::collection::btree_map(0u16..64, prop::option::of(0u8..4), 0..12),
                1..8,
            )
        ) {
            let store = MemoryStore::new();
            let mut model: BTreeMap<Hash, Hash> = BTreeMap::new();
            for batch in &batches {
                let changes: BTreeMap<Hash, Option<Hash>> = batch
                    .iter()
                    .map(|(seed, value)| (key(*seed), value.map(|value| [value; 32])))
                    .collect();
                for (key, value) in &changes {
                    match value {
                        Some(value) => model.insert(*key, *value),
                        None => model.remove(key),
                    };
                }
                let root = apply(&store, &changes);
                prop_assert_eq!(root, reference_root(&model, 0));
                let view = StateView::new(&store);
                prop_assert_eq!(super::root(&view).unwrap(), root);
                for seed in 0u16..64 {
                    let proof = prove(&view, &key(seed)).unwrap();
                    prop_assert_eq!(
                        verify(&root, &key(seed), &proof).unwrap(),
                        model.get(&key(seed)).copied()
                    );
                }
                let stored = store.scan_prefix(Column::StateTree, b"", None, 10_000).unwrap().len();
                prop_assert_eq!(stored, reference_nodes(&model, 0));
            }
        }
    }

    // Keys that differ only in their last bits put leaves 256 levels deep; removing them folds the
    // long path back up.
    #[test]
    fn keys_that_share_all_but_their_last_bits() {
        let store = MemoryStore::new();
        let deep = |last: u8| {
            let mut key = [0u8; 32];
            key[31] = last;
            key
        };
        let mut model = BTreeMap::new();
        for (round, keys) in [vec![0u8, 1, 2, 3, 0x80], vec![1, 2], vec![0, 3]]
            .iter()
            .enumerate()
        {
            let changes: BTreeMap<Hash, Option<Hash>> = keys
                .iter()
                .map(|last| (deep(*last), (round == 0).then_some([*last; 32])))
                .collect();
            for (key, value) in &changes {
                match value {
                    Some(value) => model.insert(*key, *value),
                    None => model.remove(key),
                };
            }
            let root = apply(&store, &changes);
            assert_eq!(root, reference_root(&model, 0));
            let view = StateView::new(&store);
            for last in [0u8, 1, 2, 3, 0x80, 4] {
                let proof = prove(&view, &deep(last)).unwrap();
                assert_eq!(
                    verify(&root, &deep(last), &proof).unwrap(),
                    model.get(&deep(last)).copied()
                );
            }
            let stored = store
                .scan_prefix(Column::StateTree, b"", None, 10_000)
                .unwrap();
            assert_eq!(stored.len(), reference_nodes(&model, 0));
        }
        assert_eq!(model.len(), 1);
    }

    #[test]
    fn a_changed_proof_or_value_does_not_verify() {
        let store = MemoryStore::new();
        let changes: BTreeMap<Hash, Option<Hash>> = (0..20)
            .map(|seed| (key(seed), Some([seed as u8; 32])))
            .collect();
        let root = apply(&store, &changes);
        let view = StateView::new(&store);
        let proof = prove(&view, &key(3)).unwrap();
        assert_eq!(verify(&root, &key(3), &proof), Ok(Some([3; 32])));
        let mut bent = proof.clone();
        bent.siblings[0][0] ^= 1;
        assert_eq!(
            verify(&root, &key(3), &bent),
            Err(StateProofError::WrongRoot)
        );
        let mut other_value = proof.clone();
        other_value.terminal = Terminal::Leaf {
            key: key(3),
            value_hash: [4; 32],
        };
        assert_eq!(
            verify(&root, &key(3), &other_value),
            Err(StateProofError::WrongRoot)
        );
        // Another key's presence proof is no proof for this key.
        assert!(verify(&root, &key(4), &proof).is_err());
        // An absent key is proven absent, and a claim of its presence fails.
        let absent = key(999);
        let proof = prove(&view, &absent).unwrap();
        assert_eq!(verify(&root, &absent, &proof), Ok(None));
        let mut claimed = proof.clone();
        claimed.terminal = Terminal::Leaf {
            key: absent,
            value_hash: [1; 32],
        };
        assert!(verify(&root, &absent, &claimed).is_err());
        // The empty tree proves every key absent.
        assert_eq!(
            verify(
                &EMPTY,
                &absent,
                &StateProof {
                    siblings: vec![],
                    terminal: Terminal::Empty
                }
            ),
            Ok(None)
        );
    }
}
