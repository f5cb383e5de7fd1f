//! Layering: the crates stack in one order and each depends only on crates
//! below it; no two source files of a crate import each other, directly or
//! around a circle; and no part of the relay imports its composition root.
//!
//! Why: when imports point one way, a newcomer can tell what a file may touch
//! from its `use` lines, and a change ripples only to the files above it
//! instead of coming back around a circle. `crates/ptt-relay/src/relay.rs`
//! wires the parts together, so only `lib.rs` (and `bin/`) may import it.
//!
//! An edge `a.rs -> b.rs` is an in-crate path in `a.rs` (in a `use` tree, an
//! inline `crate::…`/`super::…`/`self::…`, or `child::…` after `mod child;`)
//! whose longest existing module prefix is defined by `b.rs`. Comments,
//! string literals and `pub(in …)` are not imports. The crate root
//! (`lib.rs`/`main.rs`) is the crate's index and never a target. Files under
//! `src/bin/` are crates of their own and are not scanned.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod graph;

use graph::{Graph, cycles, import_graph};

/// The relay's composition root, relative to the workspace root.
const COMPOSITION_ROOT: &str = "crates/ptt-relay/src/relay.rs";

/// The workspace's library crates from the bottom up (README's crate table): a
/// crate's `[dependencies]` may name only crates before it. Dev-dependencies
/// are free (tests start the real relay).
const LAYERS: &[&str] = &[
    "ptt-proto",
    "ptt-floor",
    "ptt-directory",
    "ptt-recording",
    "ptt-calllog",
    "ptt-cluster",
    "ptt-relay-core",
    "ptt-ops",
    "ptt-relay",
    "ptt-client",
    "ptt-link",
    "ptt-cli",
];

#[test]
fn every_crate_depends_only_on_crates_below_it() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for dir in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let Ok(manifest) = std::fs::read_to_string(dir.path().join("Cargo.toml")) else {
            continue;
        };
        seen.push(name.clone());
        let Some(level) = LAYERS.iter().position(|l| *l == name) else {
            problems.push(format!(
                "crates/{name} is not in LAYERS: place it in the order"
            ));
            continue;
        };
        for dependency in workspace_dependencies(&manifest) {
            match LAYERS.iter().position(|l| *l == dependency) {
                Some(below) if below < level => {}
                _ => problems.push(format!(
                    "crates/{name} depends on {dependency}, which is not below it in LAYERS"
                )),
            }
        }
    }
    problems.extend(
        LAYERS
            .iter()
            .filter(|l| !seen.iter().any(|s| s == *l))
            .map(|l| format!("LAYERS names {l}, which is not under crates/")),
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The `ptt-*` crates named in a manifest's `[dependencies]` table.
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies && line.starts_with("ptt-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn no_import_cycles_and_nothing_imports_the_composition_root() {
    let root = workspace_root();
    let dirs = source_dirs(&root);
    assert!(!dirs.is_empty(), "no crates/*/src under {}", root.display());
    let mut problems = Vec::new();
    for src in dirs {
        let graph = import_graph(&read_sources(&src, &src));
        let shown = src
            .strip_prefix(&root)
            .unwrap_or(&src)
            .display()
            .to_string();
        for cycle in cycles(&graph) {
            problems.push(describe_cycle(&shown, &graph, &cycle));
        }
        if let Some(file) = COMPOSITION_ROOT.strip_prefix(&format!("{shown}/")) {
            problems.extend(composition_root_importers(&shown, &graph, file));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// `LAYERING_ROOT` if set, else the parent of this (`tests`) crate's manifest dir.
fn workspace_root() -> PathBuf {
    match (
        std::env::var_os("LAYERING_ROOT"),
        option_env!("CARGO_MANIFEST_DIR"),
    ) {
        (Some(dir), _) => dir.into(),
        (None, Some(manifest)) => Path::new(manifest).parent().unwrap().to_path_buf(),
        (None, None) => panic!("built outside cargo: set LAYERING_ROOT to the workspace"),
    }
}

/// Every `crates/*/src`, plus `tests/src` and `benches/src`, sorted.
fn source_dirs(root: &Path) -> Vec<PathBuf> {
    let crates = std::fs::read_dir(root.join("crates")).into_iter().flatten();
    let mut dirs: Vec<PathBuf> = crates.flatten().map(|e| e.path().join("src")).collect();
    dirs.extend([root.join("tests/src"), root.join("benches/src")]);
    dirs.retain(|d| d.is_dir());
    dirs.sort();
    dirs
}

/// The `.rs` files under `dir`, but not `src/bin/`, as (path relative to `src`, text).
fn read_sources(src: &Path, dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        let rel = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() && rel != "bin" {
            files.extend(read_sources(src, &path));
        } else if rel.ends_with(".rs") {
            files.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
    files
}

/// A cycle as the imports between its files, with paths from the workspace root.
fn describe_cycle(src: &str, graph: &Graph, cycle: &BTreeSet<&String>) -> String {
    let mut text = format!("import cycle of {} files in {src}/:\n", cycle.len());
    for &file in cycle {
        for (target, path) in graph[file].iter().filter(|(t, _)| cycle.contains(t)) {
            text += &format!("    {src}/{file} -> {src}/{target}   (`{path}`)\n");
        }
    }
    text + "  to break it: move what both need into a file of its own, import items from \
            the file that defines them, or pass a handle in\n"
}

/// The files (but `lib.rs`/`main.rs`) importing the composition root `root`, if any.
fn composition_root_importers(src: &str, graph: &Graph, root: &str) -> Option<String> {
    let importers: String = graph
        .iter()
        .filter(|(file, _)| !matches!(file.as_str(), "lib.rs" | "main.rs"))
        .filter_map(|(file, edges)| Some(format!("    {src}/{file}   (`{}`)\n", edges.get(root)?)))
        .collect();
    (!importers.is_empty()).then(|| {
        format!(
            "{src}/{root} is the composition root (it wires the parts together), yet these import it:\n\
             {importers}  move what they need from it into a file of its own, or pass a handle in\n"
        )
    })
}
