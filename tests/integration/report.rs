//! Issue 5: `--report FILE.html` renders in headless Chromium with no console errors.
//!
//! Needs Debian's `chromium` on the PATH (`.ci/run` installs it); without it the test fails and
//! says so rather than skipping.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

/// What the test says when it cannot run (issue 10: it said "chromium failed on <temp>/bad.html").
const NOT_INSTALLED: &str = "Chromium is not installed (apt-get install chromium)";

/// True when an executable file named `chromium` is in a directory of the PATH.
fn chromium_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join("chromium"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Loads `page` in headless Chromium: its rendered DOM, and the console messages it logged.
fn render(page: &Path) -> (String, Vec<String>) {
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("timeout (coreutils) runs chromium");
    // timeout's own code when it cannot run the command.
    assert_ne!(out.status.code(), Some(127), "{NOT_INSTALLED}");
    assert!(
        out.status.success(),
        "chromium failed on {}: {}",
        page.file_name().unwrap().to_string_lossy(),
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).to_string(), console)
}

#[test]
fn issue_5_reports_render_in_headless_chromium_without_console_errors() {
    assert!(chromium_installed(), "{NOT_INSTALLED}");
    let dir = tempfile::tempdir().unwrap();
    // The check itself catches errors: a broken page logs to the console.
    let bad = write(
        dir.path(),
        "bad.html",
        b"<!DOCTYPE html><p>x</p><script>missing_function();</script>",
    );
    let (_, console) = render(&bad);
    assert!(
        console.iter().any(|l| l.contains("missing_function")),
        "{console:?}"
    );

    // A corpus with clusters: near copies with an edit, so the diff has something to mark.
    let mut lines = String::new();
    for i in 0..30u64 {
        let text = story(i, 150);
        lines += &(record(&format!("d{i}"), &text) + "\n");
        if i % 3 == 0 {
            let mut words: Vec<String> = text.split(' ').map(str::to_string).collect();
            words[140] = "changed".into();
            lines += &(record(&format!("d{i}-copy"), &words.join(" ")) + "\n");
        }
    }
    write(dir.path(), "in.jsonl", lines.as_bytes());
    for (name, args) in [
        (
            "dedup.html",
            vec![
                "dedup",
                "in.jsonl",
                "-o",
                "k.jsonl",
                "--report",
                "dedup.html",
            ],
        ),
        (
            "clusters.html",
            vec![
                "clusters",
                "in.jsonl",
                "-o",
                "c.jsonl",
                "--report",
                "clusters.html",
            ],
        ),
        (
            "stats.html",
            vec!["stats", "in.jsonl", "--report", "stats.html"],
        ),
    ] {
        let mut args = args;
        args.push("-q");
        ok(&run_in(dir.path(), &args, b""));
        let page = dir.path().join(name);
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{name} fetches"
        );
        let (dom, console) = render(&page);
        assert!(console.is_empty(), "{name}: {console:?}");
        assert_eq!(dom.matches("<svg").count(), 2, "{name}");
        assert!(dom.contains("Largest clusters"), "{name}");
        assert!(
            dom.contains("<ins>changed</ins>"),
            "{name}: no highlighted edit"
        );
        assert!(dom.contains("d0-copy"), "{name}");
        assert!(dom.contains("<polyline"), "{name}: no S-curve");
    }
}
