//! One suite for every [`Store`]: each check is written once, generic over a [`Harness`], and
//! instantiated for [`MemoryStore`] and [`RocksStore`] at the bottom of this file. RocksDB-only checks
//! (damaged files, foreign directories, locks) and the comparison property test follow.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use varde_storage::{
    ChainIdentity, Column, Entry, GENESIS_HASH_KEY, MemoryStore, RocksStore, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY, StorageError, Store, WriteBatch,
};

fn identity() -> ChainIdentity {
    ChainIdentity::new("varde-test", [0xa1; 32])
}

fn other_chain() -> ChainIdentity {
    ChainIdentity::new("varde-other", [0x0b; 32])
}

/// How the suite makes, closes and reopens a store of one kind.
trait Harness: Sized {
    /// A new, empty store belonging to `identity`.
    fn create(identity: &ChainIdentity) -> Self;
    fn store(&self) -> &dyn Store;
    /// Closes the store and opens it again as `identity` (in memory: checks the identity again).
    fn reopen(self, identity: &ChainIdentity) -> Result<Self, StorageError>;
}

struct MemoryHarness(MemoryStore);

impl Harness for MemoryHarness {
    fn create(identity: &ChainIdentity) -> Self {
        MemoryHarness(MemoryStore::open(identity).expect("open a memory store"))
    }

    fn store(&self) -> &dyn Store {
        &self.0
    }

    fn reopen(self, identity: &ChainIdentity) -> Result<Self, StorageError> {
        self.0.check_identity(identity)?;
        Ok(self)
    }
}

struct RocksHarness {
    store: RocksStore,
    directory: TempDir,
}

impl Harness for RocksHarness {
    fn create(identity: &ChainIdentity) -> Self {
        let directory = TempDir::new().expect("create a temporary directory");
        let store =
            RocksStore::open(&database_path(&directory), identity).expect("open a RocksDB store");
        RocksHarness { store, directory }
    }

    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn reopen(self, identity: &ChainIdentity) -> Result<Self, StorageError> {
        let RocksHarness { store, directory } = self;
        drop(store);
        let store = RocksStore::open(&database_path(&directory), identity)?;
        Ok(RocksHarness { store, directory })
    }
}

fn database_path(directory: &TempDir) -> PathBuf {
    directory.path().join("database")
}

fn put(store: &dyn Store, column: Column, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(column, key, value);
    store.write(batch).expect("write");
}

fn delete(store: &dyn Store, column: Column, key: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.delete(column, key);
    store.write(batch).expect("write");
}

fn keys(entries: Vec<Entry>) -> Vec<Vec<u8>> {
    entries.into_iter().map(|(key, _)| key).collect()
}

fn scan_keys(
    store: &dyn Store,
    column: Column,
    prefix: &[u8],
    start_after: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    keys(
        store
            .scan_prefix(column, prefix, start_after, usize::MAX)
            .expect("scan"),
    )
}

fn owned(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    keys.iter().map(|key| key.to_vec()).collect()
}

// Put, get, overwrite and delete single keys; deleting an absent key is not an error.
fn get_put_delete<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    assert_eq!(store.get(Column::Records, b"record").unwrap(), None);
    put(store, Column::Records, b"record", b"first");
    assert_eq!(
        store.get(Column::Records, b"record").unwrap(),
        Some(b"first".to_vec())
    );
    put(store, Column::Records, b"record", b"second");
    assert_eq!(
        store.get(Column::Records, b"record").unwrap(),
        Some(b"second".to_vec())
    );
    delete(store, Column::Records, b"record");
    assert_eq!(store.get(Column::Records, b"record").unwrap(), None);
    delete(store, Column::Records, b"never written");
    store
        .write(WriteBatch::new())
        .expect("an empty batch is a no-op");
}

// Operations inside one batch apply in their order: the last put or delete of a key wins.
fn batch_operations_apply_in_order<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    put(store, Column::Grants, b"existing", b"old");
    let mut batch = WriteBatch::new();
    batch.put(Column::Grants, b"key", b"1");
    batch.put(Column::Grants, b"key", b"2");
    batch.delete(Column::Grants, b"key");
    batch.put(Column::Grants, b"key", b"3");
    batch.put(Column::Grants, b"gone", b"x");
    batch.delete(Column::Grants, b"gone");
    batch.delete(Column::Grants, b"existing");
    store.write(batch).unwrap();
    assert_eq!(
        store.get(Column::Grants, b"key").unwrap(),
        Some(b"3".to_vec())
    );
    assert_eq!(store.get(Column::Grants, b"gone").unwrap(), None);
    assert_eq!(store.get(Column::Grants, b"existing").unwrap(), None);
}

