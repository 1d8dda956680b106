//! runnel's shared vocabulary: identifiers, sequence numbers, hash-key
//! routing, limits and clocks. Nothing here does I/O.

pub mod civil;
pub mod clock;
pub mod hash;
pub mod ids;
pub mod limits;
pub mod seq;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use hash::{HashKeyRange, HASH_KEY_MAX};
pub use ids::{ShardId, StreamArn};
pub use seq::SequenceNumber;
pub use wire::{Blob, Timestamp};
