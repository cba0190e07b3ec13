//! A [`Store`] on RocksDB: one column family per [`Column`], every batch written atomically and synced.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, ErrorKind, Options, ReadOptions, WriteOptions,
};

use crate::{
    ChainIdentity, Column, Entry, StorageError, Store, WriteBatch, WriteOperation, check_identity,
};

/// RocksDB's own column family, which every database has; Varde keeps nothing in it.
const DEFAULT_COLUMN_FAMILY: &str = "default";

/// How many of RocksDB's informational LOG files to keep in the database directory.
const INFO_LOG_FILES_KEPT: usize = 5;

/// How many unexpected file names an error message lists at most.
const FILE_NAMES_LISTED_MAX: usize = 5;

/// A [`Store`] in a RocksDB database on disk.
///
/// Each [`Column`] is a column family named by [`Column::name`]. [`Store::write`] applies the whole
/// batch as one RocksDB write batch with `sync` on, so a batch that was acknowledged survives a
/// `kill -9` of the process and a power loss of the machine.
pub struct RocksStore {
    database: DB,
    path: PathBuf,
    /// `path` as shown in error messages.
    location: String,
}

impl fmt::Debug for RocksStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RocksStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What [`RocksStore::open`] found at the path before opening it.
enum Found {
    /// Nothing, an empty directory, or the leftovers of a creation cut short: create a database.
    Nothing,
    /// A RocksDB database (it has a CURRENT file).
    Database,
}

impl RocksStore {
    /// Opens the database at `path`, creating it (and the directory) if there is none, and checks that
    /// it belongs to `identity` (see [`check_identity`]).
    ///
    /// Errors: [`StorageError::ForeignDatabase`] for another chain's database,
    /// [`StorageError::UnsupportedSchema`] for one written by a newer Varde, [`StorageError::Corrupt`]
    /// for a path that is not a RocksDB database or whose files are damaged, and [`StorageError::Io`]
    /// when the disk or the operating system refuses (permissions, a lock held by another process).
    pub fn open(path: &Path, identity: &ChainIdentity) -> Result<RocksStore, StorageError> {
        let location = path.display().to_string();
        let options = database_options();
        match inspect(path, &location)? {
            Found::Nothing => {
                fs::create_dir_all(path).map_err(|error| StorageError::Io {
                    operation: "create the database directory",
                    detail: format!("{location}: {error}"),
                })?;
            }
            Found::Database => {
                let families = DB::list_cf(&options, path).map_err(|error| {
                    open_error(&location, "read the database's column families", error)
                })?;
                let unknown: Vec<&str> = families
                    .iter()
                    .map(String::as_str)
                    .filter(|name| {
                        *name != DEFAULT_COLUMN_FAMILY
                            && !Column::ALL.iter().any(|column| column.name() == *name)
                    })
                    .collect();
                if !unknown.is_empty() {
                    return Err(StorageError::Corrupt {
                        path: location,
                        detail: format!(
                            "it has column families that Varde does not know ({}): another program's database, or one written by a newer Varde",
                            unknown.join(", ")
                        ),
                    });
                }
            }
        }

        let descriptors = Column::ALL
            .iter()
            .map(|column| ColumnFamilyDescriptor::new(column.name(), Options::default()));
        let database = DB::open_cf_descriptors(&options, path, descriptors)
            .map_err(|error| open_error(&location, "open the database", error))?;
        let store = RocksStore {
            database,
            path: path.to_path_buf(),
            location,
        };
        for column in Column::ALL {
            store.handle(column)?;
        }
        check_identity(&store, &store.location, identity)?;
        Ok(store)
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn handle(&self, column: Column) -> Result<&ColumnFamily, StorageError> {
        self.database
            .cf_handle(column.name())
            .ok_or_else(|| StorageError::Corrupt {
                path: self.location.clone(),
                detail: format!("its column family {column} is missing"),
            })
    }

    /// Maps an error of a read or write on an open database: damaged data is [`StorageError::Corrupt`],
    /// anything else an [`StorageError::Io`] failure of `operation`.
    fn operation_error(&self, operation: &'static str, error: rocksdb::Error) -> StorageError {
        if error.kind() == ErrorKind::Corruption {
            StorageError::Corrupt {
                path: self.location.clone(),
                detail: format!("{operation} failed: {}", error.into_string()),
            }
        } else {
            StorageError::Io {
                operation,
                detail: format!("{}: {}", self.location, error.into_string()),
            }
        }
    }
}

fn database_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Check every file's consistency on open and fail rather than serve damaged data.
    options.set_paranoid_checks(true);
    options.set_keep_log_file_num(INFO_LOG_FILES_KEPT);
    options
}