// A reader scanning while batches are written sees each batch whole or not at all, across columns.
fn batch_is_visible_all_together<H: Harness>() {
    const KEYS_PER_BATCH: u8 = 8;
    const BATCHES: u32 = 40;
    let harness = H::create(&identity());
    let store = harness.store();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for generation in 1..=BATCHES {
                let mut batch = WriteBatch::new();
                for key in 0..KEYS_PER_BATCH {
                    batch.put(Column::Blocks, [key], generation.to_be_bytes());
                }
                batch.put(
                    Column::Certificates,
                    b"generation",
                    generation.to_be_bytes(),
                );
                store.write(batch).unwrap();
            }
        });
        let mut observed_last = false;
        while !observed_last {
            observed_last = writer.is_finished();
            let entries = store
                .scan_prefix(Column::Blocks, b"", None, usize::MAX)
                .unwrap();
            if entries.is_empty() {
                continue;
            }
            assert_eq!(
                entries.len(),
                usize::from(KEYS_PER_BATCH),
                "a batch was seen in part"
            );
            let first_value = &entries[0].1;
            assert!(
                entries.iter().all(|(_, value)| value == first_value),
                "one scan saw two batches' values: {entries:?}"
            );
        }
        writer.join().unwrap();
    });
    let generation = store.get(Column::Certificates, b"generation").unwrap();
    assert_eq!(generation, Some(BATCHES.to_be_bytes().to_vec()));
    assert_eq!(store.get(Column::Blocks, &[0]).unwrap(), generation);
}

// A scan returns keys in unsigned byte order (0x00 < 0x7F < 0x80 < 0xFF, shorter before longer).
fn scan_is_in_byte_order<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    let written: [&[u8]; 9] = [
        &[0xff],
        &[0x80],
        &[0x00],
        &[0x7f, 0xff],
        &[0x7f],
        &[0xff, 0x00],
        &[0x00, 0x00],
        &[0x01],
        &[0xff, 0xff, 0xff],
    ];
    let mut batch = WriteBatch::new();
    for key in written {
        batch.put(Column::Accumulator, key, key);
    }
    store.write(batch).unwrap();
    let mut expected = owned(&written);
    expected.sort();
    let entries = store
        .scan_prefix(Column::Accumulator, b"", None, 100)
        .unwrap();
    assert_eq!(keys(entries.clone()), expected);
    assert!(
        entries.iter().all(|(key, value)| key == value),
        "values follow their keys"
    );
}

// A prefix scan includes a key equal to the prefix and stops exactly at the prefix's edges, 0xFF bytes included.
fn scan_prefix_boundaries<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    let written: [&[u8]; 12] = [
        b"ab",
        b"abc",
        b"ab\x00",
        b"ab\xff",
        b"ab\xff\xff",
        b"aa\xff",
        b"ac",
        b"a",
        b"b",
        &[0xff],
        &[0xff, 0xff],
        &[0xff, 0xff, 0x00],
    ];
    let mut batch = WriteBatch::new();
    for key in written {
        batch.put(Column::Indexes, key, b"v");
    }
    store.write(batch).unwrap();

    assert_eq!(
        scan_keys(store, Column::Indexes, b"ab", None),
        owned(&[b"ab", b"ab\x00", b"abc", b"ab\xff", b"ab\xff\xff"])
    );
    assert_eq!(
        scan_keys(store, Column::Indexes, b"ab\xff", None),
        owned(&[b"ab\xff", b"ab\xff\xff"])
    );
    assert_eq!(
        scan_keys(store, Column::Indexes, &[0xff], None),
        owned(&[&[0xff], &[0xff, 0xff], &[0xff, 0xff, 0x00]])
    );
    assert_eq!(
        scan_keys(store, Column::Indexes, &[0xff, 0xff], None),
        owned(&[&[0xff, 0xff], &[0xff, 0xff, 0x00]])
    );
    assert_eq!(
        scan_keys(store, Column::Indexes, b"abd", None),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        scan_keys(store, Column::Indexes, b"", None).len(),
        written.len()
    );
}

