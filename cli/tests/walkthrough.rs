//! The guided reading, `docs/one-step.md`, stays true to the code: every
//! relative link points at a file that exists, and every quoted ```rust or
//! ```wgsl block occurs, line for line (indentation and blank lines
//! aside), in the file linked last before it. The READMEs' relative links
//! are checked too. A change that moves quoted code fails here until the
//! walkthrough is updated.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The targets of `](target)` links in a line that are relative paths
/// (not web addresses or anchors), without any `#anchor`.
fn relative_links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = &after[..end];
        if !target.starts_with("http") && !target.starts_with('#') && !target.contains(' ') {
            out.push(target.split('#').next().unwrap_or("").to_string());
        }
        rest = &after[end..];
    }
    out
}

/// The lines of `text`, trimmed, without blank ones.
fn code_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_walkthrough_links_and_quotes_are_true() {
    let doc_path = root().join("docs/one-step.md");
    let doc = std::fs::read_to_string(&doc_path).expect("docs/one-step.md exists");
    let dir = doc_path.parent().unwrap();
    let lines: Vec<&str> = doc.lines().collect();
    let mut problems = Vec::new();
    let (mut links, mut blocks) = (0, 0);
    let mut last_link: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if let Some(lang) = line.strip_prefix("```") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("the code block at line {} is not closed", i + 1));
            if lang == "rust" || lang == "wgsl" {
                blocks += 1;
                let body = code_lines(&lines[i + 1..end].join("\n"));
                match &last_link {
                    None => problems.push(format!("line {}: no file linked before it", i + 1)),
                    Some(target) => {
                        let source = std::fs::read_to_string(dir.join(target)).unwrap_or_default();
                        let source = code_lines(&source);
                        let found = source.windows(body.len()).any(|w| w == body.as_slice());
                        if !found {
                            problems.push(format!(
                                "line {}: the quoted block is not in {target}",
                                i + 1
                            ));
                        }
                    }
                }
            }
            i = end + 1;
            continue;
        }
        for target in relative_links(lines[i]) {
            links += 1;
            if !dir.join(&target).exists() {
                problems.push(format!("line {}: the link {target} points nowhere", i + 1));
            }
            last_link = Some(target);
        }
        i += 1;
    }
    assert!(
        problems.is_empty(),
        "docs/one-step.md:\n{}",
        problems.join("\n")
    );
    assert!(links > 50 && blocks > 20, "{links} links, {blocks} blocks");
}

#[test]
fn the_readmes_links_point_at_files() {
    let mut problems = Vec::new();
    for readme in [
        "README.md",
        "tensor/README.md",
        "autograd/README.md",
        "augment/README.md",
        "models/README.md",
        "byol/README.md",
        "cli/README.md",
    ] {
        let path = root().join(readme);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{readme}: {e}"));
        for (n, line) in text.lines().enumerate() {
            for target in relative_links(line) {
                if !path.parent().unwrap().join(&target).exists() {
                    problems.push(format!("{readme}:{}: {target}", n + 1));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}