/// Looks at `path` before RocksDB does, so that a file, or a directory of other files, is refused as
/// "not a database" instead of having a new database created inside it.
fn inspect(path: &Path, location: &str) -> Result<Found, StorageError> {
    let inspect_error = |error: io::Error| StorageError::Io {
        operation: "inspect the database directory",
        detail: format!("{location}: {error}"),
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(error) => return Err(inspect_error(error)),
    };
    if !metadata.is_dir() {
        return Err(StorageError::Corrupt {
            path: location.to_owned(),
            detail: "it is a file, not a database directory".to_owned(),
        });
    }
    match fs::symlink_metadata(path.join("CURRENT")) {
        Ok(_) => return Ok(Found::Database),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(inspect_error(error)),
    }

    let mut foreign = Vec::new();
    for entry in fs::read_dir(path).map_err(inspect_error)? {
        let entry = entry.map_err(inspect_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_creation_leftover(&name) {
            foreign.push(name);
        }
    }
    if foreign.is_empty() {
        return Ok(Found::Nothing);
    }
    foreign.sort();
    let listed = foreign.len().min(FILE_NAMES_LISTED_MAX);
    let more = if foreign.len() > listed { ", …" } else { "" };
    Err(StorageError::Corrupt {
        path: location.to_owned(),
        detail: format!(
            "it is not a RocksDB database (it has no CURRENT file) and holds other files ({}{more}); point the node at an empty or missing directory to create a database",
            foreign[..listed].join(", ")
        ),
    })
}

/// Whether a file may be left by a database creation that was killed before it wrote CURRENT: then
/// nothing was ever committed, and creating the database again loses nothing. RocksDB creates its
/// first write-ahead log (`*.log`) only after CURRENT, so a directory with one is not such a leftover.
fn is_creation_leftover(name: &str) -> bool {
    matches!(name, "LOCK" | "IDENTITY")
        || name.starts_with("LOG")
        || name.starts_with("MANIFEST-")
        || name.starts_with("OPTIONS-")
        || name.ends_with(".dbtmp")
}

/// Maps an error from opening a database. Damaged or unreadable database files are
/// [`StorageError::Corrupt`]; a lock held by another process, permissions and other refusals of the
/// operating system are [`StorageError::Io`].
fn open_error(location: &str, operation: &'static str, error: rocksdb::Error) -> StorageError {
    let kind = error.kind();
    let message = error.into_string();
    // The database's LOCK file held by another process (or another store in this one).
    let refused_by_system = message.contains("LOCK")
        || message.contains("Permission denied")
        || message.contains("No space left")
        || message.contains("Too many open files");
    match kind {
        ErrorKind::IOError if refused_by_system => StorageError::Io {
            operation,
            detail: format!("{location}: {message}"),
        },
        ErrorKind::Corruption
        | ErrorKind::InvalidArgument
        | ErrorKind::NotSupported
        | ErrorKind::NotFound
        | ErrorKind::IOError => StorageError::Corrupt {
            path: location.to_owned(),
            detail: format!("could not {operation}: {message}"),
        },
        _ => StorageError::Io {
            operation,
            detail: format!("{location}: {message}"),
        },
    }
}

/// The smallest key greater than every key that starts with `prefix`, if there is one (there is none
/// when the prefix is empty or all 0xFF bytes).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|byte| *byte != 0xff)?;
    let mut successor = prefix[..=last].to_vec();
    successor[last] += 1;
    Some(successor)
}

impl Store for RocksStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let handle = self.handle(column)?;
        self.database
            .get_cf(handle, key)
            .map_err(|error| self.operation_error("get", error))
    }

    fn scan_prefix(
        &self,
        column: Column,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let handle = self.handle(column)?;
        let mut options = ReadOptions::default();
        if let Some(upper_bound) = prefix_successor(prefix) {
            options.set_iterate_upper_bound(upper_bound);
        }
        // The smallest key strictly after the cursor is the cursor followed by a zero byte.
        let start = match start_after {
            Some(cursor) if cursor >= prefix => {
                let mut start = Vec::with_capacity(cursor.len() + 1);
                start.extend_from_slice(cursor);
                start.push(0);
                start
            }
            _ => prefix.to_vec(),
        };

        let mut iterator = self.database.raw_iterator_cf_opt(handle, options);
        iterator.seek(&start);
        let mut entries = Vec::new();
        while entries.len() < limit {
            let (Some(key), Some(value)) = (iterator.key(), iterator.value()) else {
                break;
            };
            if !key.starts_with(prefix) {
                break;
            }
            entries.push((key.to_vec(), value.to_vec()));
            iterator.next();
        }
        iterator
            .status()
            .map_err(|error| self.operation_error("scan", error))?;
        Ok(entries)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut engine_batch = rocksdb::WriteBatch::default();
        for operation in batch.into_operations() {
            match operation {
                WriteOperation::Put { column, key, value } => {
                    engine_batch.put_cf(self.handle(column)?, key, value);
                }
                WriteOperation::Delete { column, key } => {
                    engine_batch.delete_cf(self.handle(column)?, key);
                }
            }
        }
        let mut options = WriteOptions::default();
        // The batch is in the write-ahead log on disk, fsynced, before `write` returns.
        options.set_sync(true);
        self.database
            .write_opt(engine_batch, &options)
            .map_err(|error| self.operation_error("write", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The prefix successor increments the last byte that is not 0xFF and drops the 0xFF tail.
    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[0x01, 0xff, 0xff]), Some(vec![0x02]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    // Only files RocksDB writes before CURRENT count as creation leftovers; write-ahead logs and tables do not.
    #[test]
    fn creation_leftovers_are_recognised() {
        assert!(is_creation_leftover("LOCK"));
        assert!(is_creation_leftover("LOG.old.1700000000"));
        assert!(is_creation_leftover("MANIFEST-000001"));
        assert!(is_creation_leftover("000001.dbtmp"));
        assert!(!is_creation_leftover("000004.log"));
        assert!(!is_creation_leftover("000009.sst"));
        assert!(!is_creation_leftover("notes.txt"));
    }
}
