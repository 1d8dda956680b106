use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use redb::{Database, ReadableTable, TableDefinition};

use crate::{Catalog, CatalogError, StreamRecord};

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Other services' records: (keyspace, key) → bytes.
const ENTRIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("entries");
const NEXT_UID_KEY: &str = "next_stream_uid";

type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The embedded catalog: one redb file (`catalog.redb`) in the data dir.
///
/// After an I/O error (a full disk), redb refuses every later transaction
/// ("Previous I/O error occurred") until the database is reopened. The
/// catalog does that itself: the failing call reports the cause, and the
/// next call closes and reopens the file (redb recovers its last committed
/// state), so writes work again as soon as space is back, with no restart.
pub struct RedbCatalog {
    /// `None` after a failure, until a reopen succeeds.
    db: RwLock<Option<Database>>,
    opener: Opener,
}

/// A redb failure as a catalog error. I/O errors keep their cause in the
/// message ("No space left on device (os error 28)").
fn storage<E: Into<redb::Error>>(e: E) -> CatalogError {
    match e.into() {
        redb::Error::Io(io) => CatalogError::Io(io),
        redb::Error::PreviousIo => CatalogError::NeedsReopen,
        other => CatalogError::Storage(other.to_string()),
    }
}

fn encoding(e: serde_json::Error) -> CatalogError {
    CatalogError::Storage(e.to_string())
}

fn init(db: &Database) -> Result<(), CatalogError> {
    let tx = db.begin_write().map_err(storage)?;
    {
        tx.open_table(STREAMS).map_err(storage)?;
        tx.open_table(META).map_err(storage)?;
        tx.open_table(ENTRIES).map_err(storage)?;
    }
    tx.commit().map_err(storage)
}

impl RedbCatalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let path: PathBuf = path.to_path_buf();
        Self::open_with(Box::new(move || Database::create(&path)))
    }

    /// Opens with a custom way of (re)opening the database (tests use a
    /// backend that can run out of space).
    pub fn open_with(opener: Opener) -> Result<Self, CatalogError> {
        let db = opener().map_err(storage)?;
        init(&db)?;
        Ok(RedbCatalog {
            db: RwLock::new(Some(db)),
            opener,
        })
    }

    /// Runs `f` on the database, reopening it first if an earlier I/O error
    /// left it unusable, and once more if redb reports such an error now.
    fn with_db<T>(
        &self,
        f: impl Fn(&Database) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        for attempt in 0..2 {
            {
                let guard = self.db.read();
                if let Some(db) = guard.as_ref() {
                    match f(db) {
                        Err(e @ CatalogError::Io(_)) => {
                            drop(guard);
                            self.close();
                            return Err(e);
                        }
                        Err(CatalogError::NeedsReopen) if attempt == 0 => {}
                        r => return r,
                    }
                }
            }
            self.close();
            self.reopen()?;
        }
        Err(CatalogError::NeedsReopen)
    }

    fn close(&self) {
        // Dropping the handle releases redb's file lock so it can be reopened.
        self.db.write().take();
    }

    fn reopen(&self) -> Result<(), CatalogError> {
        let mut guard = self.db.write();
        if guard.is_some() {
            return Ok(());
        }
        let db = (self.opener)().map_err(storage)?;
        init(&db)?;
        tracing::info!("catalog reopened after an I/O error");
        *guard = Some(db);
        Ok(())
    }
}

impl Catalog for RedbCatalog {
    fn load_streams(&self) -> Result<Vec<StreamRecord>, CatalogError> {
        self.with_db(Self::load_streams_in)
    }

