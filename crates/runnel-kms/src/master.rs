//! The master key that wraps every KMS key's material.

use std::io::Write;
use std::path::Path;

pub const MASTER_KEY_ENV: &str = "RUNNEL_MASTER_KEY";
pub const MASTER_KEY_FILE: &str = "master.key";
const MASTER_KEY_HEX_CHARS: usize = 64;

fn parse(text: &str, source: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != MASTER_KEY_HEX_CHARS {
        return Err(format!(
            "{source} must hold {MASTER_KEY_HEX_CHARS} hex characters (32 bytes), found {} characters",
            text.len()
        ));
    }
    let bytes = hex::decode(text).map_err(|e| format!("{source} is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{source} must decode to 32 bytes"))
}

/// `RUNNEL_MASTER_KEY` if set, else `<data_dir>/master.key`, created with a
/// fresh random key and mode 0600 when missing.
pub fn load_master_key(data_dir: &Path) -> Result<[u8; 32], String> {
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return parse(&text, MASTER_KEY_ENV);
    }
    let path = data_dir.join(MASTER_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    writeln!(file, "{}", hex::encode(key))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "created a new master key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_a_private_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_master_key(dir.path()).expect("create");
        let b = load_master_key(dir.path()).expect("reuse");
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(MASTER_KEY_FILE)).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn rejects_short_keys() {
        assert!(parse("abcd", "x").is_err());
        assert!(parse(&"zz".repeat(32), "x").is_err());
        assert!(parse(&"ab".repeat(32), "x").is_ok());
    }
}
