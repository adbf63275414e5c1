//! The docs run as written. Every fenced block tagged `sh` in README.md and
//! docs/*.md is run, README first and then docs/ in name order, as one
//! `bash -euo pipefail` script, so a later block can use what an earlier one
//! set up (the running server, `$KS`, `$KEY`, `$COOKIES`), exactly as a
//! reader pasting them into one terminal would. A failing command fails
//! this test, naming the file and line of its block.
//!
//! Conventions (the README's "Running the examples in these pages" tells
//! readers the same):
//! - every opening fence carries a tag: `sh` (run), `sh norun`, `text`,
//!   `json`, `js`, or a configuration file's `nginx` / `ini`, so nothing
//!   meant to run is skipped by accident;
//! - `sh norun` blocks only build or test from source (`cargo …` lines):
//!   this test runs the binary cargo built for it instead;
//! - the reader's `keystrate` is the binary under test, first on `PATH`;
//!   `KS`, `KEYSTRATE_LISTEN` and `KEYSTRATE_DATA` point at a free loopback
//!   port and a temporary directory (the docs only default them), `TMPDIR`
//!   is temporary too, and the script runs in the repository (for the
//!   `cargo run --example` lines). `curl` and `jq` must be installed.

use crate::common::process::{free_port, BIN};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Tags an opening fence may carry; only `sh` runs.
const TAGS: &[&str] = &["sh", "sh norun", "text", "json", "js", "nginx", "ini"];

/// One fenced block: where it starts, its tag and its lines (unindented).
struct Block {
    line: usize,
    tag: String,
    text: String,
}

/// The fenced blocks of a Markdown text. Fences may be indented (inside
/// list items); their content loses the same indentation.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    let block = Block {
                        line: i + 1,
                        tag: tag.trim().to_string(),
                        text: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
            Some((block, _)) if trimmed == "```" => out.push(block),
            Some((mut block, indent)) => {
                let content = line.get(indent..).unwrap_or(trimmed);
                block.text.push_str(content);
                block.text.push('\n');
                open = Some((block, indent));
            }
        }
    }
    assert!(open.is_none(), "a fence is never closed");
    out
}

