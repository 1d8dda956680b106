//! Generates Rust model code from a botocore `service-2.json`: one struct
//! per structure shape, one strict enum per enum string shape, and a
//! `runnel_aws::Validate` impl per input-side structure that checks the
//! model's `required`, `min`/`max` and `pattern` constraints.
//!
//! Only shapes reachable from the selected operations are generated, so a
//! big model (Glue) costs only what a service uses. What is and is not
//! generated, and why, is in docs/codegen.md.

pub mod config;
mod emit;
pub mod json;
mod names;

use std::collections::{BTreeMap, BTreeSet};

use json::Json;

/// What to generate from one model.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The model's path as written in the generated header (relative to the workspace).
    pub model_path: &'a str,
    /// The model's text.
    pub model: &'a str,
    /// Operations to generate; `None` = every operation of the model.
    pub ops: Option<&'a [String]>,
}

/// A model with the selected operations resolved.
pub(crate) struct Model<'a> {
    pub shapes: BTreeMap<&'a str, &'a Json>,
    pub ops: Vec<(&'a str, &'a Json)>,
    pub metadata: &'a Json,
    /// Every shape reachable from the selected operations.
    pub closure: BTreeSet<&'a str>,
    /// Shapes reachable from the operations' inputs: all their members are
    /// `Option` (a missing required member must reach validation, to be
    /// reported as AWS does, not fail deserialization) and they get a
    /// `Validate` impl.
    pub input_side: BTreeSet<&'a str>,
}

/// The generated Rust source.
pub fn generate(req: &Request<'_>) -> Result<String, String> {
    let root = Json::parse(req.model)?;
    let model = Model::resolve(&root, req.ops)?;
    emit::emit(&model, req)
}

impl<'a> Model<'a> {
    fn resolve(root: &'a Json, wanted: Option<&'a [String]>) -> Result<Self, String> {
        let shapes: BTreeMap<&str, &Json> = root
            .get("shapes")
            .ok_or("model has no shapes")?
            .members()
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let all_ops = root.get("operations").ok_or("model has no operations")?;
        let ops: Vec<(&str, &Json)> = match wanted {
            None => all_ops
                .members()
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect(),
            Some(names) => {
                let mut ops = Vec::new();
                for name in names {
                    let op = all_ops
                        .get(name)
                        .ok_or_else(|| format!("the model has no operation {name}"))?;
                    ops.push((name.as_str(), op));
                }
                ops.sort_by_key(|(n, _)| *n);
                ops.dedup_by_key(|(n, _)| *n);
                ops
            }
        };
        let mut model = Model {
            shapes,
            ops,
            metadata: root.get("metadata").unwrap_or(&Json::Null),
            closure: BTreeSet::new(),
            input_side: BTreeSet::new(),
        };
        let mut closure = BTreeSet::new();
        let mut input_side = BTreeSet::new();
        for (_, op) in &model.ops {
            if let Some(input) = op.get("input").and_then(|i| i.str("shape")) {
                model.walk(input, &mut input_side)?;
            }
            for key in ["input", "output"] {
                if let Some(s) = op.get(key).and_then(|i| i.str("shape")) {
                    model.walk(s, &mut closure)?;
                }
            }
            for e in op.get("errors").map(Json::items).unwrap_or(&[]) {
                if let Some(s) = e.str("shape") {
                    model.walk(s, &mut closure)?;
                }
            }
        }
        model.closure = closure;
        model.input_side = input_side;
        Ok(model)
    }

    pub fn shape(&self, name: &str) -> Result<&'a Json, String> {
        self.shapes
            .get(name)
            .copied()
            .ok_or_else(|| format!("the model refers to a missing shape {name}"))
    }

    pub fn kind(&self, name: &str) -> Result<&'a str, String> {
        self.shape(name)?
            .str("type")
            .ok_or_else(|| format!("shape {name} has no type"))
    }

    /// The shapes a shape refers to: members, list member, map key and value.
    pub fn children(&self, name: &str) -> Result<Vec<&'a str>, String> {
        let s = self.shape(name)?;
        let mut out = Vec::new();
        for (_, m) in s.get("members").map(Json::members).unwrap_or(&[]) {
            out.extend(m.str("shape"));
        }
        for key in ["member", "key", "value"] {
            if let Some(t) = s.get(key).and_then(|m| m.str("shape")) {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn walk(&self, name: &str, seen: &mut BTreeSet<&'a str>) -> Result<(), String> {
        let (key, _) = self
            .shapes
            .get_key_value(name)
            .ok_or_else(|| format!("the model refers to a missing shape {name}"))?;
        if !seen.insert(key) {
            return Ok(());
        }
        for child in self.children(name)? {
            self.walk(child, seen)?;
        }
        Ok(())
    }

    pub fn is_enum(&self, name: &str) -> bool {
        self.shapes
            .get(name)
            .is_some_and(|s| s.str("type") == Some("string") && s.get("enum").is_some())
    }

    /// Structure members: (member name, member JSON, target shape).
    pub fn members(&self, name: &str) -> Result<Vec<(&'a str, &'a Json, &'a str)>, String> {
        let s = self.shape(name)?;
        let mut out = Vec::new();
        for (m, mj) in s.get("members").map(Json::members).unwrap_or(&[]) {
            let target = mj
                .str("shape")
                .ok_or_else(|| format!("member {name}.{m} has no shape"))?;
            out.push((m.as_str(), mj, target));
        }
        Ok(out)
    }

    pub fn required(&self, name: &str) -> BTreeSet<&'a str> {
        self.shapes
            .get(name)
            .and_then(|s| s.get("required"))
            .map(Json::items)
            .unwrap_or(&[])
            .iter()
            .filter_map(Json::as_str)
            .collect()
    }

    /// Whether `from` reaches `to` through structure members that hold a
    /// structure directly (not through a list or map): such a member needs a `Box`.
    pub fn reaches_directly(&self, from: &str, to: &str) -> bool {
        let mut stack = vec![from.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if !seen.insert(s.clone()) {
                continue;
            }
            for (_, _, t) in self.members(&s).unwrap_or_default() {
                if self.kind(t).ok() == Some("structure") {
                    stack.push(t.to_string());
                }
            }
        }
        false
    }
}

/// Java regular-expression features the `regex` crate lacks. Patterns that
/// use them are not checked (the generated file lists them).
pub fn pattern_supported(p: &str) -> bool {
    let unsupported = ["(?=", "(?!", "(?<=", "(?<!", "*+", "++", "?+", "\\G", "\\Z"];
    !unsupported.iter().any(|u| p.contains(u)) && !(1..=9).any(|d| p.contains(&format!("\\{d}")))
}
