//! The layering of `installer/src` (see `ARCHITECTURE.md`): each top-level
//! module may import only itself and modules of its own or a lower layer, and
//! no two top-level modules may import each other, even through others.
//!
//! Test code (`tests.rs` files and everything after a `#[cfg(test)]`) is left
//! out: a test may check that two layers agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers from the bottom up; a module may import from its own layer and
/// the ones before it.
const LAYERS: &[&[&str]] = &[
    &["exit", "peer", "bundle"],
    &["layout", "state"],
    &["system"],
    &["plan"],
    &["effects"],
    &["backend"],
    &["commands"],
    &["cli"],
    &["main"],
];

/// Edges `from -> to` between top-level modules, with one place each was seen.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The top-level modules a piece of source names through `crate::`.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `$crate::` or `toa_crate::` is not this crate's root.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first word of each item at
            // the outer level.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let word: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        found.insert(word);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                found.insert(word);
            }
        }
    }
    found
}

/// The part of a file that is not test code.
fn non_test(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |at| &source[..at])
}

/// Reads every `.rs` file under `src` into a graph of top-level modules.
fn graph_of(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_str().unwrap();
            if !name.ends_with(".rs") || name == "tests.rs" || path == src.join("lib.rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let from = first.trim_end_matches(".rs").to_owned();
            let text = fs::read_to_string(&path).unwrap();
            let edges = graph.entry(from.clone()).or_default();
            for to in crate_paths(non_test(&text)) {
                if to != from {
                    edges.entry(to).or_insert_with(|| rel.display().to_string());
                }
            }
        }
    }
    graph
}

fn layer_of(module: &str, layers: &[&[&str]]) -> Option<usize> {
    layers.iter().position(|l| l.contains(&module))
}

/// Every broken rule, one line each; empty when the graph is layered.
fn violations(graph: &Graph, layers: &[&[&str]]) -> Vec<String> {
    let mut out = Vec::new();
    for (from, edges) in graph {
        let Some(from_layer) = layer_of(from, layers) else {
            out.push(format!(
                "{from}: not in any layer: add it to ARCHITECTURE.md and LAYERS"
            ));
            continue;
        };
        for (to, file) in edges {
            match layer_of(to, layers) {
                None => out.push(format!("{file}: imports crate::{to}, which is in no layer")),
                Some(l) if l > from_layer => out.push(format!(
                    "{file}: {from} imports crate::{to}, a layer above it"
                )),
                Some(_) => {}
            }
        }
    }
    out.extend(cycles(graph));
    out
}

/// Import cycles between top-level modules, each as `a -> b -> a`.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first walk from `start`, looking for a way back to it.
        let mut stack: Vec<Vec<&str>> = vec![vec![start.as_str()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().unwrap();
            for next in graph.get(last).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    let mut cycle: Vec<&str> = path.clone();
                    // Name each cycle once, from its smallest module.
                    let min = cycle.iter().enumerate().min_by_key(|(_, m)| **m).unwrap().0;
                    cycle.rotate_left(min);
                    cycle.push(cycle[0]);
                    found.insert(format!("import cycle: {}", cycle.join(" -> ")));
                } else if seen.insert(next.as_str()) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn installer_src_is_layered_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    for module in ["system", "plan", "effects", "backend", "commands", "cli"] {
        assert!(
            graph.contains_key(module),
            "{module} not found under {}",
            src.display()
        );
    }
    let broken = violations(&graph, LAYERS);
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn crate_paths_reads_plain_grouped_and_nested_imports() {
    let src = "use crate::plan::{Cmd, Step};\nuse crate::{bundle, system::{kernel, distro}};\n\
               let x = crate::layout::MODULE; $crate::ignored; other_crate::nope;";
    let want: BTreeSet<String> = ["plan", "bundle", "system", "layout"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(crate_paths(src), want);
    assert_eq!(
        non_test("use crate::a;\n#[cfg(test)]\nuse crate::b;"),
        "use crate::a;\n"
    );
}

#[test]
fn checker_fails_on_a_cycle_and_an_upward_import() {
    let edge = |from: &str, to: &str| {
        (
            from.to_owned(),
            BTreeMap::from([(to.to_owned(), format!("{from}.rs"))]),
        )
    };
    // plan -> effects is upward; effects -> plan closes a cycle.
    let graph: Graph = [edge("plan", "effects"), edge("effects", "plan")]
        .into_iter()
        .collect();
    let broken = violations(&graph, LAYERS);
    assert!(
        broken.contains(&"plan.rs: plan imports crate::effects, a layer above it".to_owned()),
        "{broken:?}"
    );
    assert!(
        broken.contains(&"import cycle: effects -> plan -> effects".to_owned()),
        "{broken:?}"
    );

    // A cycle inside one layer is not an upward import, but still a cycle.
    let same: Graph = [edge("layout", "state"), edge("state", "layout")]
        .into_iter()
        .collect();
    assert_eq!(
        violations(&same, LAYERS),
        vec!["import cycle: layout -> state -> layout"]
    );

    let fine: Graph = [edge("plan", "system"), edge("system", "layout")]
        .into_iter()
        .collect();
    assert!(violations(&fine, LAYERS).is_empty());
}
