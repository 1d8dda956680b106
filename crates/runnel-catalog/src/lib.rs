//! The catalog: what streams exist, their shards and lineage, settings and
//! tags. Small, rarely written, and ACID: every change is one transaction
//! that is durable before the call returns.
//!
//! [`Catalog`] is the seam for cluster mode (an etcd implementation later);
//! [`RedbCatalog`] is the embedded default. Records are stored as JSON
//! values so that adding a field (with `#[serde(default)]`) needs no
//! migration.

mod model;
mod redb_catalog;

pub use model::{
    ConsumerRecord, EncryptionPeriod, ShardRecord, StreamMode, StreamRecord, StreamState,
};
pub use redb_catalog::RedbCatalog;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog storage failed: {0}")]
    Storage(String),
    /// The catalog file could not be read or written (e.g. the disk is full);
    /// the next call reopens it.
    #[error("catalog i/o failed: {0}")]
    Io(std::io::Error),
    /// An earlier I/O error left the database unusable and reopening failed.
    #[error("catalog storage failed after an earlier i/o error; it is reopened on the next call")]
    NeedsReopen,
    #[error("catalog record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

impl CatalogError {
    /// Whether the failure is a full disk (ENOSPC or EDQUOT).
    pub fn is_no_space(&self) -> bool {
        match self {
            CatalogError::Io(e) => {
                e.kind() == std::io::ErrorKind::StorageFull
                    || e.kind() == std::io::ErrorKind::QuotaExceeded
                    || matches!(e.raw_os_error(), Some(28) | Some(122))
            }
            _ => false,
        }
    }
}

pub trait Catalog: Send + Sync + 'static {
    /// Every stream record, in name order.
    fn load_streams(&self) -> Result<Vec<StreamRecord>, CatalogError>;
    /// Inserts or replaces the record named `record.name`.
    fn put_stream(&self, record: &StreamRecord) -> Result<(), CatalogError>;
    fn delete_stream(&self, name: &str) -> Result<(), CatalogError>;
    /// A process-lifetime-unique, never-reused stream id (persisted counter).
    fn next_stream_uid(&self) -> Result<u64, CatalogError>;
    /// A 32-byte secret created on first use and kept forever (iterator and
    /// pagination-token MACs survive restarts).
    fn secret(&self, name: &str) -> Result<[u8; 32], CatalogError>;
    /// Small account-level settings, stored as opaque bytes under a key.
    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, CatalogError>;
    fn put_setting(&self, key: &str, value: &[u8]) -> Result<(), CatalogError>;
    /// Every entry of a keyspace (e.g. `firehose/delivery-streams`), in key
    /// order. Keyspaces let other services (Firehose) keep their own
    /// records beside the streams'; values are opaque bytes.
    fn entries(&self, keyspace: &str) -> Result<Vec<(String, Vec<u8>)>, CatalogError>;
    fn entry(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, CatalogError>;
    /// Inserts or replaces one entry; durable when it returns.
    fn put_entry(&self, keyspace: &str, key: &str, value: &[u8]) -> Result<(), CatalogError>;
    fn delete_entry(&self, keyspace: &str, key: &str) -> Result<(), CatalogError>;
}
