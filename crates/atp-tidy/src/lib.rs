//! Repository checks that need more than a few lines of logic; the tidy tests themselves live
//! in `tests/tidy.rs` and call into this library.
//!
//! [`module_cycles`] finds import cycles between the modules of one crate. It reads the `use`
//! graph, not the compiler's: a module's edges are the `crate::…` and `super::…` paths in its
//! source, outside comments and outside its `#[cfg(test)]` part, each resolved to the longest
//! module path it names, or, for a name re-exported at the crate root (`pub use x::Name`), to
//! the module that defines it. Edges to a module's own ancestors and descendants do not count:
//! a parent declares and re-exports its children, and a child sees its parent's items. That is
//! enough to catch the loops that make a change to one file drag in its neighbours.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate: `[]` is the root, `["sqlite", "writer"]` is `sqlite::writer`.
pub type ModulePath = Vec<String>;

/// The modules of the crate whose sources are under `src`, with their files. `src/bin/` holds
/// other crates and is skipped.
pub fn crate_modules(src: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path != src.join("bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let Ok(rel) = path.strip_prefix(src) else { continue };
            let mut segs: ModulePath =
                rel.with_extension("").iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(segs.last().map(String::as_str), Some("lib" | "main" | "mod")) {
                segs.pop();
            }
            out.insert(segs, path);
        }
    }
    out
}

/// The source that counts for imports: comments removed, and everything from the first
/// `#[cfg(test)]` on cut off (test modules may import what they test from anywhere).
fn import_source(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths that follow `prefix` in `text`: `crate::a::B` gives `[a, B]`, and a group
/// `crate::{a::X, B}` gives `[a, X]` and `[B]` (only the first level of a group).
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (start, _) in text.match_indices(prefix) {
        if text[..start].chars().next_back().is_some_and(is_ident) {
            continue; // `my_crate::` is not `crate::`
        }
        let rest = &text[start + prefix.len()..];
        let (segs, tail) = read_path(rest);
        if let Some(group) = tail.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let (inner, _) = read_path(item.trim_start());
                if !inner.is_empty() {
                    out.push(segs.iter().cloned().chain(inner).collect());
                }
            }
        } else if !segs.is_empty() {
            out.push(segs);
        }
    }
    out
}

/// Identifiers separated by `::` at the start of `s`, and what follows them (after a trailing
/// `::`, so that a group's `{` is next).
fn read_path(s: &str) -> (Vec<String>, &str) {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if len == 0 {
            return (segs, rest);
        }
        segs.push(rest[..len].to_owned());
        rest = &rest[len..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => return (segs, rest),
        }
    }
}

/// Names the crate root re-exports from one of its modules: `pub use kel::{A, B as C}` maps
/// `A` and `C` to `kel`.
fn root_reexports(
    root_source: &str,
    modules: &BTreeMap<ModulePath, PathBuf>,
) -> BTreeMap<String, ModulePath> {
    let mut out = BTreeMap::new();
    for stmt in root_source.split(';') {
        let Some(body) = stmt.trim().strip_prefix("pub use ") else { continue };
        let body = body.trim_start_matches("crate::").trim_start_matches("self::");
        let (segs, tail) = read_path(body);
        let Some(module) = longest_module(&segs, modules) else { continue };
        let names: Vec<String> = match tail.strip_prefix('{') {
            Some(group) => group
                .trim_end_matches('}')
                .split(',')
                .filter_map(|item| item.split(" as ").last())
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            None => {
                let last = segs.last().cloned().unwrap_or_default();
                vec![tail.split(" as ").nth(1).map_or(last, |n| n.trim().to_owned())]
            }
        };
        for name in names {
            out.insert(name, module.clone());
        }
    }
    out
}

fn longest_module(segs: &[String], modules: &BTreeMap<ModulePath, PathBuf>) -> Option<ModulePath> {
    (1..=segs.len()).rev().map(|k| segs[..k].to_vec()).find(|p| modules.contains_key(p))
}