// The cursor resumes strictly after itself; a cursor before the prefix starts at the prefix, one after it yields nothing.
fn scan_cursor_positions<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    let mut batch = WriteBatch::new();
    for key in [&b"a"[..], b"p", b"p1", b"p2", b"p3", b"p\xff", b"q"] {
        batch.put(Column::AccessEvents, key, b"v");
    }
    store.write(batch).unwrap();
    let scan = |cursor: &[u8]| scan_keys(store, Column::AccessEvents, b"p", Some(cursor));

    let whole = owned(&[b"p", b"p1", b"p2", b"p3", b"p\xff"]);
    assert_eq!(scan(b""), whole, "empty cursor sorts before the prefix");
    assert_eq!(scan(b"a"), whole, "cursor before the prefix");
    assert_eq!(scan(b"o\xff\xff"), whole, "cursor just before the prefix");
    assert_eq!(
        scan(b"p"),
        owned(&[b"p1", b"p2", b"p3", b"p\xff"]),
        "cursor equal to the prefix"
    );
    assert_eq!(
        scan(b"p1"),
        owned(&[b"p2", b"p3", b"p\xff"]),
        "cursor on a key"
    );
    assert_eq!(
        scan(b"p15"),
        owned(&[b"p2", b"p3", b"p\xff"]),
        "cursor between keys"
    );
    assert_eq!(
        scan(b"p2\x00"),
        owned(&[b"p3", b"p\xff"]),
        "cursor just after a key"
    );
    assert_eq!(
        scan(b"p\xff"),
        Vec::<Vec<u8>>::new(),
        "cursor on the last key"
    );
    assert_eq!(
        scan(b"p\xff\xff"),
        Vec::<Vec<u8>>::new(),
        "cursor past the last key"
    );
    assert_eq!(scan(b"q"), Vec::<Vec<u8>>::new(), "cursor after the prefix");
    assert_eq!(
        scan(b"z"),
        Vec::<Vec<u8>>::new(),
        "cursor far after the prefix"
    );
}

// Limit 0 returns nothing, small limits cut the scan, huge limits return everything, and pages chain.
fn scan_limits<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    let mut batch = WriteBatch::new();
    for number in 0u16..25 {
        batch.put(Column::Receipts, number.to_be_bytes(), b"receipt");
    }
    batch.put(Column::Receipts, b"zz", b"outside");
    store.write(batch).unwrap();
    let prefix = [0u8];
    assert!(
        store
            .scan_prefix(Column::Receipts, &prefix, None, 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .scan_prefix(Column::Receipts, &prefix, Some(&[0, 3]), 0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .scan_prefix(Column::Receipts, &prefix, None, 1)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .scan_prefix(Column::Receipts, &prefix, None, 25)
            .unwrap()
            .len(),
        25
    );
    assert_eq!(
        store
            .scan_prefix(Column::Receipts, &prefix, None, 26)
            .unwrap()
            .len(),
        25
    );
    assert_eq!(
        store
            .scan_prefix(Column::Receipts, &prefix, None, usize::MAX)
            .unwrap()
            .len(),
        25
    );

    let mut pages = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = store
            .scan_prefix(Column::Receipts, &prefix, cursor.as_deref(), 4)
            .unwrap();
        assert!(page.len() <= 4);
        let Some((last, _)) = page.last() else { break };
        cursor = Some(last.clone());
        pages.extend(keys(page));
    }
    assert_eq!(pages, scan_keys(store, Column::Receipts, &prefix, None));
}

// The same key in every column holds its own value; scans and deletes touch only their column.
fn columns_are_isolated<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    let mut batch = WriteBatch::new();
    for column in Column::ALL {
        batch.put(column, b"shared-key", column.name());
    }
    store.write(batch).unwrap();
    for column in Column::ALL {
        assert_eq!(
            store.get(column, b"shared-key").unwrap(),
            Some(column.name().as_bytes().to_vec())
        );
        let entries = store.scan_prefix(column, b"shared", None, 10).unwrap();
        assert_eq!(
            entries,
            vec![(b"shared-key".to_vec(), column.name().as_bytes().to_vec())]
        );
    }
    delete(store, Column::Grants, b"shared-key");
    assert_eq!(store.get(Column::Grants, b"shared-key").unwrap(), None);
    for column in Column::ALL
        .into_iter()
        .filter(|column| *column != Column::Grants)
    {
        assert!(
            store.get(column, b"shared-key").unwrap().is_some(),
            "{column} lost its key"
        );
    }
}

