//! The file-level import graph of one crate's sources: a small tokenizer that knows
//! comments, strings and raw strings, the in-crate paths of `use` trees and inline paths,
//! and their resolution to the file that defines the longest module prefix.

use std::collections::{BTreeMap, BTreeSet};

/// file -> (imported file -> the first path importing it); files relative to `src/`.
pub(crate) type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The module a file defines: `a/b.rs` and `a/b/mod.rs` are `[a, b]`, `lib.rs` is `[]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().unwrap().as_str(), "mod" | "lib" | "main") {
        parts.pop();
    }
    parts
}

/// Builds the file-level import graph from (path relative to `src/`, text) pairs.
pub(crate) fn import_graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeMap<Vec<String>, &String> =
        files.iter().map(|(f, _)| (module_of(f), f)).collect();
    let mut graph = Graph::new();
    for (file, text) in files {
        let edges = graph.entry(file.clone()).or_default();
        for (scope, path) in paths_in(&tokens(text), &module_of(file)) {
            let Some(abs) = absolute(&scope, &path) else {
                continue;
            };
            // the file of the longest module prefix, never the crate root
            let target = (1..=abs.len()).rev().find_map(|n| modules.get(&abs[..n]));
            if let Some(&target) = target.filter(|&&t| t != file) {
                edges
                    .entry(target.clone())
                    .or_insert_with(|| path.join("::"));
            }
        }
    }
    graph
}

/// Resolves `path`, written in module `scope`, to a module path from the crate
/// root: `crate::…` from the root, `self::…`/`super::…`/`child::…` from `scope`.
fn absolute(scope: &[String], path: &[String]) -> Option<Vec<String>> {
    let (mut base, mut rest) = (scope.to_vec(), path);
    while let Some(first) = rest.first() {
        match first.as_str() {
            "crate" => base.clear(),
            "super" => {
                base.pop()?;
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    base.extend_from_slice(rest);
    Some(base)
}

/// A token of Rust source, as far as paths need: `crate`, `::`, `{`, `;`, …
#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Splits Rust source into identifiers, `::` and punctuation, dropping
/// comments, string and char literals, lifetimes' quotes and numbers.
fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
    };
    let find = |from: usize, s: &str| (from..c.len()).find(|&k| at(k, s)).unwrap_or(c.len());
    let is_word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let start = i;
        i += 1;
        if at(start, "//") {
            i = find(start, "\n");
        } else if at(start, "/*") {
            i = find(start, "*/") + 2;
        } else if c[start] == '"' {
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c[start] == '\'' && c.get(i) == Some(&'\\') {
            i = find(i + 2, "'") + 1; // '\n', '\''
        } else if c[start] == '\'' && c.get(i + 1) == Some(&'\'') {
            i += 2; // 'x'; a lifetime 'a just loses its quote
        } else if is_word(c[start]) {
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&ch| ch == '#').count();
            if matches!(word.as_str(), "r" | "br" | "cr") && c.get(i + hashes) == Some(&'"') {
                let close = format!("\"{}", "#".repeat(hashes)); // raw string r#"…"#
                i = find(i + hashes + 1, &close) + close.len();
            } else if !c[start].is_ascii_digit() {
                out.push(Tok::Ident(word));
            }
        } else if at(start, "::") {
            out.push(Tok::PathSep);
            i += 1;
        } else if !c[start].is_whitespace() {
            out.push(Tok::Punct(c[start]));
        }
    }
    out
}

/// Every in-crate path in a file (rooted at `crate`, `super`, `self` or a child
/// declared by `mod child;`), with the module it is written in: `file_module`,
/// or an inline `mod tests { … }` inside it, whose `super` is the file itself.
fn paths_in(toks: &[Tok], file_module: &[String]) -> Vec<(Vec<String>, Vec<String>)> {
    let ident = |i: usize| match toks.get(i) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let declares = |i: usize, next: char| {
        ident(i) == Some("mod") && toks.get(i + 2) == Some(&Tok::Punct(next))
    };
    let children: BTreeSet<&str> = (0..toks.len())
        .filter(|&i| declares(i, ';'))
        .filter_map(|i| ident(i + 1))
        .collect();
    let in_crate =
        |root: &str| matches!(root, "crate" | "super" | "self") || children.contains(root);
    // `child::…` names the file's child, even inside an inline module
    let place = |path: Vec<String>, scope: &[String]| {
        let from = if children.contains(path[0].as_str()) {
            file_module
        } else {
            scope
        };
        (from.to_vec(), path)
    };
    let (mut out, mut scope, mut inline_at) = (Vec::new(), file_module.to_vec(), Vec::new());
    let (mut i, mut depth) = (0, 0);
    while i < toks.len() {
        // a path starts here unless it follows `::`, or `in` as in `pub(in crate::a)`
        let starts_path = toks.get(i + 1) == Some(&Tok::PathSep)
            && i.checked_sub(1)
                .is_none_or(|p| toks[p] != Tok::PathSep && ident(p) != Some("in"));
        match (&toks[i], ident(i)) {
            (_, Some("use")) => {
                let mut trees = Vec::new();
                i += 1;
                use_tree(toks, &mut i, Vec::new(), &mut trees);
                out.extend(
                    trees
                        .into_iter()
                        .filter(|p| in_crate(&p[0]))
                        .map(|p| place(p, &scope)),
                );
            }
            (_, Some(root)) if starts_path && in_crate(root) => {
                let mut path = vec![root.to_string()];
                while let (Some(Tok::PathSep), Some(name)) = (toks.get(i + 1), ident(i + 2)) {
                    path.push(name.to_string());
                    i += 2;
                }
                out.push(place(path, &scope));
            }
            (_, Some("mod")) if declares(i, '{') => {
                scope.push(ident(i + 1).unwrap().to_string());
                inline_at.push(depth);
                depth += 1;
                i += 2;
            }
            (Tok::Punct('{'), _) => depth += 1,
            (Tok::Punct('}'), _) => {
                depth -= 1;
                if inline_at.last() == Some(&depth) {
                    inline_at.pop();
                    scope.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Expands the use tree at `toks[*i]`, under `path`, into full paths:
/// `a::{b, c::{self, d as e}, f::*}` gives `a::b`, `a::c`, `a::c::d`, `a::f`.
fn use_tree(toks: &[Tok], i: &mut usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(tok) = toks.get(*i) {
        *i += 1;
        match tok {
            Tok::Ident(s) if s == "as" => *i += 1, // skip the new name
            Tok::Ident(s) => path.push(s.clone()),
            Tok::PathSep | Tok::Punct('*') => {}
            Tok::Punct('{') => {
                while !matches!(toks.get(*i), None | Some(Tok::Punct('}' | ';'))) {
                    let before = *i;
                    use_tree(toks, i, path.clone(), out);
                    // step over the `,`, or over what no use tree holds (`#[cfg(…)]`)
                    *i += usize::from(*i == before || toks.get(*i) == Some(&Tok::Punct(',')));
                }
                *i += 1;
                return;
            }
            _ => {
                *i -= 1; // `,` `}` `;` end this tree
                break;
            }
        }
    }
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The import cycles: groups of two or more files that each reach all others.
pub(crate) fn cycles(graph: &Graph) -> Vec<BTreeSet<&String>> {
    let reach: BTreeMap<&String, BTreeSet<&String>> =
        graph.keys().map(|f| (f, reachable(graph, f))).collect();
    let mut found = Vec::new();
    for (file, reached) in &reach {
        let group: BTreeSet<&String> = reached
            .iter()
            .filter(|g| reach[**g].contains(file))
            .copied()
            .collect();
        if group.len() > 1 && !found.contains(&group) {
            found.push(group);
        }
    }
    found
}