/// The module graph of one crate: for every module, the modules it imports.
pub fn module_graph(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let modules = crate_modules(src);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let reexports = modules
        .get(&Vec::new())
        .map(|root| root_reexports(&import_source(&read(root)), &modules))
        .unwrap_or_default();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = import_source(&read(file));
        let mut targets = BTreeSet::new();
        for segs in paths_after(&text, "crate::") {
            let target = longest_module(&segs, &modules)
                .or_else(|| segs.first().and_then(|first| reexports.get(first).cloned()));
            targets.extend(target);
        }
        let parent: ModulePath =
            module.iter().take(module.len().saturating_sub(1)).cloned().collect();
        for segs in paths_after(&text, "super::") {
            let full: ModulePath = parent.iter().cloned().chain(segs).collect();
            targets.extend(longest_module(&full, &modules).filter(|t| t.len() > parent.len()));
        }
        let related = |t: &ModulePath| t.starts_with(module) || module.starts_with(t);
        targets.retain(|t| !related(t));
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The import cycles of a module graph: each strongly connected component of more than one
/// module, its modules sorted.
pub fn cycles(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Vec<Vec<ModulePath>> {
    // Kosaraju: finishing order on the graph, then components on the reversed graph.
    let nodes: Vec<&ModulePath> = graph.keys().collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for start in &nodes {
        if seen.contains(*start) {
            continue;
        }
        let mut stack = vec![(*start, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !seen.insert(node) {
                continue;
            }
            stack.push((node, true));
            for next in graph.get(node).into_iter().flatten() {
                if !seen.contains(next) && graph.contains_key(next) {
                    stack.push((next, false));
                }
            }
        }
    }
    let mut reversed: BTreeMap<&ModulePath, Vec<&ModulePath>> = BTreeMap::new();
    for (from, tos) in graph {
        for to in tos {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for start in order.into_iter().rev() {
        if assigned.contains(start) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![start];
        assigned.insert(start);
        while let Some(node) = stack.pop() {
            component.push(node.clone());
            for prev in reversed.get(node).into_iter().flatten() {
                if assigned.insert(*prev) {
                    stack.push(prev);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

/// The import cycles between the modules of the crate under `src`.
pub fn module_cycles(src: &Path) -> Vec<Vec<ModulePath>> {
    cycles(&module_graph(src))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_crate(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "atp-tidy-cycles-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir)).ok();
            std::fs::write(path, text).ok();
        }
        dir
    }

    fn names(cycles: &[Vec<ModulePath>]) -> Vec<Vec<String>> {
        cycles.iter().map(|c| c.iter().map(|m| m.join("::")).collect()).collect()
    }

    #[test]
    fn a_ring_through_a_root_reexport_and_a_group_is_found() {
        let src = fake_crate(&[
            ("lib.rs", "mod a; mod b; mod c;\npub use c::Thing;\n"),
            ("a.rs", "use crate::{b::B, Other};\n"),
            ("b.rs", "// use crate::a; in a comment does not count\nuse crate::Thing;\n"),
            ("c.rs", "pub struct Thing; fn f() { crate::a::g() }\n"),
        ]);
        assert_eq!(names(&module_cycles(&src)), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn parents_children_tests_and_one_way_edges_are_not_cycles() {
        let src = fake_crate(&[
            ("lib.rs", "mod s; mod t;\n"),
            ("s/mod.rs", "mod w; mod r; pub use w::W; fn f() { crate::t::x() }\n"),
            ("s/w.rs", "use super::r::R; use super::W;\n"),
            ("s/r.rs", "use crate::s::W;\n#[cfg(test)]\nmod tests { use super::super::w; }\n"),
            ("t.rs", "pub fn x() {}\n"),
        ]);
        // w -> r is one way (r's import of w is in its tests; r -> s is its parent).
        assert!(module_cycles(&src).is_empty(), "{:?}", module_cycles(&src));
        let graph = module_graph(&src);
        let w = vec!["s".to_owned(), "w".to_owned()];
        assert!(graph[&w].contains(&vec!["s".to_owned(), "r".to_owned()]), "{graph:?}");
    }
}