    fn put_stream(&self, record: &StreamRecord) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec(record).map_err(encoding)?;
        self.with_db(|db| {
            let tx = db.begin_write().map_err(storage)?;
            {
                let mut table = tx.open_table(STREAMS).map_err(storage)?;
                table
                    .insert(record.name.as_str(), bytes.as_slice())
                    .map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
    }

    fn delete_stream(&self, name: &str) -> Result<(), CatalogError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(storage)?;
            {
                let mut table = tx.open_table(STREAMS).map_err(storage)?;
                table.remove(name).map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
    }

    fn next_stream_uid(&self) -> Result<u64, CatalogError> {
        self.with_db(Self::next_stream_uid_in)
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        let key = format!("setting/{key}");
        self.with_db(|db| {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(META).map_err(storage)?;
            let value = table.get(key.as_str()).map_err(storage)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        let key = format!("setting/{key}");
        self.with_db(|db| {
            let tx = db.begin_write().map_err(storage)?;
            {
                let mut table = tx.open_table(META).map_err(storage)?;
                table.insert(key.as_str(), value).map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
    }

    fn secret(&self, name: &str) -> Result<[u8; 32], CatalogError> {
        self.with_db(|db| Self::secret_in(db, name))
    }

    fn entries(&self, keyspace: &str) -> Result<Vec<(String, Vec<u8>)>, CatalogError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(ENTRIES).map_err(storage)?;
            let mut out = Vec::new();
            for entry in table.range((keyspace, "")..).map_err(storage)? {
                let (key, value) = entry.map_err(storage)?;
                let (space, key) = key.value();
                if space != keyspace {
                    break;
                }
                out.push((key.to_string(), value.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn entry(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(ENTRIES).map_err(storage)?;
            let value = table.get((keyspace, key)).map_err(storage)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    fn put_entry(&self, keyspace: &str, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(storage)?;
            {
                let mut table = tx.open_table(ENTRIES).map_err(storage)?;
                table.insert((keyspace, key), value).map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
    }

    fn delete_entry(&self, keyspace: &str, key: &str) -> Result<(), CatalogError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(storage)?;
            {
                let mut table = tx.open_table(ENTRIES).map_err(storage)?;
                table.remove((keyspace, key)).map_err(storage)?;
            }
            tx.commit().map_err(storage)
        })
    }
}

impl RedbCatalog {
    fn load_streams_in(db: &Database) -> Result<Vec<StreamRecord>, CatalogError> {
        let tx = db.begin_read().map_err(storage)?;
        let table = tx.open_table(STREAMS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (key, value) = entry.map_err(storage)?;
            let record: StreamRecord =
                serde_json::from_slice(value.value()).map_err(|e| CatalogError::Corrupt {
                    key: key.value().to_string(),
                    reason: e.to_string(),
                })?;
            out.push(record);
        }
        Ok(out)
    }

    fn next_stream_uid_in(db: &Database) -> Result<u64, CatalogError> {
        let tx = db.begin_write().map_err(storage)?;
        let uid = {
            let mut table = tx.open_table(META).map_err(storage)?;
            let current = match table.get(NEXT_UID_KEY).map_err(storage)? {
                Some(v) => {
                    let bytes: [u8; 8] =
                        v.value().try_into().map_err(|_| CatalogError::Corrupt {
                            key: NEXT_UID_KEY.into(),
                            reason: "not 8 bytes".into(),
                        })?;
                    u64::from_be_bytes(bytes)
                }
                None => 1,
            };
            table
                .insert(NEXT_UID_KEY, (current + 1).to_be_bytes().as_slice())
                .map_err(storage)?;
            current
        };
        tx.commit().map_err(storage)?;
        Ok(uid)
    }

    fn secret_in(db: &Database, name: &str) -> Result<[u8; 32], CatalogError> {
        let key = format!("secret/{name}");
        {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(META).map_err(storage)?;
            if let Some(v) = table.get(key.as_str()).map_err(storage)? {
                return v.value().try_into().map_err(|_| CatalogError::Corrupt {
                    key: key.clone(),
                    reason: "not 32 bytes".into(),
                });
            }
        }
        let fresh: [u8; 32] = rand::random();
        let tx = db.begin_write().map_err(storage)?;
        let stored = {
            let mut table = tx.open_table(META).map_err(storage)?;
            // Another caller may have raced us; keep whichever was first.
            let existing = table
                .get(key.as_str())
                .map_err(storage)?
                .map(|v| v.value().to_vec());
            match existing {
                Some(v) => v,
                None => {
                    table
                        .insert(key.as_str(), fresh.as_slice())
                        .map_err(storage)?;
                    fresh.to_vec()
                }
            }
        };
        tx.commit().map_err(storage)?;
        stored
            .as_slice()
            .try_into()
            .map_err(|_| CatalogError::Corrupt {
                key,
                reason: "not 32 bytes".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StreamMode, StreamState};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn record(name: &str, uid: u64) -> StreamRecord {
        StreamRecord {
            name: name.into(),
            uid,
            created_ms: 1,
            state: StreamState::Active,
            state_since_ms: 1,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            shards: vec![],
            tags: Default::default(),
            max_record_size_kib: 1024,
            shard_level_metrics: vec![],
            warm_throughput_mibps: None,
            consumers: vec![],
            scaling_events_ms: vec![],
            resource_policies: Default::default(),
            encryption: vec![],
        }
    }

    #[test]
    fn keyspaces_are_separate_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        {
            let c = RedbCatalog::open(&path).unwrap();
            c.put_entry("a", "x", b"1").unwrap();
            c.put_entry("a", "y", b"2").unwrap();
            c.put_entry("ab", "x", b"3").unwrap();
            c.put_entry("b", "x", b"4").unwrap();
            c.put_entry("a", "x", b"5").unwrap();
            c.delete_entry("a", "y").unwrap();
            c.delete_entry("a", "missing").unwrap();
        }
        let c = RedbCatalog::open(&path).unwrap();
        assert_eq!(c.entries("a").unwrap(), vec![("x".into(), b"5".to_vec())]);
        assert_eq!(c.entries("ab").unwrap(), vec![("x".into(), b"3".to_vec())]);
        assert!(c.entries("c").unwrap().is_empty());
        assert_eq!(c.entry("ab", "x").unwrap(), Some(b"3".to_vec()));
        assert_eq!(c.entry("a", "y").unwrap(), None);
    }

    /// A file backend that fails writes with ENOSPC while `full` is set.
    #[derive(Debug)]
    struct FullBackend {
        inner: redb::backends::FileBackend,
        full: Arc<AtomicBool>,
    }

    fn enospc() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    impl redb::StorageBackend for FullBackend {
        fn len(&self) -> Result<u64, std::io::Error> {
            self.inner.len()
        }
        fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, std::io::Error> {
            self.inner.read(offset, len)
        }
        fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
            if self.full.load(Ordering::SeqCst) && len > self.inner.len()? {
                return Err(enospc());
            }
            self.inner.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> Result<(), std::io::Error> {
            self.inner.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
            if self.full.load(Ordering::SeqCst) {
                return Err(enospc());
            }
            self.inner.write(offset, data)
        }
    }

    #[test]
    fn writes_work_again_after_a_full_disk_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        let full = Arc::new(AtomicBool::new(false));
        let (p, f) = (path.clone(), full.clone());
        let catalog = RedbCatalog::open_with(Box::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&p)?;
            let backend = FullBackend {
                inner: redb::backends::FileBackend::new(file)?,
                full: f.clone(),
            };
            redb::Builder::new().create_with_backend(backend)
        }))
        .unwrap();
        catalog.put_stream(&record("keep", 1)).unwrap();
        catalog.put_stream(&record("big", 2)).unwrap();

        full.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            let e = catalog.delete_stream("big").unwrap_err();
            assert!(e.is_no_space(), "{e:?}");
            assert!(e.to_string().contains("No space left on device"), "{e}");
        }
        // (Reads need space too once redb has seen an I/O error: reopening
        // runs its repair, which writes. The service reads from memory.)

        full.store(false, Ordering::SeqCst);
        catalog.delete_stream("big").unwrap();
        catalog.put_stream(&record("new", 3)).unwrap();
        catalog.put_setting("k", b"v").unwrap();
        let names = |c: &RedbCatalog| -> Vec<String> {
            c.load_streams()
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(names(&catalog), vec!["keep", "new"]);
        drop(catalog);
        let catalog = RedbCatalog::open(&path).unwrap();
        assert_eq!(names(&catalog), vec!["keep", "new"]);
        assert_eq!(catalog.setting("k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        let secret;
        {
            let c = RedbCatalog::open(&path).unwrap();
            assert_eq!(c.next_stream_uid().unwrap(), 1);
            assert_eq!(c.next_stream_uid().unwrap(), 2);
            c.put_stream(&record("b", 2)).unwrap();
            c.put_stream(&record("a", 1)).unwrap();
            c.put_stream(&record("c", 3)).unwrap();
            c.delete_stream("c").unwrap();
            secret = c.secret("iterators").unwrap();
            assert_eq!(c.secret("iterators").unwrap(), secret);
            c.put_setting("a", b"1").unwrap();
        }
        let c = RedbCatalog::open(&path).unwrap();
        let names: Vec<_> = c
            .load_streams()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(c.next_stream_uid().unwrap(), 3, "uids are never reused");
        assert_eq!(c.secret("iterators").unwrap(), secret);
        assert_eq!(c.setting("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(c.setting("b").unwrap(), None);
    }
}