/// README.md, then docs/*.md by name.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The `sh` blocks of `files` as one script. Each block first records where
/// it comes from, so the ERR trap can name it.
fn script(files: &[(String, String)]) -> String {
    let mut out = String::from(
        "trap 'echo \"docs test: [$BASH_COMMAND] failed with status $? in the block at $DOC_BLOCK\" >&2' ERR\n",
    );
    for (name, markdown) in files {
        for block in blocks(markdown) {
            assert!(
                TAGS.contains(&block.tag.as_str()),
                "{name}:{}: fence tag {:?} is not one of {TAGS:?}",
                block.line,
                block.tag
            );
            match block.tag.as_str() {
                "sh" => {
                    out.push_str(&format!("DOC_BLOCK='{name}:{}'\n", block.line));
                    out.push_str(&block.text);
                }
                "sh norun" => {
                    for line in block.text.lines() {
                        assert!(
                            builds_from_source(line),
                            "{name}:{}: a `sh norun` block may only build or test from \
                             source (cargo lines), not {line:?}",
                            block.line
                        );
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// `cargo …`, possibly after `NAME=value` settings, or a blank or comment line.
fn builds_from_source(line: &str) -> bool {
    let command = line.trim();
    if command.is_empty() || command.starts_with('#') {
        return true;
    }
    command
        .split_whitespace()
        .find(|word| !word.contains('='))
        .is_some_and(|word| word == "cargo")
}

/// What a script run left: its exit status and its output.
struct Run {
    success: bool,
    output: String,
}

/// Runs `script` with bash in a process group of its own (the docs start
/// servers in the background), then ends the whole group.
fn run_script(script: &str, dir: &Path, envs: &[(&str, String)], limit: Duration) -> Run {
    let path = dir.join("docs.sh");
    std::fs::write(&path, script).unwrap();
    // Files, not pipes: a background server would hold a pipe open.
    let log_path = dir.join("docs.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail"])
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The group's id is bash's pid; everything the docs started is in it.
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let mut output = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!(
            "\ndocs test: still running after {limit:?}; killed\n"
        ));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        output,
    }
}

fn require_tools() {
    for tool in ["curl", "jq"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "the docs need {tool}: install it (.ci/run does)");
    }
}

#[test]
fn every_sh_block_of_the_docs_runs_as_written() {
    require_tools();
    let files: Vec<(String, String)> = documents()
        .iter()
        .map(|p| {
            let name = p
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap()
                .display()
                .to_string();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    let script = script(&files);
    assert!(
        script.matches("DOC_BLOCK=").count() >= 10,
        "the docs' runnable blocks were not found"
    );

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("keystrate")).unwrap();
    let port = free_port();
    let envs = [
        (
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        ),
        ("KS", format!("http://127.0.0.1:{port}")),
        ("KEYSTRATE_LISTEN", format!("127.0.0.1:{port}")),
        (
            "KEYSTRATE_DATA",
            dir.path().join("keystrate-data").display().to_string(),
        ),
        ("TMPDIR", dir.path().display().to_string()),
        ("RUST_LOG", "keystrate=warn".to_string()),
    ];
    // Generous: the `cargo run --example` lines may compile on a busy machine.
    let run = run_script(&script, dir.path(), &envs, Duration::from_secs(900));
    assert!(run.success, "a documented command failed:\n{}", run.output);
}

/// The harness itself: a failing command fails the run and is named with
/// the file and line of its block; later blocks see earlier variables.
#[test]
fn a_failing_block_fails_the_run_and_is_named() {
    let markdown = "# Doc\n\n```sh\nGREETING=hello\n```\n\n```text\nnot run\n```\n\n   ```sh\n   test \"$GREETING\" = hello\n   false\n   ```\n";
    let files = [("doc.md".to_string(), markdown.to_string())];
    let dir = tempfile::tempdir().unwrap();
    let run = run_script(&script(&files), dir.path(), &[], Duration::from_secs(60));
    assert!(!run.success, "{}", run.output);
    assert!(
        run.output
            .contains("docs test: [false] failed with status 1 in the block at doc.md:11"),
        "{}",
        run.output
    );

    let passing = [("doc.md".to_string(), markdown.replace("   false\n", ""))];
    let run = run_script(&script(&passing), dir.path(), &[], Duration::from_secs(60));
    assert!(run.success, "{}", run.output);
}

#[test]
fn fences_must_be_tagged_and_norun_only_builds() {
    let untagged = [("doc.md".to_string(), "```\nls\n```\n".to_string())];
    assert!(std::panic::catch_unwind(|| script(&untagged)).is_err());
    let sneaky = [(
        "doc.md".to_string(),
        "```sh norun\ncurl http://example.test\n```\n".to_string(),
    )];
    assert!(std::panic::catch_unwind(|| script(&sneaky)).is_err());
    for line in [
        "cargo test",
        "KEYSTRATE_SCREENSHOTS=1 cargo test --test it browser::",
        "# a comment",
    ] {
        assert!(builds_from_source(line), "{line}");
    }
}

/// The test names a SECURITY.md proof cell cites after each `tests/…` or
/// `src/…` file:
/// (file, name) pairs; a name ending in `…` is a prefix. Test names are
/// the snake_case words with an underscore (prose has none).
fn cited_tests(security: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in security.lines().filter(|l| l.starts_with('|')) {
        let proof = row.trim_end_matches('|').rsplit('|').next().unwrap_or("");
        let mut file: Option<String> = None;
        for word in proof.split(|c: char| c.is_whitespace() || ",;()".contains(c)) {
            let bare = word.trim_matches('`');
            if (bare.starts_with("tests/") || bare.starts_with("src/")) && bare.ends_with(".rs") {
                file = Some(bare.to_string());
                continue;
            }
            // `recap::tests`, `jwt::tests::…` are unit tests in src/.
            if word.contains("::") {
                file = None;
                continue;
            }
            let is_name = bare.contains('_')
                && bare
                    .trim_end_matches('…')
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_name && !word.starts_with('`') {
                // An empty file: cited without one.
                out.push((file.clone().unwrap_or_default(), bare.to_string()));
            }
        }
    }
    out
}

/// Every test SECURITY.md cites as a proof exists in the file it names.
#[test]
fn every_security_proof_names_an_existing_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let security = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let cited = cited_tests(&security);
    assert!(
        cited.len() > 30,
        "the parser found the citations: {cited:?}"
    );
    let mut missing = Vec::new();
    for (file, name) in &cited {
        if file.is_empty() {
            missing.push(format!("{name} (no file named before it)"));
            continue;
        }
        let source = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("SECURITY.md cites {file}: {e}"));
        let defined = match name.strip_suffix('…') {
            Some(prefix) => source.contains(&format!("fn {prefix}")),
            None => source.contains(&format!("fn {name}(")),
        };
        if !defined {
            missing.push(format!("{file} {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "SECURITY.md cites missing tests: {missing:#?}"
    );
}

#[test]
fn the_citation_parser_reads_files_names_and_prefixes() {
    let row = "| a | b | `tests/x.rs` one_test, two_tests; `tests/y.rs` three_t…; `m::tests::unit_one`; bench row \"login flood\" |";
    assert_eq!(
        cited_tests(row),
        [
            ("tests/x.rs".to_string(), "one_test".to_string()),
            ("tests/x.rs".to_string(), "two_tests".to_string()),
            ("tests/y.rs".to_string(), "three_t…".to_string()),
        ]
    );
}
