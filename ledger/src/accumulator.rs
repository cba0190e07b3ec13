//! The ledger accumulator: an RFC 9162 (RFC 6962) Merkle tree over every transaction since
//! genesis, with inclusion and consistency proofs.
//!
//! leaf hash = SHA-256(0x00 || leaf data), where the ledger's leaf data is the transaction id and
//! its receipt's hash ([`crate::proof::ledger_leaf`]); interior = SHA-256(0x01 || left || right); the root
//! of n leaves splits at the largest power of two below n (RFC 6962 §2.1); the empty tree's root is
//! SHA-256 of nothing. The store keeps every complete subtree's hash under `Column::Accumulator`:
//! key = level (1 byte) || index at that level (8 bytes BE), plus `size` (8 bytes BE), and the tree
//! size after each block: key = `height` || height (8 bytes BE), so that a transaction's leaf index
//! is one read away and its proof costs O(log n) reads.

use sha2::{Digest, Sha256};
use varde_storage::{Column, Store};

use crate::state::{StateError, StateView};

const SIZE_KEY: &[u8] = b"size";
const HEIGHT_PREFIX: &[u8] = b"height";

pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(leaf);
    hasher.finalize().into()
}

pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

pub fn empty_root() -> [u8; 32] {
    Sha256::digest(b"").into()
}

/// The largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 6962's MTH over leaf data, computed directly (the reference for tests and small trees).
pub fn merkle_tree_hash(leaves: &[&[u8]]) -> [u8; 32] {
    match leaves.len() {
        0 => empty_root(),
        1 => leaf_hash(leaves[0]),
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &merkle_tree_hash(&leaves[..k]),
                &merkle_tree_hash(&leaves[k..]),
            )
        }
    }
}

/// An inclusion proof: the audit path of `leaf_index` in the tree of `tree_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub audit_path: Vec<[u8; 32]>,
}

/// Checks `proof` for `leaf` against `root` (RFC 9162 §2.1.3.2's algorithm).
pub fn verify_inclusion(leaf: &[u8], proof: &InclusionProof, root: &[u8; 32]) -> bool {
    if proof.leaf_index >= proof.tree_size {
        return false;
    }
    let mut f_n = proof.leaf_index;
    let mut s_n = proof.tree_size - 1;
    let mut hash = leaf_hash(leaf);
    for sibling in &proof.audit_path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            hash = node_hash(sibling, &hash);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && hash == *root
}

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut key = vec![level];
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The number of leaves appended so far.
pub fn size<S: Store + ?Sized>(view: &StateView<'_, S>) -> Result<u64, StateError> {
    match view.get(Column::Accumulator, SIZE_KEY)? {
        None => Ok(0),
        Some(bytes) => Ok(u64::from_be_bytes(bytes.as_slice().try_into().map_err(
            |_| StateError::Corrupt {
                column: Column::Accumulator,
                detail: "the accumulator size is not 8 bytes".to_owned(),
            },
        )?)),
    }
}

fn node<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    level: u8,
    index: u64,
) -> Result<[u8; 32], StateError> {
    view.get(Column::Accumulator, &node_key(level, index))?
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| StateError::Corrupt {
            column: Column::Accumulator,
            detail: format!("accumulator node at level {level}, index {index} is missing"),
        })
}

