//! Where a finished buffer goes. Every destination implements [`ObjectSink`]
//! (this slice has one: a local directory standing in for an S3 bucket), so
//! buffering, checkpointing and retry are written once, above the sinks.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a sink did not take an object. Every failure is retried by the
/// delivery task (after the supervisor's backoff) from the persisted
/// position, so no record is lost; `retryable` says whether waiting can help.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write s3://{bucket}/{key}: {source}")]
    Io {
        bucket: String,
        key: String,
        source: std::io::Error,
    },
    #[error("the key {key} cannot be stored in a local directory bucket")]
    BadKey { key: String },
}

impl SinkError {
    pub fn retryable(&self) -> bool {
        matches!(self, SinkError::Io { .. })
    }
}

/// Takes whole objects; an object is in place (and durable) when
/// `put_object` returns `Ok`. Writing the same key twice replaces it.
pub trait ObjectSink: Send + Sync {
    fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), SinkError>;
}

/// Bucket `B` is the directory `<root>/B/`, key `K` the file `<root>/B/K`.
/// The object is written to a name starting with `.` in the key's
/// directory, fsynced, renamed into place and the directory fsynced: a
/// reader never sees half an object, and a crash leaves at most a
/// temporary file behind.
pub struct LocalDirectory {
    root: PathBuf,
}

impl LocalDirectory {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirectory { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl ObjectSink for LocalDirectory {
    fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), SinkError> {
        if !super::keys::key_is_local_safe(key) || !super::keys::key_is_local_safe(bucket) {
            return Err(SinkError::BadKey { key: key.into() });
        }
        let io = |source| SinkError::Io {
            bucket: bucket.into(),
            key: key.into(),
            source,
        };
        let path = self.root.join(bucket).join(key);
        let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
            return Err(SinkError::BadKey { key: key.into() });
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(file);
        temp_name.push(".tmp");
        let temp = dir.join(temp_name);
        let mut f = fs::File::create(&temp).map_err(io)?;
        f.write_all(body).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        fs::rename(&temp, &path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_land_whole_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirectory::new(dir.path());
        sink.put_object("b", "2026/01/02/03/x-1", b"one").unwrap();
        sink.put_object("b", "2026/01/02/03/x-1", b"two").unwrap();
        let d = dir.path().join("b/2026/01/02/03");
        assert_eq!(fs::read(d.join("x-1")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x-1")]);
        assert!(matches!(
            sink.put_object("b", "../x", b""),
            Err(SinkError::BadKey { .. })
        ));
    }
}
