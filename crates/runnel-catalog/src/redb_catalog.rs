use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::{Catalog, CatalogError, StreamRecord};

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const NEXT_UID_KEY: &str = "next_stream_uid";

/// The embedded catalog: one redb file (`catalog.redb`) in the data dir.
pub struct RedbCatalog {
    db: Database,
}

fn storage<E: std::fmt::Display>(e: E) -> CatalogError {
    CatalogError::Storage(e.to_string())
}

impl RedbCatalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let db = Database::create(path).map_err(storage)?;
        let tx = db.begin_write().map_err(storage)?;
        {
            tx.open_table(STREAMS).map_err(storage)?;
            tx.open_table(META).map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        Ok(RedbCatalog { db })
    }
}

impl Catalog for RedbCatalog {
    fn load_streams(&self) -> Result<Vec<StreamRecord>, CatalogError> {
        let tx = self.db.begin_read().map_err(storage)?;
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

    fn put_stream(&self, record: &StreamRecord) -> Result<(), CatalogError> {
        let bytes = serde_json::to_vec(record).map_err(storage)?;
        let tx = self.db.begin_write().map_err(storage)?;
        {
            let mut table = tx.open_table(STREAMS).map_err(storage)?;
            table
                .insert(record.name.as_str(), bytes.as_slice())
                .map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    fn delete_stream(&self, name: &str) -> Result<(), CatalogError> {
        let tx = self.db.begin_write().map_err(storage)?;
        {
            let mut table = tx.open_table(STREAMS).map_err(storage)?;
            table.remove(name).map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    fn next_stream_uid(&self) -> Result<u64, CatalogError> {
        let tx = self.db.begin_write().map_err(storage)?;
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

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, CatalogError> {
        let key = format!("setting/{key}");
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(META).map_err(storage)?;
        let value = table.get(key.as_str()).map_err(storage)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), CatalogError> {
        let key = format!("setting/{key}");
        let tx = self.db.begin_write().map_err(storage)?;
        {
            let mut table = tx.open_table(META).map_err(storage)?;
            table.insert(key.as_str(), value).map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    fn secret(&self, name: &str) -> Result<[u8; 32], CatalogError> {
        let key = format!("secret/{name}");
        {
            let tx = self.db.begin_read().map_err(storage)?;
            let table = tx.open_table(META).map_err(storage)?;
            if let Some(v) = table.get(key.as_str()).map_err(storage)? {
                return v.value().try_into().map_err(|_| CatalogError::Corrupt {
                    key: key.clone(),
                    reason: "not 32 bytes".into(),
                });
            }
        }
        let fresh: [u8; 32] = rand::random();
        let tx = self.db.begin_write().map_err(storage)?;
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