/// Appends one leaf and stores every subtree it completes; returns the new size.
pub fn append<S: Store + ?Sized>(
    view: &mut StateView<'_, S>,
    leaf: &[u8],
) -> Result<u64, StateError> {
    let index = size(view)?;
    let mut hash = leaf_hash(leaf);
    let mut level: u8 = 0;
    let mut position = index;
    view.put(
        Column::Accumulator,
        node_key(level, position),
        hash.to_vec(),
    );
    while position & 1 == 1 {
        let left = node(view, level, position - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        position >>= 1;
        view.put(
            Column::Accumulator,
            node_key(level, position),
            hash.to_vec(),
        );
    }
    let new_size = index + 1;
    view.put(
        Column::Accumulator,
        SIZE_KEY.to_vec(),
        new_size.to_be_bytes().to_vec(),
    );
    Ok(new_size)
}

/// MTH of the `count` leaves starting at `start`, from stored complete subtrees.
fn range_hash<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    start: u64,
    count: u64,
) -> Result<[u8; 32], StateError> {
    if count.is_power_of_two() && start % count == 0 {
        return node(view, count.trailing_zeros() as u8, start / count);
    }
    let k = split_point(count);
    Ok(node_hash(
        &range_hash(view, start, k)?,
        &range_hash(view, start + k, count - k)?,
    ))
}

/// The root over the first `tree_size` leaves (at most the current size).
pub fn root_at<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    tree_size: u64,
) -> Result<[u8; 32], StateError> {
    if tree_size == 0 {
        return Ok(empty_root());
    }
    range_hash(view, 0, tree_size)
}

/// The audit path of `leaf_index` in the tree of `tree_size` leaves (RFC 6962 §2.1.1 PATH).
pub fn inclusion_proof<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    leaf_index: u64,
    tree_size: u64,
) -> Result<Option<InclusionProof>, StateError> {
    if leaf_index >= tree_size || tree_size > size(view)? {
        return Ok(None);
    }
    let mut path = Vec::new();
    path_into(view, leaf_index, 0, tree_size, &mut path)?;
    Ok(Some(InclusionProof {
        leaf_index,
        tree_size,
        audit_path: path,
    }))
}

fn height_key(height: u64) -> Vec<u8> {
    [HEIGHT_PREFIX, &height.to_be_bytes()].concat()
}

/// Records the tree size after the block at `height`.
pub fn record_height<S: Store + ?Sized>(view: &mut StateView<'_, S>, height: u64, size: u64) {
    view.put(
        Column::Accumulator,
        height_key(height),
        size.to_be_bytes().to_vec(),
    );
}

/// The tree size after the block at `height` (0 before the first block).
pub fn size_at_height<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    height: u64,
) -> Result<Option<u64>, StateError> {
    if height == 0 {
        return Ok(Some(0));
    }
    view.get(Column::Accumulator, &height_key(height))?
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StateError::Corrupt {
                    column: Column::Accumulator,
                    detail: format!("the tree size at height {height} is not 8 bytes"),
                })
        })
        .transpose()
}

/// A consistency proof: the tree of `first_size` leaves is a prefix of the tree of `second_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub first_size: u64,
    pub second_size: u64,
    pub path: Vec<[u8; 32]>,
}

/// The consistency proof between two sizes (RFC 9162 §2.1.4.1), or `None` unless
/// `first_size <= second_size <= size`.
pub fn consistency_proof<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    first_size: u64,
    second_size: u64,
) -> Result<Option<ConsistencyProof>, StateError> {
    if first_size > second_size || second_size > size(view)? {
        return Ok(None);
    }
    let mut path = Vec::new();
    if first_size > 0 && first_size < second_size {
        subproof_into(view, first_size, 0, second_size, true, &mut path)?;
    }
    Ok(Some(ConsistencyProof {
        first_size,
        second_size,
        path,
    }))
}

/// SUBPROOF(m, D[start:start+count], complete) of RFC 9162 §2.1.4.1.
fn subproof_into<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    m: u64,
    start: u64,
    count: u64,
    complete: bool,
    path: &mut Vec<[u8; 32]>,
) -> Result<(), StateError> {
    if m == count {
        if !complete {
            path.push(range_hash(view, start, count)?);
        }
        return Ok(());
    }
    let k = split_point(count);
    if m <= k {
        subproof_into(view, m, start, k, complete, path)?;
        path.push(range_hash(view, start + k, count - k)?);
    } else {
        subproof_into(view, m - k, start + k, count - k, false, path)?;
        path.push(range_hash(view, start, k)?);
    }
    Ok(())
}

