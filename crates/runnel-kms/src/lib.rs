//! A local key service: the subset of AWS KMS (`TrentService`, AWS JSON 1.1)
//! that stream encryption needs, so `aws kms ...` and SDK KMS clients work
//! against runnel's own port.
//!
//! Key material is 32 random bytes per key. It never touches disk in the
//! clear: it is stored in the catalog (setting `kms/state`) wrapped with
//! AES-256-GCM under a master key that comes from `RUNNEL_MASTER_KEY` (64 hex
//! characters) or from `<data_dir>/master.key` (created mode 0600 on first
//! start). Losing the master key loses every encrypted record.
//!
//! Ciphertext blobs (Encrypt, GenerateDataKey) are self-describing, so
//! Decrypt needs no KeyId:
//!
//! ```text
//! "RKM1" ‖ key id length (u8) ‖ key id (ASCII uuid) ‖ nonce (12) ‖ AES-256-GCM(plaintext) ‖ tag (16)
//! ```
//!
//! The GCM associated data is the key id followed by the encryption context
//! as canonical JSON, so a blob cannot be moved to another context.

mod api;
mod error;
mod master;
mod store;

pub use error::KmsError;
pub use master::{load_master_key, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use store::{KeyInfo, Kms};