// An empty value is stored and told apart from an absent key; the empty key is a key like any other.
fn empty_values_and_keys<H: Harness>() {
    let harness = H::create(&identity());
    let store = harness.store();
    put(store, Column::AccessBlocks, b"empty", b"");
    put(store, Column::AccessBlocks, b"", b"value of the empty key");
    assert_eq!(
        store.get(Column::AccessBlocks, b"empty").unwrap(),
        Some(Vec::new())
    );
    assert_eq!(store.get(Column::AccessBlocks, b"missing").unwrap(), None);
    assert_eq!(
        store.get(Column::AccessBlocks, b"").unwrap(),
        Some(b"value of the empty key".to_vec())
    );
    assert_eq!(
        store
            .scan_prefix(Column::AccessBlocks, b"", None, 10)
            .unwrap(),
        vec![
            (Vec::new(), b"value of the empty key".to_vec()),
            (b"empty".to_vec(), Vec::new()),
        ]
    );
}

// Data written before closing is all there after reopening as the same chain, in every column.
fn reopen_keeps_data<H: Harness>() {
    let harness = H::create(&identity());
    let mut batch = WriteBatch::new();
    for column in Column::ALL {
        batch.put(column, b"kept", column.name());
    }
    harness.store().write(batch).unwrap();
    delete(harness.store(), Column::Blocks, b"kept");
    let harness = harness
        .reopen(&identity())
        .expect("reopen as the same chain");
    for column in Column::ALL {
        let expected = (column != Column::Blocks).then(|| column.name().as_bytes().to_vec());
        assert_eq!(harness.store().get(column, b"kept").unwrap(), expected);
    }
    let harness = harness.reopen(&identity()).expect("reopen a second time");
    assert!(
        harness
            .store()
            .get(Column::Records, b"kept")
            .unwrap()
            .is_some()
    );
}

