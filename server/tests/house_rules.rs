//! The house's layering, checked on the source tree itself so a change that breaks it
//! fails CI: engines speak only the contract (never the projector, the store or HTTP),
//! HTTP names no concrete engine, only the store writes SQL, the store does not reach up
//! into analytics, and the app's `model` and `ui` modules import one another without
//! cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

fn server_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Code lines only: comments (`//`, `//!`, `///`) say what the rules are about.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(i, line)| (i + 1, line))
}

/// The lines under `dir` (tests excepted) that contain any of `needles`.
fn offending_lines(dir: &Path, needles: &[&str], skip_tests: bool) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources(dir) {
        let is_test = path.file_name().is_some_and(|n| n == "tests.rs")
            || path.components().any(|c| c.as_os_str() == "tests");
        if skip_tests && is_test {
            continue;
        }
        for (number, line) in code_lines(&text) {
            if needles.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    found
}

#[test]
fn engines_speak_only_the_contract() {
    let engines = server_src().join("engines");
    let found = offending_lines(
        &engines,
        &["crate::projector", "crate::store", "crate::http"],
        false,
    );
    assert!(
        found.is_empty(),
        "engines reach past the contract:\n{}",
        found.join("\n")
    );
}

#[test]
fn http_names_no_concrete_engine() {
    let found = offending_lines(
        &server_src().join("http"),
        &[
            "engines::builtin",
            "engines::temporal",
            "BuiltinEngine",
            "TemporalSource",
        ],
        false,
    );
    assert!(
        found.is_empty(),
        "HTTP names an engine:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_store_holds_sql_and_it_does_not_reach_up_into_analytics() {
    let src = server_src();
    let store = src.join("store");
    let mut found = Vec::new();
    for (path, text) in sources(&src) {
        if path.starts_with(&store) {
            continue;
        }
        for (number, line) in code_lines(&text) {
            let sql = ["sqlx::", "SELECT ", "INSERT INTO", "DELETE FROM", " SET "]
                .iter()
                .any(|needle| line.contains(needle));
            if sql {
                found.push(format!("{}:{number}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside the store:\n{}",
        found.join("\n")
    );
    let upward = offending_lines(&store, &["crate::analytics", "crate::projector"], false);
    assert!(
        upward.is_empty(),
        "the store imports what sits above it:\n{}",
        upward.join("\n")
    );
}

/// The module path (below the app crate) of a source file: `ui/workflow_detail/mod.rs`
/// is `["ui", "workflow_detail"]`, `ui/parts.rs` is `["ui", "parts"]`.
fn module_of(root: &Path, path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(root).expect("under the root");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The first path segments named after `super::` (possibly several `super::`) and
/// `crate::`, each resolved to a path from the crate root: what a module refers to.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        let s = s.trim_start_matches('{');
        s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .filter(|name| !name.is_empty())
            .map(|name| vec![name.to_owned()])
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (_, line) in code_lines(text) {
        for (start, _) in line.match_indices("crate::") {
            let rest = &line[start + "crate::".len()..];
            let mut path: Vec<String> = Vec::new();
            for segment in rest.split("::").take(2) {
                let name = ident(segment);
                if name.is_empty() {
                    break;
                }
                path.extend(name);
            }
            if !path.is_empty() {
                out.push(path);
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("super::") {
            // A path's `super::super::...` chain, then what it names.
            let mut after = &rest[at..];
            let mut base = module.to_vec();
            while let Some(tail) = after.strip_prefix("super::") {
                base.pop();
                after = tail;
            }
            if let Some(list) = after.strip_prefix('{') {
                let inner = list.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let mut path = base.clone();
                    path.extend(ident(item.trim()));
                    out.push(path);
                }
            } else {
                let mut path = base.clone();
                path.extend(ident(after));
                out.push(path);
            }
            rest = after;
        }
    }
    out
}

/// A cycle among the modules under `within` (e.g. `["model"]`), if there is one: edges
/// go between the sibling modules that hold the two ends of a reference, so a child's
/// use of its parent (which declares it) is no cycle.
fn import_cycle(within: &[&str]) -> Option<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../app/src");
    let within: Vec<String> = within.iter().map(|s| s.to_string()).collect();
    let files: Vec<(Vec<String>, String)> = sources(&root.join(within.join("/")))
        .into_iter()
        .map(|(path, text)| (module_of(&root, &path), text))
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &files {
        if module.last().is_some_and(|name| name == "tests") {
            continue;
        }
        for target in references(module, text) {
            if !target.starts_with(&within) {
                continue;
            }
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common >= module.len() || common >= target.len() {
                continue; // one contains the other
            }
            let from = module[..=common].to_vec();
            let to = target[..=common].to_vec();
            if from != to && modules.contains(&to) {
                edges.entry(from).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|m| m.join("::")).collect();
            cycle.push(node.join("::"));
            return Some(cycle);
        }
        if !done.insert(node.clone()) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_apps_model_and_pages_import_one_another_without_cycles() {
    assert_eq!(import_cycle(&["model"]), None);
    assert_eq!(import_cycle(&["ui"]), None);
}

#[test]
fn the_cycle_finder_sees_a_cycle_between_siblings_and_none_from_a_child_to_its_parent() {
    let module = |path: &str| path.split('/').map(str::to_owned).collect::<Vec<_>>();
    // `ui/workflow_detail/gantt.rs` naming its siblings and its parent's parent.
    let found = references(
        &module("ui/workflow_detail/gantt"),
        "use super::state::PageState;\nuse super::super::clock::use_now;\nuse crate::model::Step;\nuse super::{sla_class, step::StepItem};",
    );
    assert_eq!(
        found,
        vec![
            module("ui/workflow_detail/state"),
            module("ui/clock"),
            module("model/Step"),
            module("ui/workflow_detail/sla_class"),
            module("ui/workflow_detail/step"),
        ]
    );
}
