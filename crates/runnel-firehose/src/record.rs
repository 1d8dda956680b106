//! What runnel keeps about a delivery stream, and where (the catalog's
//! `firehose/*` keyspaces), so definitions and delivery positions survive a
//! restart.

use std::collections::BTreeMap;

use runnel_catalog::{Catalog, CatalogError};
use runnel_runtime::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::model::{DeliveryStreamType, ExtendedS3DestinationConfiguration};

/// Delivery stream definitions, by name.
pub(crate) const DEFINITIONS: &str = "firehose/delivery-streams";
/// Delivery positions ([`DeliveryState`]), by delivery stream name.
pub(crate) const POSITIONS: &str = "firehose/delivery-state";

/// One delivery stream as created and updated through the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveryStreamRecord {
    pub name: String,
    pub kind: DeliveryStreamType,
    pub created_ms: u64,
    pub updated_ms: Option<u64>,
    /// `VersionId`: 1 at creation, +1 per UpdateDestination.
    pub version: u64,
    /// Where the records come from: the internal stream (Direct PUT) or the
    /// user's stream (its ARN).
    pub source: Source,
    /// The S3 destination, always held in its extended form; `plain_s3`
    /// remembers it was created with `S3DestinationConfiguration`.
    pub destination: ExtendedS3DestinationConfiguration,
    pub plain_s3: bool,
    pub direct_put_throughput_hint_mbs: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum Source {
    /// Direct PUT: the hidden stream the records are appended to.
    Internal { stream: String },
    Kinesis {
        stream_arn: String,
        role_arn: String,
    },
}

/// How far delivery got: the source position up to which every record is
/// in an object, and the object being written, if any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DeliveryState {
    pub checkpoint: Checkpoint,
    pub pending: Option<PendingObject>,
}

/// An object decided but not yet known to be in place. Written before the
/// object, cleared (with the checkpoint moved to `end`) after it: a restart
/// finding it rebuilds exactly the same buffer and writes the same key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingObject {
    pub end: Checkpoint,
    pub key: String,
}

pub(crate) fn load_definitions(
    catalog: &dyn Catalog,
) -> Result<Vec<DeliveryStreamRecord>, CatalogError> {
    catalog
        .entries(DEFINITIONS)?
        .into_iter()
        .map(|(key, value)| {
            serde_json::from_slice(&value).map_err(|e| CatalogError::Corrupt {
                key: format!("{DEFINITIONS}/{key}"),
                reason: e.to_string(),
            })
        })
        .collect()
}

pub(crate) fn save_definition(
    catalog: &dyn Catalog,
    record: &DeliveryStreamRecord,
) -> Result<(), CatalogError> {
    let bytes = serde_json::to_vec(record).map_err(|e| CatalogError::Storage(e.to_string()))?;
    catalog.put_entry(DEFINITIONS, &record.name, &bytes)
}

pub(crate) fn load_state(catalog: &dyn Catalog, name: &str) -> Result<DeliveryState, CatalogError> {
    match catalog.entry(POSITIONS, name)? {
        None => Ok(DeliveryState::default()),
        Some(value) => serde_json::from_slice(&value).map_err(|e| CatalogError::Corrupt {
            key: format!("{POSITIONS}/{name}"),
            reason: e.to_string(),
        }),
    }
}

pub(crate) fn save_state(
    catalog: &dyn Catalog,
    name: &str,
    state: &DeliveryState,
) -> Result<(), CatalogError> {
    let bytes = serde_json::to_vec(state).map_err(|e| CatalogError::Storage(e.to_string()))?;
    catalog.put_entry(POSITIONS, name, &bytes)
}
