//! `cargo run -p runnel-codegen` regenerates every file listed in
//! `models/codegen.json`; `-- --check` only reports files that differ.
//! `-- MODEL [--ops A,B] --out FILE` generates one file ad hoc.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runnel_codegen::{config, generate, Request};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let check = args.iter().any(|a| a == "--check");
    let targets = if args.iter().any(|a| !a.starts_with("--") || a == "--out") {
        vec![ad_hoc(&args)?]
    } else {
        let path = root.join("models/codegen.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        config::parse(&text)?
    };
    let mut clean = true;
    for t in &targets {
        let model = std::fs::read_to_string(root.join(&t.model))
            .map_err(|e| format!("cannot read {}: {e}", t.model))?;
        let code = generate(&Request {
            model_path: &t.model,
            model: &model,
            ops: t.ops.as_deref(),
        })?;
        let out = root.join(&t.out);
        let old = std::fs::read_to_string(&out).unwrap_or_default();
        if old == code {
            println!("unchanged {}", t.out);
        } else if check {
            println!("differs   {}", t.out);
            clean = false;
        } else {
            std::fs::write(&out, code).map_err(|e| format!("cannot write {}: {e}", t.out))?;
            println!("wrote     {}", t.out);
        }
    }
    Ok(clean)
}

fn ad_hoc(args: &[String]) -> Result<config::Target, String> {
    let mut model = None;
    let mut ops = None;
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ops" => {
                let list = it.next().ok_or("--ops needs a list")?;
                ops = Some(list.split(',').map(str::to_string).collect());
            }
            "--out" => out = Some(it.next().ok_or("--out needs a path")?.clone()),
            "--check" => {}
            _ if model.is_none() => model = Some(a.clone()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(config::Target {
        model: model.ok_or("no model given")?,
        ops,
        out: out.ok_or("no --out given")?,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("runnel-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