// Another chain id, or the same chain id with another genesis hash, is refused with both identities in the message.
fn foreign_chain_refused<H: Harness>() {
    let harness = H::create(&identity());
    let Err(error) = harness.reopen(&other_chain()) else {
        panic!("a database of another chain was accepted");
    };
    assert!(
        matches!(error, StorageError::ForeignDatabase { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    eprintln!("refused as foreign: {message}");
    for expected in [
        "varde-test",
        "varde-other",
        &"a1".repeat(32),
        &"0b".repeat(32),
    ] {
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    let harness = H::create(&identity());
    let same_name_other_genesis = ChainIdentity::new("varde-test", [0xa2; 32]);
    let Err(error) = harness.reopen(&same_name_other_genesis) else {
        panic!("a database of another genesis was accepted");
    };
    assert!(
        matches!(error, StorageError::ForeignDatabase { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&"a2".repeat(32)), "{error}");
}

// A database whose schema version is newer than this build's is refused with a clear error naming both versions.
fn newer_schema_refused<H: Harness>() {
    let harness = H::create(&identity());
    put(
        harness.store(),
        Column::Meta,
        SCHEMA_VERSION_KEY,
        &(SCHEMA_VERSION + 1).to_be_bytes(),
    );
    let Err(error) = harness.reopen(&identity()) else {
        panic!("a newer schema was accepted");
    };
    let StorageError::UnsupportedSchema {
        found, supported, ..
    } = error
    else {
        panic!("expected UnsupportedSchema, got {error:?}");
    };
    assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
}

// A database written by any older schema (whose roots this build computes differently, or whose
// values are JSON where this build reads protobuf) is refused with a clear error, not reopened
// and misread or forked.
fn older_schema_refused<H: Harness>() {
    for older in 1..SCHEMA_VERSION {
        let harness = H::create(&identity());
        put(
            harness.store(),
            Column::Meta,
            SCHEMA_VERSION_KEY,
            &older.to_be_bytes(),
        );
        let Err(error) = harness.reopen(&identity()) else {
            panic!("schema version {older} was accepted");
        };
        let StorageError::OutdatedSchema {
            found, supported, ..
        } = error
        else {
            panic!("expected OutdatedSchema, got {error:?}");
        };
        assert_eq!((found, supported), (older, SCHEMA_VERSION));
    }
}

// A database whose identity is partly missing or malformed is refused as corrupt, not re-initialised.
fn damaged_identity_refused<H: Harness>() {
    let harness = H::create(&identity());
    delete(harness.store(), Column::Meta, GENESIS_HASH_KEY);
    let Err(error) = harness.reopen(&identity()) else {
        panic!("an incomplete identity was accepted");
    };
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error:?}");

    let harness = H::create(&identity());
    put(harness.store(), Column::Meta, GENESIS_HASH_KEY, b"short");
    let Err(error) = harness.reopen(&identity()) else {
        panic!("a malformed genesis hash was accepted");
    };
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error:?}");
}

macro_rules! store_suite {
    ($module:ident, $harness:ty) => {
        mod $module {
            use super::*;

            store_suite!(@tests $harness;
                get_put_delete,
                batch_operations_apply_in_order,
                batch_is_visible_all_together,
                scan_is_in_byte_order,
                scan_prefix_boundaries,
                scan_cursor_positions,
                scan_limits,
                columns_are_isolated,
                empty_values_and_keys,
                reopen_keeps_data,
                foreign_chain_refused,
                newer_schema_refused,
                older_schema_refused,
                damaged_identity_refused,
            );
        }
    };
    (@tests $harness:ty; $($test:ident),* $(,)?) => {
        $(
            // Runs the suite check of the same name (its comment says what it checks) on this store.
            #[test]
            fn $test() {
                super::$test::<$harness>();
            }
        )*
    };
}

store_suite!(memory, MemoryHarness);
store_suite!(rocks, RocksHarness);

// A store without identity but holding data (not written by Varde) is refused, not adopted.
#[test]
fn memory_store_with_data_but_no_identity_refused() {
    let store = MemoryStore::new();
    put(&store, Column::Blocks, b"1", b"block");
    let error = store.check_identity(&identity()).unwrap_err();
    assert!(matches!(error, StorageError::Corrupt { .. }), "{error:?}");
}

mod rocks_files {
    //! RocksDB-only checks: what is on disk before or instead of a Varde database.

    use std::fs;

    use super::*;

    /// Asserts that opening failed with Corrupt naming `path`; returns the detail.
    fn assert_corrupt(result: Result<RocksStore, StorageError>, path: &Path) -> String {
        match result {
            Err(StorageError::Corrupt {
                path: reported,
                detail,
            }) => {
                assert_eq!(reported, path.display().to_string());
                eprintln!("refused as corrupt: {detail}");
                detail
            }
            Err(other) => panic!("expected Corrupt, got {other:?}"),
            Ok(store) => panic!("a damaged database opened: {store:?}"),
        }
    }

    /// A database at `path` with a few blocks in it, closed.
    fn create_database(path: &Path) {
        let store = RocksStore::open(path, &identity()).unwrap();
        for height in 0u64..100 {
            put(&store, Column::Blocks, &height.to_be_bytes(), &[7u8; 1000]);
        }
    }

    // A missing directory (and its parents) is created and gets a database.
    #[test]
    fn missing_directory_is_created() {
        let directory = TempDir::new().unwrap();
        let path = directory.path().join("deep").join("er").join("database");
        let store = RocksStore::open(&path, &identity()).unwrap();
        assert_eq!(store.path(), path);
        assert!(path.join("CURRENT").exists());
    }

    // An empty existing directory gets a new database.
    #[test]
    fn empty_directory_gets_a_database() {
        let directory = TempDir::new().unwrap();
        let store = RocksStore::open(directory.path(), &identity()).unwrap();
        put(&store, Column::Records, b"k", b"v");
        drop(store);
        let store = RocksStore::open(directory.path(), &identity()).unwrap();
        assert_eq!(
            store.get(Column::Records, b"k").unwrap(),
            Some(b"v".to_vec())
        );
    }

    // A directory of other files is refused as not a database, and nothing is created in it.
    #[test]
    fn directory_of_other_files_refused() {
        let directory = TempDir::new().unwrap();
        fs::write(directory.path().join("notes.txt"), "patient list").unwrap();
        let message = assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
        assert!(message.contains("notes.txt"), "{message}");
        assert!(!directory.path().join("CURRENT").exists());
        assert_eq!(fs::read_dir(directory.path()).unwrap().count(), 1);
    }

    // A regular file given as the database path is refused as not a database.
    #[test]
    fn file_instead_of_directory_refused() {
        let directory = TempDir::new().unwrap();
        let path = directory.path().join("database");
        fs::write(&path, "not a directory").unwrap();
        assert_corrupt(RocksStore::open(&path, &identity()), &path);
    }

    // The leftovers of a creation killed before CURRENT was written do not block creating the database.
    #[test]
    fn interrupted_creation_is_completed() {
        let directory = TempDir::new().unwrap();
        fs::write(directory.path().join("LOCK"), "").unwrap();
        fs::write(directory.path().join("IDENTITY"), "b3c0ffee").unwrap();
        fs::write(directory.path().join("MANIFEST-000001"), "half a manifest").unwrap();
        fs::write(directory.path().join("LOG"), "RocksDB version: 11.8.1").unwrap();
        let store = RocksStore::open(directory.path(), &identity()).unwrap();
        put(&store, Column::Blocks, b"1", b"block");
        drop(store);
        let store = RocksStore::open(directory.path(), &identity()).unwrap();
        assert_eq!(
            store.get(Column::Blocks, b"1").unwrap(),
            Some(b"block".to_vec())
        );
    }

    // A write-ahead log without CURRENT may hold committed data: refused, not overwritten by a new database.
    #[test]
    fn write_ahead_log_without_current_refused() {
        let directory = TempDir::new().unwrap();
        fs::write(directory.path().join("000004.log"), "batches").unwrap();
        let detail = assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
        assert!(detail.contains("000004.log"), "{detail}");
    }

    // Garbage written over the CURRENT file gives Corrupt with the path, not a panic.
    #[test]
    fn garbage_current_file_refused() {
        let directory = TempDir::new().unwrap();
        create_database(directory.path());
        fs::write(directory.path().join("CURRENT"), b"\x00\xffgarbage\x13\x37").unwrap();
        assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
    }

    // Garbage written over the MANIFEST gives Corrupt with the path, not a panic.
    #[test]
    fn garbage_manifest_refused() {
        let directory = TempDir::new().unwrap();
        create_database(directory.path());
        let current = fs::read_to_string(directory.path().join("CURRENT")).unwrap();
        let manifest = directory.path().join(current.trim());
        let length = fs::metadata(&manifest).unwrap().len();
        let garbage: Vec<u8> = (0..length).map(|index| (index * 131 % 251) as u8).collect();
        fs::write(&manifest, garbage).unwrap();
        assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
    }

    // A truncated table (SST) file gives Corrupt with the path, not a panic.
    #[test]
    fn truncated_table_file_refused() {
        let directory = TempDir::new().unwrap();
        create_database(directory.path());
        // Reopening replays the write-ahead log into a table file.
        drop(RocksStore::open(directory.path(), &identity()).unwrap());
        let tables: Vec<_> = fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "sst"))
            .collect();
        assert!(!tables.is_empty(), "no table file to truncate");
        for table in &tables {
            let length = fs::metadata(table).unwrap().len();
            let file = fs::OpenOptions::new().write(true).open(table).unwrap();
            file.set_len(length / 2).unwrap();
        }
        assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
    }

    // Flipped bytes inside a table file (same size) give Corrupt, on open or on the first read, never bad data.
    #[test]
    fn flipped_bytes_in_table_file_refused() {
        let directory = TempDir::new().unwrap();
        create_database(directory.path());
        drop(RocksStore::open(directory.path(), &identity()).unwrap());
        let table = fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|extension| extension == "sst"))
            .expect("a table file");
        let mut bytes = fs::read(&table).unwrap();
        for byte in bytes.iter_mut().take(64) {
            *byte ^= 0x5a;
        }
        fs::write(&table, bytes).unwrap();
        let error = match RocksStore::open(directory.path(), &identity()) {
            Err(error) => error,
            Ok(store) => store
                .scan_prefix(Column::Blocks, b"", None, usize::MAX)
                .expect_err("a damaged table was read without error"),
        };
        let StorageError::Corrupt { path, detail } = error else {
            panic!("expected Corrupt, got {error:?}");
        };
        assert_eq!(path, directory.path().display().to_string());
        eprintln!("refused as corrupt: {detail}");
    }

    // A RocksDB database of another program (unknown column families) is refused as not Varde's.
    #[test]
    fn foreign_rocksdb_database_refused() {
        let directory = TempDir::new().unwrap();
        {
            let mut options = rocksdb::Options::default();
            options.create_if_missing(true);
            options.create_missing_column_families(true);
            let database = rocksdb::DB::open_cf(&options, directory.path(), ["orders"]).unwrap();
            let orders = database.cf_handle("orders").unwrap();
            database.put_cf(orders, b"order-1", b"shoes").unwrap();
        }
        let message = assert_corrupt(
            RocksStore::open(directory.path(), &identity()),
            directory.path(),
        );
        assert!(message.contains("orders"), "{message}");
    }

    // A second open of a database in use is an Io error (the lock), not corruption and not a panic.
    #[test]
    fn database_in_use_is_an_io_error() {
        let directory = TempDir::new().unwrap();
        let _first = RocksStore::open(directory.path(), &identity()).unwrap();
        let error = RocksStore::open(directory.path(), &identity()).unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
    }
}

