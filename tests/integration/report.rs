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

/// Runs headless Chromium on `page` with `args`; fails the test when it cannot.
fn chromium(page: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(args)
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
    out
}

/// Loads `page` in headless Chromium: its rendered DOM, and the console messages it logged.
fn render(page: &Path) -> (String, Vec<String>) {
    let out = chromium(page, &["--enable-logging=stderr", "--v=0", "--dump-dom"]);
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

/// A screenshot of `page` as a person sees it at 1280 pixels wide: its width, height and RGB
/// pixels.
fn screenshot(page: &Path, height: u32) -> (u32, u32, Vec<[u8; 3]>) {
    let png = page.with_extension("png");
    let size = format!("--window-size=1280,{height}");
    let target = format!("--screenshot={}", png.display());
    chromium(page, &["--hide-scrollbars", &size, &target]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

/// Where pixels of about `color` are: (x, y) of each.
fn pixels_of(shot: &(u32, u32, Vec<[u8; 3]>), color: [u8; 3]) -> Vec<(u32, u32)> {
    let (width, _, pixels) = shot;
    pixels
        .iter()
        .enumerate()
        .filter(|(_, p)| p.iter().zip(color).all(|(&a, b)| a.abs_diff(b) <= 6))
        .map(|(i, _)| (i as u32 % width, i as u32 / width))
        .collect()
}

/// Issue 14: the calibration view renders, and a screenshot shows it as a person would see it:
/// sample pairs of several bands side by side, the words only in the first document struck on
/// the left, the words only in the second marked on the right, each with its verdict.
#[test]
fn issue14_the_calibration_view_shows_pairs_of_each_band_side_by_side_on_a_screenshot() {
    assert!(chromium_installed(), "{NOT_INSTALLED}");
    let dir = tempfile::tempdir().unwrap();
    // Stories of 300 words, each with copies that replace every k-th word: pairs from about 0.95
    // down to about 0.5.
    let mut lines = String::new();
    for i in 0..6u64 {
        let text = story(100 + i, 300);
        lines += &(record(&format!("s{i}"), &text) + "\n");
        for k in [90usize, 40, 22, 14] {
            let edited: Vec<String> = text
                .split(' ')
                .enumerate()
                .map(|(n, w)| match n % k == k / 2 {
                    true => format!("edit{n}"),
                    false => w.to_string(),
                })
                .collect();
            lines += &(record(&format!("s{i}-every{k}"), &edited.join(" ")) + "\n");
        }
    }
    write(dir.path(), "in.jsonl", lines.as_bytes());
    let args = [
        "clusters",
        "in.jsonl",
        "-o",
        "c.jsonl",
        "--threshold",
        "0.7",
        "--report",
        "r.html",
        "-q",
    ];
    ok(&run_in(dir.path(), &args, b""));
    let page = dir.path().join("r.html");
    let (dom, console) = render(&page);
    assert!(console.is_empty(), "{console:?}");
    let section = &dom[dom
        .find("id=\"calibration\"")
        .expect("a calibration section")
        ..dom.find("id=\"clusters\"").unwrap()];
    let bands_shown = section.matches("<h3 id=\"band-").count();
    assert!(
        bands_shown >= 3,
        "pairs in only {bands_shown} bands:\n{section}"
    );
    assert!(section.contains("a duplicate</span>") && section.contains("not a duplicate</span>"));

    let shot = screenshot(&page, 14_000);
    let (width, height, _) = shot;
    // The verdicts are drawn: bold green for a duplicate, bold red for not one.
    let yes = pixels_of(&shot, [0x1e, 0x7b, 0x34]);
    let no = pixels_of(&shot, [0xaa, 0x33, 0x33]);
    assert!(
        yes.len() > 20 && no.len() > 20,
        "verdicts not drawn: {} {}",
        yes.len(),
        no.len()
    );
    // Side by side: inside the pairs of text boxes (rows where both boxes' inner padding shows
    // their background, just left and right of the middle), struck words (red background) are
    // only in the left box and marked words (green background) only in the right one.
    let middle = width / 2;
    let at = |x: u32, y: u32| shot.2[(y * width + x) as usize];
    let in_pair = |y: u32| [at(middle - 12, y), at(middle + 12, y)] == [[0xfc; 3]; 2];
    let inside = |color| -> Vec<(u32, u32)> {
        pixels_of(&shot, color)
            .into_iter()
            .filter(|p| in_pair(p.1))
            .collect()
    };
    let (struck, marked) = (inside([0xf9, 0xd0, 0xd0]), inside([0xd4, 0xf7, 0xd4]));
    let first_verdict = yes.iter().chain(&no).map(|p| p.1).min().unwrap();
    assert!(
        struck.iter().filter(|p| p.1 > first_verdict).count() > 100,
        "no struck words below the first sample's verdict"
    );
    assert!(marked.iter().filter(|p| p.1 > first_verdict).count() > 100);
    let right = |p: &&(u32, u32)| p.0 > middle;
    assert_eq!(
        struck.iter().filter(right).count(),
        0,
        "struck words drawn on the right"
    );
    assert_eq!(
        marked.iter().filter(|p| !right(p)).count(),
        0,
        "marked words on the left"
    );
    assert!(
        height >= 14_000 - 1,
        "the screenshot is {height} pixels high"
    );
}

/// Issue 14: the `stats` page said "joined through other members" of every cluster, even of
/// byte-identical copies; it now measures the pair it shows.
#[test]
fn issue14_the_stats_report_gives_the_exact_similarity_of_each_pair_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    let text = story(7, 200);
    let mut edited: Vec<&str> = text.split(' ').collect();
    edited[100] = "changed";
    let lines = [
        record("a", &text),
        record("c", &story(8, 200)),
        record("d", &story(8, 200).replacen(' ', "  ", 1)),
        record("e", &edited.join(" ")),
    ]
    .join("\n");
    write(dir.path(), "in.jsonl", lines.as_bytes());
    ok(&run_in(
        dir.path(),
        &["stats", "in.jsonl", "--report", "s.html", "-q"],
        b"",
    ));
    let page = std::fs::read_to_string(dir.path().join("s.html")).unwrap();
    assert!(!page.contains("joined"), "{page}");
    // Two clusters, {a, e} (one word of 200 changed: 5 of 196 shingles each side) and {c, d}
    // (the same words): each shows its kept document and its other member.
    let said: Vec<f64> = page
        .split("exact similarity ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    let expected_near = 191.0 / 201.0;
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said.contains(&1.0), "{said:?}");
    assert!(
        said.iter().any(|s| (s - expected_near).abs() < 0.002),
        "{said:?}, expected one of about {expected_near:.3}"
    );
}
