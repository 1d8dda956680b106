//! `Validate` impls: the model's constraints as calls to `runnel_aws::check`.

use std::collections::BTreeSet;

use super::{bound, float_opt, opt, Emitter};
use crate::names::{aws_member, snake_case, type_name};

/// Whether a value of `name` may need a `Display`-based rendering in a message.
fn displayable(kind: &str) -> bool {
    matches!(
        kind,
        "string" | "integer" | "long" | "float" | "double" | "boolean"
    )
}

impl<'a> Emitter<'_, 'a> {
    /// Whether a value of this shape has any constraint to check.
    pub(super) fn has_checks(&self, name: &str, seen: &mut BTreeSet<String>) -> bool {
        let Ok(s) = self.m.shape(name) else {
            return false;
        };
        match s.str("type") {
            Some("string") => {
                !self.m.is_enum(name)
                    && (bound(s, "min").is_some()
                        || bound(s, "max").is_some()
                        || s.str("pattern")
                            .is_some_and(|p| self.patterns.contains_key(p)))
            }
            Some("blob" | "integer" | "long" | "float" | "double") => {
                bound(s, "min").is_some() || bound(s, "max").is_some()
            }
            Some("list") => {
                bound(s, "min").is_some()
                    || bound(s, "max").is_some()
                    || s.get("member")
                        .and_then(|m| m.str("shape"))
                        .is_some_and(|t| self.item_checked(t, seen))
            }
            Some("map") => {
                bound(s, "min").is_some()
                    || bound(s, "max").is_some()
                    || ["key", "value"].iter().any(|k| {
                        s.get(k).and_then(|m| m.str("shape")).is_some_and(|t| {
                            self.m.kind(t) == Ok("string") && self.has_checks(t, seen)
                        })
                    })
            }
            Some("structure") => {
                if !seen.insert(name.to_string()) {
                    return false;
                }
                !self.m.required(name).is_empty()
                    || self
                        .m
                        .members(name)
                        .unwrap_or_default()
                        .iter()
                        .any(|(_, _, t)| self.has_checks(t, seen))
            }
            _ => false,
        }
    }

    /// Whether list items of this shape are checked (structures and strings only).
    fn item_checked(&self, item: &str, seen: &mut BTreeSet<String>) -> bool {
        matches!(self.m.kind(item), Ok("structure" | "string")) && self.has_checks(item, seen)
    }

    pub(super) fn validate_impl(&mut self, name: &'a str) -> Result<(), String> {
        let required = self.m.required(name);
        let mut body = String::new();
        for (mname, _, target) in self.m.members(name)? {
            let is_required = required.contains(mname);
            let checked = self.has_checks(target, &mut BTreeSet::new());
            if !is_required && !checked {
                continue;
            }
            let field = snake_case(mname);
            let sensitive = self.m.shape(target)?.flag("sensitive");
            body.push_str(&format!(
                "        let p = path.field(\"{}\");\n",
                aws_member(mname)
            ));
            if is_required {
                body.push_str(&format!(
                    "        check::required(&self.{field}, &p, errors);\n"
                ));
            }
            if checked {
                body.push_str(&format!("        if let Some(v) = &self.{field} {{\n"));
                self.value_checks(target, sensitive, &mut body)?;
                body.push_str("        }\n");
            }
        }
        let ty = type_name(name);
        self.out.push('\n');
        if body.is_empty() {
            self.out.push_str(&format!(
                "impl Validate for {ty} {{\n    fn validate(&self, _path: &Path<'_>, _errors: &mut Vec<ConstraintViolation>) {{}}\n}}\n"
            ));
        } else {
            self.out.push_str(&format!(
                "impl Validate for {ty} {{\n    fn validate(&self, path: &Path<'_>, errors: &mut Vec<ConstraintViolation>) {{\n{body}    }}\n}}\n"
            ));
        }
        Ok(())
    }

    /// Checks of `v` (a `&T` of shape `name`) at path `p`.
    fn value_checks(
        &mut self,
        name: &str,
        sensitive: bool,
        out: &mut String,
    ) -> Result<(), String> {
        let s = self.m.shape(name)?;
        let (min, max) = (bound(s, "min"), bound(s, "max"));
        let i = "            ";
        match self.m.kind(name)? {
            "string" => {
                if min.is_some() || max.is_some() {
                    out.push_str(&format!(
                        "{i}check::str_len(v, {}, {}, {sensitive}, &p, errors);\n",
                        opt(&min),
                        opt(&max)
                    ));
                }
                if let Some(pat) = s.str("pattern").and_then(|p| self.patterns.get(p)) {
                    out.push_str(&format!(
                        "{i}check::pattern(v, &{pat}, {sensitive}, &p, errors);\n"
                    ));
                }
            }
            "blob" => out.push_str(&format!(
                "{i}check::blob_len(v, {}, {}, &p, errors);\n",
                opt(&min),
                opt(&max)
            )),
            kind @ ("integer" | "long") => out.push_str(&format!(
                "{i}check::range_int({}, {}, {}, &p, errors);\n",
                if kind == "long" {
                    "*v"
                } else {
                    "i64::from(*v)"
                },
                opt(&min),
                opt(&max)
            )),
            kind @ ("float" | "double") => out.push_str(&format!(
                "{i}check::range_float({}, {}, {}, &p, errors);\n",
                if kind == "double" {
                    "*v"
                } else {
                    "f64::from(*v)"
                },
                float_opt(&min),
                float_opt(&max)
            )),
            "structure" => out.push_str(&format!("{i}v.validate(&p, errors);\n")),
            "list" => self.list_checks(name, out)?,
            "map" => self.map_checks(name, out)?,
            _ => {}
        }
        Ok(())
    }

    fn list_checks(&mut self, name: &str, out: &mut String) -> Result<(), String> {
        let s = self.m.shape(name)?;
        let i = "            ";
        let item = s
            .get("member")
            .and_then(|m| m.str("shape"))
            .ok_or_else(|| format!("list {name} has no member"))?;
        let item_kind = self.m.kind(item)?;
        let show = if displayable(item_kind) {
            "check::show_list(v)"
        } else {
            "check::show_opaque_list(v)"
        };
        let (min, max) = (bound(s, "min"), bound(s, "max"));
        if min.is_some() || max.is_some() {
            out.push_str(&format!(
                "{i}check::count(v.len(), {}, {}, || {show}, &p, errors);\n",
                opt(&min),
                opt(&max)
            ));
        }
        if !self.item_checked(item, &mut BTreeSet::new()) {
            return Ok(());
        }
        if item_kind == "structure" {
            out.push_str(&format!(
                "{i}for (n, item) in v.iter().enumerate() {{\n{i}    item.validate(&p.item(n), errors);\n{i}}}\n"
            ));
        } else {
            out.push_str(&format!("{i}let mut failed = Vec::new();\n"));
            out.push_str(&format!("{i}for item in v {{\n"));
            self.item_string_checks(item, "item", out)?;
            out.push_str(&format!("{i}}}\n"));
            out.push_str(&format!(
                "{i}check::items(\"Member\", failed, || {show}, &p, errors);\n"
            ));
        }
        Ok(())
    }

    fn map_checks(&mut self, name: &str, out: &mut String) -> Result<(), String> {
        let s = self.m.shape(name)?;
        let i = "            ";
        let key = s.get("key").and_then(|m| m.str("shape")).unwrap_or("");
        let value = s.get("value").and_then(|m| m.str("shape")).unwrap_or("");
        let show = if displayable(self.m.kind(value)?) && displayable(self.m.kind(key)?) {
            "check::show_map(v)"
        } else {
            "check::show_opaque_map(v)"
        };
        let (min, max) = (bound(s, "min"), bound(s, "max"));
        if min.is_some() || max.is_some() {
            out.push_str(&format!(
                "{i}check::count(v.len(), {}, {}, || {show}, &p, errors);\n",
                opt(&min),
                opt(&max)
            ));
        }
        for (what, shape, var) in [("Map keys", key, "k"), ("Map value", value, "val")] {
            if self.m.kind(shape)? == "string" && self.has_checks(shape, &mut BTreeSet::new()) {
                out.push_str(&format!("{i}let mut failed = Vec::new();\n"));
                let iter = if var == "k" { "v.keys()" } else { "v.values()" };
                out.push_str(&format!("{i}for {var} in {iter} {{\n"));
                self.item_string_checks(shape, var, out)?;
                out.push_str(&format!("{i}}}\n"));
                out.push_str(&format!(
                    "{i}check::items(\"{what}\", failed, || {show}, &p, errors);\n"
                ));
            } else if self.m.kind(shape)? == "structure"
                && self.has_checks(shape, &mut BTreeSet::new())
            {
                out.push_str(&format!(
                    "{i}// Structure map values are not checked (AWS's path form for them is not known).\n"
                ));
            }
        }
        Ok(())
    }

    fn item_string_checks(
        &mut self,
        shape: &str,
        var: &str,
        out: &mut String,
    ) -> Result<(), String> {
        let s = self.m.shape(shape)?;
        let i = "                ";
        let (min, max) = (bound(s, "min"), bound(s, "max"));
        if min.is_some() || max.is_some() {
            out.push_str(&format!(
                "{i}check::item_str({var}, {}, {}, &mut failed);\n",
                opt(&min),
                opt(&max)
            ));
        }
        if let Some(pat) = s.str("pattern").and_then(|p| self.patterns.get(p)) {
            out.push_str(&format!(
                "{i}check::item_pattern({var}, &{pat}, &mut failed);\n"
            ));
        }
        Ok(())
    }
}
