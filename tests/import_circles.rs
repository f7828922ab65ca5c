//! No two files of `src/` import each other, directly or through others: settings are plain
//! data the domain reads, the request record sits below what acts on it. The imports are read
//! as text (`crate::…` and `super::…` paths outside comments and test modules), each resolved
//! to the file of the longest module path it names; a circle fails with the files in it.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `lib.rs`, `main.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// The module paths a file's code names, as written after `crate::` or `super::`.
fn paths_named(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let code: String = code
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let segment = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| p.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut named = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        named.push(segment(&code[i + "crate::".len()..]));
    }
    for (i, _) in code.match_indices("super::") {
        // Only the first `super::` of a run.
        if code[..i].ends_with("super::") {
            continue;
        }
        let mut rest = &code[i..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        // `super` of `a/b.rs` is `a`, of `a/mod.rs` the crate: one module up either way.
        let keep = module.len().saturating_sub(ups);
        let mut path: Vec<String> = module[..keep].to_vec();
        path.extend(segment(rest));
        named.push(path);
    }
    named
}

#[test]
fn no_file_of_src_imports_itself_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|f| (module_of(&src, f), f.clone())).collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).filter(|f| !module_of(&src, f).is_empty()))
    };
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let code = std::fs::read_to_string(file).unwrap();
        let module = module_of(&src, file);
        let targets = edges.entry(file.clone()).or_default();
        for path in paths_named(&code, &module) {
            if let Some(target) = resolve(&path).filter(|t| *t != file) {
                targets.insert(target.clone());
            }
        }
    }
    // A circle: the files that reach each other, for each file that reaches itself.
    let circles: BTreeSet<String> = edges
        .keys()
        .filter(|f| reaches(&edges, f, f))
        .map(|start| {
            let members: Vec<String> = edges
                .keys()
                .filter(|f| *f == start || (reaches(&edges, start, f) && reaches(&edges, f, start)))
                .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
                .collect();
            members.join(", ")
        })
        .collect();
    assert!(circles.is_empty(), "files of src/ that import each other: {circles:#?}");
    // The check reads what it should: the engine imports the store, and the store does not
    // import the engine.
    let engine = src.join("engine/mod.rs");
    assert!(edges[&engine].contains(&src.join("store.rs")), "{:?}", edges[&engine]);
}

/// Whether an import path leads from `from` to `to`.
fn reaches(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, from: &PathBuf, to: &PathBuf) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&PathBuf> = edges.get(from).into_iter().flatten().collect();
    while let Some(next) = stack.pop() {
        if next == to {
            return true;
        }
        if seen.insert(next) {
            stack.extend(edges.get(next).into_iter().flatten());
        }
    }
    false
}
