//! The module graph has no cycles, and data flows one way (rig file → plan → run → run folder →
//! analysis → presentation → commands): no module imports one that imports it back, or one of
//! a later stage.
//!
//! The graph is read from the sources, as a newcomer would: an edge from a module to every
//! module its `crate::` and `super::` paths name (tests left out), and from a module to each of
//! its children, which it holds. A child's paths to its own ancestors are not edges: a sensor
//! implementing the trait its parent declares is the parent's design, not a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path ("sensor::ina219", "" for the crate root) → its source text, tests removed.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// Every path after `crate::` or `super::` in `code`, with `{…}` groups expanded, as
/// (`"crate"` or `"super"`, segments).
fn paths(code: &str) -> Vec<(&'static str, Vec<String>)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (root, token) in [("crate", "crate::"), ("super", "super::")] {
        let mut from = 0;
        while let Some(found) = code[from..].find(token) {
            let at = from + found;
            from = at + token.len();
            let before = at.checked_sub(1).map(|i| bytes[i] as char);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for segments in expand(&code[from..]) {
                out.push((root, segments));
            }
        }
    }
    out
}

/// The paths a `use` tail such as `a::b::{c, d::e}` or `a::b::C` names.
fn expand(tail: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = tail;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                return group_items(group)
                    .into_iter()
                    .flat_map(|item| {
                        expand(item).into_iter().map(|mut tail| {
                            let mut full = prefix.clone();
                            full.append(&mut tail);
                            full
                        })
                    })
                    .collect();
            }
            return vec![prefix];
        }
        rest = &rest[ident.len()..];
        if ident != "self" {
            prefix.push(ident);
        }
        match rest.strip_prefix("::") {
            Some(more) => rest = more,
            None => return vec![prefix],
        }
    }
}

/// The comma-separated items of a `{…}` group (`text` starts after its `{`), nested groups
/// kept whole.
fn group_items(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(text[start..i].trim());
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The longest module of `known` that `segments` starts with.
fn resolve(known: &BTreeMap<String, String>, segments: &[String]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|m| known.contains_key(m))
}

fn is_within(module: &str, ancestor: &str) -> bool {
    ancestor.is_empty() || module == ancestor || module.starts_with(&format!("{ancestor}::"))
}

fn graph(known: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in known {
        let parent: Vec<String> = module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        let targets = edges.entry(module.clone()).or_default();
        for (root, segments) in paths(code) {
            let full = match root {
                "crate" => segments,
                _ => {
                    // `super::super::x`: one level up per further `super`.
                    let ups = segments.iter().take_while(|s| *s == "super").count();
                    let Some(base) = parent.len().checked_sub(ups) else {
                        continue;
                    };
                    parent[..base]
                        .iter()
                        .cloned()
                        .chain(segments.into_iter().skip(ups))
                        .collect()
                }
            };
            let Some(target) = resolve(known, &full) else {
                continue;
            };
            if !is_within(module, &target) && !is_within(&target, module) {
                targets.insert(target);
            }
        }
        if !module.is_empty() {
            edges
                .entry(parent.join("::"))
                .or_default()
                .insert(module.clone());
        }
    }
    edges
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The workspace's crates point one way: a crate under `crates/` is below the root crate, so
/// it depends on no crate above it — the root, or any crate outside `crates/` — (its tests
/// then build without TensorFlow Lite); a sibling under `crates/` only as a dev-dependency.
#[test]
fn no_crate_depends_on_one_above_it() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = parsed.get(table).and_then(|t| t.as_table()) else {
                continue;
            };
            for (name, spec) in deps {
                let path = spec.get("path").and_then(|p| p.as_str());
                let sibling = path.is_some_and(|p| p.starts_with("../") && !p.contains("../.."));
                let allowed = match path {
                    None => !name.starts_with("joulebench"),
                    Some(_) => sibling && table == "dev-dependencies",
                };
                assert!(
                    allowed,
                    "{}: {table} names {name}, a crate of this workspace",
                    manifest.display()
                );
            }
        }
        seen += 1;
    }
    assert!(seen >= 1, "no crates under {}", crates.display());
}