/// The files reachable from `from` through one or more imports.
fn reachable<'a>(graph: &'a Graph, from: &'a String) -> BTreeSet<&'a String> {
    let (mut seen, mut stack) = (BTreeSet::new(), vec![from]);
    while let Some(file) = stack.pop() {
        stack.extend(graph[file].keys().filter(|next| seen.insert(*next)));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files `file` imports, in a graph of in-memory sources.
    fn imports(files: &[(&str, &str)], file: &str) -> Vec<String> {
        graph(files)[file].keys().cloned().collect()
    }

    fn graph(files: &[(&str, &str)]) -> Graph {
        import_graph(
            &files
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn nested_use_trees_expand_and_renames_are_ignored() {
        let (mut i, mut out) = (1, Vec::new());
        use_tree(
            &tokens("use crate::a::{b as x, c::{self, d}, e::*,};"),
            &mut i,
            Vec::new(),
            &mut out,
        );
        let joined: Vec<String> = out.iter().map(|p| p.join("::")).collect();
        assert_eq!(
            joined,
            [
                "crate::a::b",
                "crate::a::c",
                "crate::a::c::d",
                "crate::a::e"
            ]
        );
    }

    #[test]
    fn crate_super_self_resolve_and_comments_strings_do_not_count() {
        let files = [
            ("a.rs", "mod c;"),
            ("a/c.rs", ""),
            ("a/d.rs", "use super::c::C; fn f() { self::x::y(); }"),
            ("a/d/x.rs", ""),
            (
                "b.rs",
                "// crate::a::c\nconst S: &str = r#\"crate::a::c\"#; fn f(_: crate::a::A) {}",
            ),
            (
                "b/e.rs",
                "fn f(_: super::B) {} #[cfg(test)] mod tests { use super::*; }",
            ),
        ];
        assert_eq!(imports(&files, "a/d.rs"), ["a/c.rs", "a/d/x.rs"]);
        assert_eq!(imports(&files, "b.rs"), ["a.rs"]);
        assert_eq!(imports(&files, "b/e.rs"), ["b.rs"]);
    }

    #[test]
    fn a_path_names_the_file_of_its_longest_existing_module_prefix() {
        let files = [
            ("group/mod.rs", "mod shared; pub use shared::GroupShared;"),
            ("group/shared.rs", ""),
            ("a.rs", "use crate::group::GroupShared;"),
            (
                "b.rs",
                "use crate::group::shared::GroupShared; pub(in crate::a) fn f() {}",
            ),
        ];
        assert_eq!(imports(&files, "a.rs"), ["group/mod.rs"]);
        assert_eq!(imports(&files, "b.rs"), ["group/shared.rs"]);
    }

    #[test]
    fn two_files_importing_each_other_are_a_cycle() {
        let g = graph(&[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::b::B;"),
            ("b.rs", "use crate::a::A;"),
        ]);
        assert_eq!(
            cycles(&g),
            [BTreeSet::from([&"a.rs".to_string(), &"b.rs".to_string()])]
        );
    }

    #[test]
    fn a_parent_that_only_declares_children_imports_nothing() {
        let files = [
            ("m/mod.rs", "mod leaf; mod user; #[cfg(test)] mod tests;"),
            ("m/leaf.rs", ""),
            ("m/user.rs", "use super::leaf::Leaf;"),
            ("m/tests.rs", "use super::*;"),
        ];
        assert!(imports(&files, "m/mod.rs").is_empty());
        assert_eq!(imports(&files, "m/tests.rs"), ["m/mod.rs"]);
        assert!(cycles(&graph(&files)).is_empty());
    }

    #[test]
    fn a_parent_that_reexports_a_child_imports_it() {
        let files = [
            ("m/mod.rs", "mod leaf; pub use leaf::X; pub struct P;"),
            ("m/leaf.rs", "use super::P;"),
        ];
        assert_eq!(imports(&files, "m/mod.rs"), ["m/leaf.rs"]);
        assert_eq!(cycles(&graph(&files)).len(), 1);
    }
}
