//! Rust names for model names, and first-sentence doc comments.

/// `DeliveryStreamARN` → `delivery_stream_arn`, `SizeInMBs` → `size_in_mbs`,
/// `S3BackupMode` → `s3_backup_mode`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next = chars.get(i + 1).copied();
            let after = chars.get(i + 2).copied();
            // `MBs`, `ARNs`: a lone `s` after an acronym is a plural, not a word.
            let plural = next == Some('s') && after.is_none_or(|a| !a.is_ascii_lowercase());
            let starts_word = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase()
                    && next.is_some_and(|n| n.is_ascii_lowercase())
                    && !plural);
            if starts_word && !out.ends_with('_') {
                out.push('_');
            }
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if is_keyword(&out) {
        format!("r#{out}")
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("n{out}")
    } else {
        out
    }
}

/// A type name: the shape name with a capital first letter, kept clear of
/// the prelude names generated code uses.
pub fn type_name(shape: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in shape.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    match out.as_str() {
        "Option"
        | "Result"
        | "String"
        | "Vec"
        | "Box"
        | "Default"
        | "Self"
        | "Blob"
        | "Timestamp"
        | "Path"
        | "Validate"
        | "ConstraintViolation"
        | "BTreeMap"
        | "Pattern" => {
            format!("{out}Shape")
        }
        _ => out,
    }
}

/// `HADOOP_SNAPPY` → `HadoopSnappy`, `G.1X` → `G1x`, `DirectPut` → `DirectPut`.
pub fn variant_name(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()) {
        if part.is_empty() {
            continue;
        }
        let shout = !part.chars().any(|c| c.is_ascii_lowercase());
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            for c in chars {
                out.push(if shout { c.to_ascii_lowercase() } else { c });
            }
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if out == "Self" {
        out.push('_');
    }
    out
}

/// The AWS path segment of a member: its name with a lower-case first letter.
pub fn aws_member(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "macro"
            | "override"
            | "priv"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
            | "try"
            | "gen"
    )
}

/// Longest doc line kept; longer first sentences are cut at a word.
const DOC_CHARS_MAX: usize = 200;

/// The first sentence of model documentation, HTML stripped, or `None`.
pub fn first_sentence(html: &str) -> Option<String> {
    let mut text = String::new();
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(t), '>') => {
                // Inline tags join their text; block tags separate words.
                let name = t
                    .trim_start_matches('/')
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                if !matches!(name, "code" | "a" | "b" | "i" | "em" | "strong") {
                    text.push(' ');
                }
                tag = None;
            }
            (Some(t), _) => t.push(c),
            (None, _) => text.push(c),
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for w in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
        let abbreviation = matches!(w, "e.g." | "i.e." | "etc." | "vs.");
        if w.ends_with('.') && !abbreviation {
            break;
        }
    }
    if out.is_empty() {
        return None;
    }
    if out.chars().count() > DOC_CHARS_MAX {
        let cut: String = out.chars().take(DOC_CHARS_MAX).collect();
        let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a);
        out = format!("{cut} …");
    }
    // Square brackets would read as intra-doc links; backslashes as escapes.
    Some(out.replace('[', "(").replace(']', ")").replace('\\', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_names() {
        assert_eq!(snake_case("DeliveryStreamARN"), "delivery_stream_arn");
        assert_eq!(snake_case("SizeInMBs"), "size_in_mbs");
        assert_eq!(snake_case("S3BackupMode"), "s3_backup_mode");
        assert_eq!(snake_case("HECEndpointType"), "hec_endpoint_type");
        assert_eq!(snake_case("KMSKeyARN"), "kms_key_arn");
        assert_eq!(snake_case("Type"), "r#type");
        assert_eq!(snake_case("RoleARN"), "role_arn");
        assert_eq!(snake_case("MSKClusterARN"), "msk_cluster_arn");
    }

    #[test]
    fn variants() {
        assert_eq!(variant_name("HADOOP_SNAPPY"), "HadoopSnappy");
        assert_eq!(variant_name("DirectPut"), "DirectPut");
        assert_eq!(variant_name("G.1X"), "G1x");
        assert_eq!(variant_name("SSE-KMS"), "SseKms");
        assert_eq!(variant_name("1day"), "V1day");
    }

    #[test]
    fn docs() {
        assert_eq!(
            first_sentence("<p>The name of the stream, e.g. <code>a</code>. More text.</p>"),
            Some("The name of the stream, e.g. a.".into())
        );
        assert_eq!(first_sentence("<p></p>"), None);
    }
}