#[test]
fn the_module_graph_has_no_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        sources.push(entry.unwrap().path().join("src"));
    }
    let mut found = Vec::new();
    let mut edges = BTreeMap::new();
    for src in &sources {
        let known = modules(src);
        let crate_edges = graph(&known);
        found.extend(cycles(&crate_edges));
        edges.extend(crate_edges);
    }
    assert!(
        edges.contains_key("cli::run") && edges.contains_key("sensor::ina219"),
        "the reader found no modules in {sources:?}"
    );
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let links: Vec<String> = component
                .iter()
                .map(|m| {
                    let into: Vec<&str> = edges[m]
                        .iter()
                        .filter(|t| component.contains(t))
                        .map(String::as_str)
                        .collect();
                    format!("{m} -> {}", into.join(", "))
                })
                .collect();
            links.join("; ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles: {}", described.join(" | "));
}

/// The root crate's modules by the stage of the flow they belong to, in the order data flows:
/// a module may import its own stage and those before it, never one after. A module belongs
/// to the longest prefix listed (`backend::spec` is the rig file's, the rest of `backend` the
/// run's); a module in none of them fails the test, so a new one is placed on purpose.
const STAGES: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "",
            "atomic",
            "environment",
            "project",
            "signals",
            "input",
            "models",
            "machine",
            "references",
        ],
    ),
    ("rig file", &["rig", "backend::spec"]),
    ("plan", &["plan", "sensor::detect"]),
    (
        "run",
        &["backend", "protocol", "runner", "ranging", "record"],
    ),
    ("run folder", &["results"]),
    ("analysis", &["summary", "aggregate", "settled"]),
    ("presentation", &["output", "export", "report", "compare"]),
    (
        "commands",
        &["cli", "session", "bench", "soak", "calibrate"],
    ),
];

/// The stage of `module` (its index in [`STAGES`]), by the longest prefix listed.
fn stage(module: &str) -> Option<usize> {
    STAGES
        .iter()
        .enumerate()
        .flat_map(|(i, (_, prefixes))| prefixes.iter().map(move |p| (i, *p)))
        .filter(|(_, prefix)| {
            module == *prefix || (!prefix.is_empty() && module.starts_with(&format!("{prefix}::")))
        })
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(i, _)| i)
}

/// Data flows one way: rig file → plan → run → run folder → analysis → presentation →
/// commands. No module imports one of a later stage (a child its parent holds is not an
/// import).
#[test]
fn no_module_imports_a_later_stage() {
    let known = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let unplaced: Vec<&String> = known.keys().filter(|m| stage(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules in no stage: {unplaced:?}");
    let mut upward = Vec::new();
    // The graph also holds folders without a file of their own (`sensor`, which lib.rs
    // declares inline), as the parents of their children: they import nothing.
    for (module, targets) in graph(&known).iter().filter(|(m, _)| known.contains_key(*m)) {
        let from = stage(module).unwrap();
        for target in targets.iter().filter(|t| !is_within(t, module)) {
            let to = stage(target).unwrap();
            if to > from {
                upward.push(format!(
                    "{module} ({}) imports {target} ({})",
                    STAGES[from].0, STAGES[to].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the flow: {}",
        upward.join("; ")
    );
}

/// The reader finds the loops it is meant to find: a cycle through a `use` group, one through
/// `super::`, and one through a parent that holds its child.
#[test]
fn the_reader_sees_groups_super_paths_and_children() {
    let known: BTreeMap<String, String> = [
        ("", ""),
        ("a", "use crate::{b::{self, X}, c};"),
        ("b", "fn f() { crate::a::g(); }"),
        ("c", ""),
        ("d", ""),
        ("d::e", "use super::super::f::Thing;"),
        ("f", "use crate::d::Other;"),
        ("g", "use crate::g::h::Y;"),
        ("g::h", "use super::Z;"),
    ]
    .into_iter()
    .map(|(m, code)| (m.to_string(), code.to_string()))
    .collect();
    let found = cycles(&graph(&known));
    assert_eq!(
        found,
        [vec!["a", "b"], vec!["d", "d::e", "f"]]
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
}