mod compared_with_memory {
    //! RocksStore and MemoryStore, given the same random batches, answer every get and scan alike.

    use proptest::prelude::*;

    use super::*;

    const COLUMNS: [Column; 3] = [Column::Meta, Column::Records, Column::ConsensusSafety];

    #[derive(Debug, Clone)]
    enum Operation {
        Put(usize, Vec<u8>, Vec<u8>),
        Delete(usize, Vec<u8>),
    }

    #[derive(Debug, Clone)]
    struct Scan {
        column: usize,
        prefix: Vec<u8>,
        start_after: Option<Vec<u8>>,
        limit: usize,
    }

    /// Short keys over a few bytes that sit at the edges of the byte order, so prefixes collide often.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(0x00u8), Just(0x01), Just(0x7f), Just(0xff)],
            0..4,
        )
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            3 => (0..COLUMNS.len(), key(), proptest::collection::vec(any::<u8>(), 0..3))
                .prop_map(|(column, key, value)| Operation::Put(column, key, value)),
            1 => (0..COLUMNS.len(), key()).prop_map(|(column, key)| Operation::Delete(column, key)),
        ]
    }

    fn scan() -> impl Strategy<Value = Scan> {
        (
            0..COLUMNS.len(),
            key(),
            proptest::option::of(key()),
            prop_oneof![0..6usize, Just(usize::MAX)],
        )
            .prop_map(|(column, prefix, start_after, limit)| Scan {
                column,
                prefix,
                start_after,
                limit,
            })
    }

    fn to_batch(operations: &[Operation]) -> WriteBatch {
        let mut batch = WriteBatch::new();
        for operation in operations {
            match operation {
                Operation::Put(column, key, value) => {
                    batch.put(COLUMNS[*column], key.clone(), value.clone())
                }
                Operation::Delete(column, key) => batch.delete(COLUMNS[*column], key.clone()),
            }
        }
        batch
    }

    fn assert_same(rocks: &dyn Store, memory: &dyn Store, scans: &[Scan]) {
        for scan in scans {
            let column = COLUMNS[scan.column];
            let rocks_entries = rocks
                .scan_prefix(
                    column,
                    &scan.prefix,
                    scan.start_after.as_deref(),
                    scan.limit,
                )
                .unwrap();
            let memory_entries = memory
                .scan_prefix(
                    column,
                    &scan.prefix,
                    scan.start_after.as_deref(),
                    scan.limit,
                )
                .unwrap();
            assert_eq!(rocks_entries, memory_entries, "{scan:?}");
            assert_eq!(
                rocks.get(column, &scan.prefix).unwrap(),
                memory.get(column, &scan.prefix).unwrap()
            );
        }
        for column in COLUMNS {
            assert_eq!(
                rocks.scan_prefix(column, b"", None, usize::MAX).unwrap(),
                memory.scan_prefix(column, b"", None, usize::MAX).unwrap()
            );
        }
    }

    proptest! {
        // Each case opens a database and syncs every batch: keep the count modest.
        #![proptest_config(ProptestConfig::with_cases(32))]

        // After each random batch, and after reopening, both stores give identical scans and gets.
        #[test]
        fn rocks_store_behaves_like_memory_store(
            batches in proptest::collection::vec(proptest::collection::vec(operation(), 0..8), 1..8),
            scans in proptest::collection::vec(scan(), 1..12),
        ) {
            let rocks = RocksHarness::create(&identity());
            let memory = MemoryHarness::create(&identity());
            for operations in &batches {
                rocks.store().write(to_batch(operations)).unwrap();
                memory.store().write(to_batch(operations)).unwrap();
                assert_same(rocks.store(), memory.store(), &scans);
            }
            let rocks = rocks.reopen(&identity()).unwrap();
            assert_same(rocks.store(), memory.store(), &scans);
        }
    }
}