/// Checks that `first_root` (of `first_size` leaves) and `second_root` (of `second_size`) are
/// roots of one growing tree (RFC 9162 §2.1.4.2's algorithm).
pub fn verify_consistency(
    proof: &ConsistencyProof,
    first_root: &[u8; 32],
    second_root: &[u8; 32],
) -> bool {
    let (first, second) = (proof.first_size, proof.second_size);
    if first > second {
        return false;
    }
    if first == second {
        return proof.path.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.path.is_empty();
    }
    let mut path = proof.path.as_slice();
    let seed;
    if first.is_power_of_two() {
        seed = *first_root;
    } else {
        let Some((head, rest)) = path.split_first() else {
            return false;
        };
        seed = *head;
        path = rest;
    }
    let mut f_n = first - 1;
    let mut s_n = second - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (seed, seed);
    for c in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && f_r == *first_root && s_r == *second_root
}

fn path_into<S: Store + ?Sized>(
    view: &StateView<'_, S>,
    leaf_index: u64,
    start: u64,
    count: u64,
    path: &mut Vec<[u8; 32]>,
) -> Result<(), StateError> {
    if count <= 1 {
        return Ok(());
    }
    let k = split_point(count);
    if leaf_index < k {
        path_into(view, leaf_index, start, k, path)?;
        path.push(range_hash(view, start + k, count - k)?);
    } else {
        path_into(view, leaf_index - k, start + k, count - k, path)?;
        path.push(range_hash(view, start, k)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use varde_storage::MemoryStore;

    use super::*;
    use crate::hex;

    /// The leaves of the Certificate Transparency reference tests (RFC 6962 test data).
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|text| hex::decode(text).unwrap())
        .collect()
    }

    // Roots of the empty tree, one leaf and three leaves, computed by hand from the definitions.
    #[test]
    fn small_trees_match_hand_computation() {
        assert_eq!(
            hex::encode(&merkle_tree_hash(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // SHA-256(0x00).
        assert_eq!(
            hex::encode(&merkle_tree_hash(&[b""])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let (a, b, c) = (b"a".as_slice(), b"b".as_slice(), b"c".as_slice());
        let by_hand = node_hash(&node_hash(&leaf_hash(a), &leaf_hash(b)), &leaf_hash(c));
        assert_eq!(merkle_tree_hash(&[a, b, c]), by_hand);
    }

    // The eight-leaf reference tree has the root published with the CT test data.
    #[test]
    fn reference_tree_root() {
        let leaves = reference_leaves();
        let slices: Vec<&[u8]> = leaves.iter().map(Vec::as_slice).collect();
        assert_eq!(
            hex::encode(&merkle_tree_hash(&slices)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }

    // The stored accumulator's root and proofs agree with the direct definition at every size,
    // every proof verifies, and a proof fails for another leaf or root.
    #[test]
    fn stored_accumulator_roots_and_proofs() {
        let store = MemoryStore::new();
        let mut view = StateView::new(&store);
        let leaves: Vec<Vec<u8>> = (0u8..13).map(|byte| vec![byte; 32]).collect();
        for (count, leaf) in leaves.iter().enumerate() {
            append(&mut view, leaf).unwrap();
            let tree_size = count as u64 + 1;
            let slices: Vec<&[u8]> = leaves[..=count].iter().map(Vec::as_slice).collect();
            let root = root_at(&view, tree_size).unwrap();
            assert_eq!(root, merkle_tree_hash(&slices), "size {tree_size}");
            for (leaf_index, proven) in leaves[..=count].iter().enumerate() {
                let proof = inclusion_proof(&view, leaf_index as u64, tree_size)
                    .unwrap()
                    .unwrap();
                assert!(
                    verify_inclusion(proven, &proof, &root),
                    "leaf {leaf_index} of {tree_size}"
                );
                assert!(!verify_inclusion(b"other", &proof, &root));
            }
        }
        // Proofs against an earlier size still work, and out-of-range requests give None.
        let early_root = root_at(&view, 5).unwrap();
        let proof = inclusion_proof(&view, 3, 5).unwrap().unwrap();
        assert!(verify_inclusion(&leaves[3], &proof, &early_root));
        assert!(inclusion_proof(&view, 13, 13).unwrap().is_none());
        assert!(inclusion_proof(&view, 0, 14).unwrap().is_none());
    }

    // Between every pair of sizes up to 20 the proof verifies against the direct roots; it fails
    // against another root, with a byte changed, or with a hash left out.
    #[test]
    fn consistency_proofs_between_every_pair_of_sizes() {
        let store = MemoryStore::new();
        let mut view = StateView::new(&store);
        let leaves: Vec<Vec<u8>> = (0u8..20).map(|byte| vec![byte; 32]).collect();
        for leaf in &leaves {
            append(&mut view, leaf).unwrap();
        }
        let root_of = |size: usize| {
            let slices: Vec<&[u8]> = leaves[..size].iter().map(Vec::as_slice).collect();
            merkle_tree_hash(&slices)
        };
        for second in 0..=20u64 {
            for first in 0..=second {
                let proof = consistency_proof(&view, first, second).unwrap().unwrap();
                let (first_root, second_root) = (root_of(first as usize), root_of(second as usize));
                assert!(
                    verify_consistency(&proof, &first_root, &second_root),
                    "{first} -> {second}"
                );
                if first == 0 {
                    continue;
                }
                assert!(!verify_consistency(&proof, &second_root, &first_root) || first == second);
                for index in 0..proof.path.len() {
                    let mut changed = proof.clone();
                    changed.path[index][7] ^= 0x20;
                    assert!(!verify_consistency(&changed, &first_root, &second_root));
                    let mut shorter = proof.clone();
                    shorter.path.remove(index);
                    assert!(!verify_consistency(&shorter, &first_root, &second_root));
                }
                if first < second {
                    let other = ConsistencyProof {
                        first_size: first + 1,
                        ..proof.clone()
                    };
                    assert!(!verify_consistency(&other, &first_root, &second_root));
                }
            }
        }
        assert!(consistency_proof(&view, 3, 21).unwrap().is_none());
        assert!(consistency_proof(&view, 5, 4).unwrap().is_none());
    }

    // The consistency proofs published with the Certificate Transparency reference tree.
    #[test]
    fn reference_consistency_proofs() {
        let store = MemoryStore::new();
        let mut view = StateView::new(&store);
        let leaves = reference_leaves();
        for leaf in &leaves {
            append(&mut view, leaf).unwrap();
        }
        let cases: [(u64, u64, &[&str]); 3] = [
            (1, 1, &[]),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (first, second, expected) in cases {
            let proof = consistency_proof(&view, first, second).unwrap().unwrap();
            let hexes: Vec<String> = proof.path.iter().map(|hash| hex::encode(hash)).collect();
            assert_eq!(hexes, expected, "{first} -> {second}");
        }
    }

    // Hand-built proofs in the three-leaf tree: leaf 2 needs MTH(a,b); leaf 0 needs b, then c.
    #[test]
    fn hand_built_proof_for_three_leaves() {
        let (a, b, c) = (b"a".as_slice(), b"b".as_slice(), b"c".as_slice());
        let root = merkle_tree_hash(&[a, b, c]);
        let proof = InclusionProof {
            leaf_index: 2,
            tree_size: 3,
            audit_path: vec![node_hash(&leaf_hash(a), &leaf_hash(b))],
        };
        assert!(verify_inclusion(c, &proof, &root));
        let proof_a = InclusionProof {
            leaf_index: 0,
            tree_size: 3,
            audit_path: vec![leaf_hash(b), leaf_hash(c)],
        };
        assert!(verify_inclusion(a, &proof_a, &root));
    }
}
