//! The layering of the top crate, read from its sources: the graph of `crate::<module>` references
//! between its top-level modules has no cycle, no command imports another command, and
//! `commands/generate.rs` holds no numerics (it builds the library's `Sampler` and reports).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code lines of a file: comments and doc comments removed.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The top-level module a source file belongs to (`src/sample/pcfm.rs` → `sample`).
fn module_of(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap_or(path);
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::name` a text refers to.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `fieldflow_crate::`
        }
        let name: String = text[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let refs = crate_refs(&code(&file));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    graph
}

/// A cycle of the graph, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_module_graph_of_the_top_crate_has_no_cycle() {
    let graph = graph();
    for (module, deps) in &graph {
        eprintln!("{module} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(graph.contains_key("sample") && graph.contains_key("commands"), "modules found: {graph:?}");
    assert_eq!(find_cycle(&graph), None, "the top crate's modules import each other in a cycle");
    // The finder finds a planted cycle.
    let mut planted = graph.clone();
    planted.entry("sample".into()).or_default().insert("commands".into());
    assert!(find_cycle(&planted).is_some());
}

#[test]
fn no_command_imports_another_command() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let commands: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| s != "mod" && s != "progress")
        .collect();
    assert!(commands.len() >= 9, "{commands:?}");
    for file in &files {
        let text = code(file);
        for other in &commands {
            for pattern in [format!("super::{other}::"), format!("crate::commands::{other}::")] {
                assert!(!text.contains(&pattern), "{} uses {pattern}", file.display());
            }
        }
    }
}

#[test]
fn generate_holds_no_numerics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands/generate.rs");
    let text = code(&path);
    for numerics in ["fieldflow_pde", "ndarray", "rayon", "Constraint", "forward(", "solve(", "Tensor", "while "] {
        assert!(!text.contains(numerics), "commands/generate.rs mentions `{numerics}`");
    }
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 170, "commands/generate.rs has {lines} code lines");
}
