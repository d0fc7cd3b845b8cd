//! The module graph of `src/` has no import circle: between the top-level
//! modules, and between the files of each folder module. Read from the
//! source, so a new `use` that closes a circle fails here with the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each `.rs` file under `src/` (except the binary) with its module path.
fn modules(src: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            out.push((parts, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The module paths a file names after `prefix` (`crate::` or `super::`),
/// including each name of a `{…}` group.
fn paths_after(source: &str, prefix: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| !seg.is_empty())
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in source.match_indices(prefix) {
        let rest = &source[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                found.push(ident(item.trim()));
            }
        } else {
            found.push(ident(rest));
        }
    }
    found
}

/// A circle in `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn src_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    let known: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    // Graphs: "" for the top-level modules, "routes" for the files of routes/, …
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, source) in &files {
        let parent = module[..module.len() - 1].join("::");
        let mut targets: Vec<Vec<String>> = paths_after(source, "crate::");
        for relative in paths_after(source, "super::") {
            let mut absolute = module[..module.len() - 1].to_vec();
            absolute.extend(relative);
            targets.push(absolute);
        }
        for target in targets {
            // The longest prefix that is a module (the rest names an item).
            let Some(len) = (1..=target.len())
                .rev()
                .find(|n| known.contains(&target[..*n]))
            else {
                continue;
            };
            let target = &target[..len];
            // Top level: module → module.
            if target[0] != module[0] {
                graphs
                    .entry(String::new())
                    .or_default()
                    .entry(module[0].clone())
                    .or_default()
                    .insert(target[0].clone());
            }
            // Inside a folder: sibling file → sibling file.
            if module.len() >= 2
                && target.len() == module.len()
                && target[..target.len() - 1] == module[..module.len() - 1]
                && target != module.as_slice()
            {
                graphs
                    .entry(parent.clone())
                    .or_default()
                    .entry(module.last().unwrap().clone())
                    .or_default()
                    .insert(target.last().unwrap().clone());
            }
        }
    }
    assert!(
        graphs.get("").is_some_and(|g| g.len() > 5),
        "the scan found the modules: {graphs:?}"
    );
    for (folder, edges) in &graphs {
        if let Some(cycle) = find_cycle(edges) {
            let place = if folder.is_empty() {
                "src/".to_owned()
            } else {
                format!("src/{}/", folder.replace("::", "/"))
            };
            panic!("import circle in {place}: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut acyclic = edges.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&acyclic), None);
    assert_eq!(
        paths_after("use crate::{error::AppError, store};", "crate::"),
        vec![
            vec!["error".to_owned(), "AppError".to_owned()],
            vec!["store".to_owned()]
        ]
    );
}
