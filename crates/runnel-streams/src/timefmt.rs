//! ISO-8601 formatting of epoch milliseconds for error messages (no
//! calendar dependency needed for this one use).

pub fn iso8601(ms: u64) -> String {
    let (y, mo, d, h, m, s) = runnel_types::civil::utc(ms / 1000);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::iso8601(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
