//! Streams that runnel's own services keep for themselves.
//!
//! Firehose Direct PUT keeps a delivery stream's accepted records in a
//! stream of its own, so they share the log's durability (acknowledged after
//! fsync) and the in-process reader. Such a stream is not the user's: its
//! name starts with [`INTERNAL_NAME_PREFIX`], which contains a character the
//! Kinesis name pattern (`[a-zA-Z0-9_.-]+`) forbids, so no user stream can
//! collide with it, and it answers only to calls made inside
//! [`as_internal`] / [`as_internal_async`]. Everyone else gets the same
//! `ResourceNotFoundException` as for a stream that does not exist, and
//! ListStreams leaves it out.

use std::cell::Cell;
use std::future::Future;

/// The start of every internal stream's name.
pub const INTERNAL_NAME_PREFIX: &str = "runnel!";

thread_local! {
    static INTERNAL_THREAD: Cell<bool> = const { Cell::new(false) };
}

tokio::task_local! {
    static INTERNAL_TASK: ();
}

/// Whether `name` names an internal stream.
pub fn is_internal_name(name: &str) -> bool {
    name.starts_with(INTERNAL_NAME_PREFIX)
}

/// Runs synchronous service calls (create, delete, ListShards,
/// GetShardIterator, GetRecords) as an internal caller.
pub fn as_internal<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            INTERNAL_THREAD.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(INTERNAL_THREAD.with(|c| c.replace(true)));
    f()
}

/// Runs an async service call (PutRecords) as an internal caller.
pub async fn as_internal_async<F: Future>(f: F) -> F::Output {
    INTERNAL_TASK.scope((), f).await
}

pub(crate) fn internal_caller() -> bool {
    INTERNAL_THREAD.with(Cell::get) || INTERNAL_TASK.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_restored() {
        assert!(!internal_caller());
        as_internal(|| {
            assert!(internal_caller());
            as_internal(|| assert!(internal_caller()));
            assert!(internal_caller());
        });
        assert!(!internal_caller());
    }

    #[tokio::test]
    async fn async_scope() {
        assert!(!internal_caller());
        as_internal_async(async {
            tokio::task::yield_now().await;
            assert!(internal_caller());
        })
        .await;
        assert!(!internal_caller());
    }

    #[test]
    fn users_cannot_spell_internal_names() {
        let mut v = crate::validate::Violations::new();
        v.stream_name("streamName", Some("runnel!firehose!x"));
        assert!(!v.is_empty());
    }
}
