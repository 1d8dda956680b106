//! `models/codegen.json`: which files are generated from which model and
//! operations. `cargo run -p runnel-codegen` regenerates them all.

use crate::json::Json;

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Model path, relative to the workspace root.
    pub model: String,
    /// Operations; `None` = all of the model's operations (`"ops": "*"`).
    pub ops: Option<Vec<String>>,
    /// Output path, relative to the workspace root.
    pub out: String,
}

pub fn parse(text: &str) -> Result<Vec<Target>, String> {
    let root = Json::parse(text)?;
    let mut out = Vec::new();
    for t in root.items() {
        let field = |k: &str| {
            t.str(k)
                .map(str::to_string)
                .ok_or_else(|| format!("codegen config entry without \"{k}\""))
        };
        let ops = match t.get("ops") {
            Some(Json::Str(s)) if s == "*" => None,
            Some(Json::Arr(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "operation names are strings".to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => return Err("\"ops\" is \"*\" or a list of operation names".into()),
        };
        out.push(Target {
            model: field("model")?,
            ops,
            out: field("out")?,
        });
    }
    Ok(out)
}
