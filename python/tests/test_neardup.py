"""Issue 13: the Python API against the command line on the same data.

Run by scripts/test after `cargo test` (which builds target/debug/neardup) with the package
installed in target/pyenv: `target/pyenv/bin/python -m pytest python/tests`.
"""

import json
import os
import random
import subprocess
import threading
import _thread
from pathlib import Path

import pytest

import neardup

REPO = Path(__file__).resolve().parents[2]

WORDS = (
    "river market council school storm bridge harvest railway museum election festival "
    "forecast hospital library stadium factory harbour airport village mountain"
).split()


def neardup_bin() -> str:
    for candidate in ("target/debug/neardup", "target/release/neardup"):
        path = REPO / candidate
        if path.exists():
            return str(path)
    pytest.fail("no neardup binary: run `cargo build` first")


def cli(*args, cwd=None, check=True):
    out = subprocess.run([neardup_bin(), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if check and out.returncode != 0:
        pytest.fail(f"neardup {' '.join(map(str, args))} failed: {out.stderr}")
    return out


def corpus(docs=600, seed=7):
    """Families of near copies (a few words changed), exact copies, and unique texts."""
    rng = random.Random(seed)
    texts = []
    while len(texts) < docs:
        base = [rng.choice(WORDS) + str(rng.randrange(50)) for _ in range(rng.randrange(30, 60))]
        texts.append(" ".join(base))
        for _ in range(rng.randrange(0, 4)):
            copy = list(base)
            for _ in range(rng.randrange(0, 3)):
                copy[rng.randrange(len(copy))] = rng.choice(WORDS)
            texts.append(" ".join(copy))
    return texts[:docs]


def write_jsonl(path, texts, ids):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in zip(ids, texts):
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")


def lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def texts():
    return corpus()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, texts):
    """The command line's dedup of the same texts, ids p0, p1, ..."""
    d = tmp_path_factory.mktemp("cli")
    ids = [f"p{i}" for i in range(len(texts))]
    write_jsonl(d / "in.jsonl", texts, ids)
    cli("dedup", "in.jsonl", "-o", "kept.jsonl", "--removed", "removed.jsonl",
        "--clusters", "clusters.jsonl", "--stats-json", "stats.json", "-q", cwd=d)
    return {"dir": d, "ids": ids}


def test_issue13_clusters_equal_the_cli_clusters_lines(texts, cli_run):
    got = neardup.Dedup().clusters(texts, ids=cli_run["ids"])
    expected = lines(cli_run["dir"] / "clusters.jsonl")
    assert len(expected) > 20
    assert got == expected


def test_issue13_keep_mask_and_removed_equal_the_cli_dedup(texts, cli_run):
    kept = {r["id"] for r in lines(cli_run["dir"] / "kept.jsonl")}
    result = neardup.Dedup().run(texts, ids=cli_run["ids"])
    assert result["keep_mask"] == [i in kept for i in cli_run["ids"]]
    assert not all(result["keep_mask"])
    assert result["removed"] == lines(cli_run["dir"] / "removed.jsonl")
    assert neardup.Dedup().keep_mask(texts) == result["keep_mask"]
    assert [r["id"] for r in neardup.Dedup().removed(texts)] == [
        int(r["id"][1:]) for r in result["removed"]
    ]
    summary = json.loads((cli_run["dir"] / "stats.json").read_text())
    for key in ("docs_read", "kept", "exact_duplicates", "near_duplicates", "clusters", "rejected",
                "candidate_pairs", "exact_checks"):
        assert result["summary"][key] == summary[key], key


def test_issue13_default_ids_are_positions(texts):
    clusters = neardup.Dedup().clusters(texts)
    members = [m["id"] for c in clusters for m in c["members"]]
    assert all(isinstance(m, int) for m in members)
    assert sorted(members) == sorted(set(members))
    assert all(texts[c["kept"]] is not None for c in clusters)


def test_issue13_options_are_the_cli_flags(texts, tmp_path):
    ids = [str(i) for i in range(len(texts))]
    write_jsonl(tmp_path / "in.jsonl", texts, ids)
    cli("clusters", "in.jsonl", "-o", "c.jsonl", "-q", "--threshold", "0.6", "--shingle", "char:5",
        "--verify", "exact", "--num-perm", "64", cwd=tmp_path)
    got = neardup.Dedup(threshold=0.6, shingle="char:5", verify="exact", num_perm=64).clusters(
        texts, ids=ids)
    assert got == lines(tmp_path / "c.jsonl")
    assert got != neardup.Dedup().clusters(texts, ids=ids)


def test_issue13_invalid_settings_raise_value_error_with_the_cli_message(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text":"a b c"}\n')
    for option, flag, value in [("threshold", "--threshold", "1.5"), ("shingle", "--shingle", "word:0"),
                                ("verify", "--verify", "sometimes"), ("num_perm", "--num-perm", "0")]:
        out = cli("dedup", "in.jsonl", "-o", "k.jsonl", flag, value, cwd=tmp_path, check=False)
        assert out.returncode == 1
        with pytest.raises(ValueError) as raised:
            neardup.Dedup(**{option: value})
        assert str(raised.value) in out.stderr, (str(raised.value), out.stderr)
    with pytest.raises(ValueError, match="--frobnicate"):
        neardup.Dedup(frobnicate=True)
    with pytest.raises(ValueError, match="text_field is not an option of Dedup"):
        neardup.Dedup(text_field="body")
    with pytest.raises(ValueError, match="max:FIELD"):
        neardup.Dedup(keep="max:score")


def test_issue13_every_input_type_gives_the_same_result(texts):
    pa = pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    datasets = pytest.importorskip("datasets")
    dedup = neardup.Dedup()
    expected = dedup.keep_mask(texts)
    half = len(texts) // 2
    sources = {
        "tuple": tuple(texts),
        "generator": (t for t in texts),
        "pyarrow string": pa.array(texts, type=pa.string()),
        "pyarrow large_string": pa.array(texts, type=pa.large_string()),
        "pyarrow string_view": pa.array(texts, type=pa.string_view()),
        "pyarrow dictionary": pa.array(texts).dictionary_encode(),
        "pyarrow chunked": pa.chunked_array([texts[:half], texts[half:]]),
        "pandas object": pd.Series(texts, dtype=object),
        "pandas string[pyarrow]": pd.Series(texts, dtype="string[pyarrow]"),
        "datasets column": datasets.Dataset.from_dict({"text": texts})["text"],
    }
    for name, source in sources.items():
        assert dedup.keep_mask(source) == expected, name


def test_issue13_a_datasets_round_trip_with_no_hub(texts, cli_run):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"id": cli_run["ids"], "text": texts})
    mask = neardup.Dedup().keep_mask(ds["text"])
    kept = ds.select([i for i, keep in enumerate(mask) if keep])
    assert kept["id"] == [r["id"] for r in lines(cli_run["dir"] / "kept.jsonl")]


def test_issue13_bad_texts_are_rejected_by_position_or_raise_under_strict():
    pa = pytest.importorskip("pyarrow")
    story = "the quick brown fox jumps over the lazy dog near the old river bank today"
    texts = [story, None, story + "!", 17, "\ud800 lone surrogate", float("nan"), "other words here"]
    result = neardup.Dedup().run(texts)
    rejected = {r["position"]: r["reason"] for r in result["rejected"]}
    assert sorted(rejected) == [1, 3, 4, 5]
    assert "None" in rejected[1] and "int" in rejected[3] and "surrogate" in rejected[4]
    assert result["keep_mask"] == [True, False, False, False, False, False, True]
    s = result["summary"]
    assert s["docs_read"] == 7 and s["rejected"] == 4
    assert s["kept"] + s["exact_duplicates"] + s["near_duplicates"] + s["rejected"] == 7
    with pytest.raises(ValueError, match="text 1: None"):
        neardup.Dedup(strict=True).run(texts)
    nulls = neardup.Dedup().run(pa.array([story, None, story]))
    assert nulls["rejected"] == [{"position": 1, "reason": "a null text"}]
    with pytest.raises(TypeError, match="strings"):
        neardup.Dedup().run(pa.array([1, 2, 3]))
    with pytest.raises(TypeError, match="single str"):
        neardup.Dedup().run(story)
    with pytest.raises(ValueError, match="ids has 2 items for 7 texts"):
        neardup.Dedup().run(texts, ids=["a", "b"])
    with pytest.raises(ZeroDivisionError):
        neardup.Dedup().run(1 / (5 - i) for i in range(10))


def test_issue13_stats_equal_the_cli_stats_json(texts, tmp_path):
    ids = [str(i) for i in range(len(texts))]
    write_jsonl(tmp_path / "in.jsonl", texts, ids)
    expected = json.loads(cli("stats", "in.jsonl", "--json", "-q", "--top", "3", cwd=tmp_path).stdout)
    got = neardup.Dedup().stats(texts, top=3)
    for key in ("seconds", "bytes_read"):
        expected.pop(key), got.pop(key)
    assert got == expected
    assert got["exact_duplicates"] > 0


def test_issue13_dedup_table_keeps_the_cli_rows_with_every_column(texts, cli_run):
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"id": cli_run["ids"], "text": texts, "n": list(range(len(texts)))})
    kept = neardup.dedup_table(table)
    assert kept.schema == table.schema
    assert kept.column("id").to_pylist() == [r["id"] for r in lines(cli_run["dir"] / "kept.jsonl")]
    with pytest.raises(ValueError, match="no column 'body'"):
        neardup.dedup_table(table, text_column="body")


def test_issue13_dedup_files_is_the_cli_dedup(texts, cli_run, tmp_path):
    write_jsonl(tmp_path / "in.jsonl", texts, cli_run["ids"])
    summary = neardup.dedup_files(tmp_path / "in.jsonl", tmp_path / "kept.jsonl",
                                  removed=tmp_path / "removed.jsonl", threads=1)
    assert (tmp_path / "kept.jsonl").read_bytes() == (cli_run["dir"] / "kept.jsonl").read_bytes()
    assert (tmp_path / "removed.jsonl").read_bytes() == (cli_run["dir"] / "removed.jsonl").read_bytes()
    expected = json.loads((cli_run["dir"] / "stats.json").read_text())
    for key in ("seconds", "docs_per_second", "stage_seconds"):
        expected.pop(key), summary.pop(key)
    assert summary == expected
    with pytest.raises(neardup.NeardupError, match="missing.jsonl"):
        neardup.dedup_files(tmp_path / "missing.jsonl", tmp_path / "k2.jsonl")
    assert not (tmp_path / "k2.jsonl").exists()


def test_issue13_the_engine_runs_without_the_gil_and_ctrl_c_interrupts(tmp_path):
    """The texts of a generator are pulled by the engine's thread: a call that held the GIL
    would deadlock there. Ctrl-C (here `interrupt_main`) stops a long call with
    KeyboardInterrupt, leaves no staged file, and the next call works."""
    main = threading.get_ident()
    pulled_on = set()

    def generator(n):
        for i in range(n):
            pulled_on.add(threading.get_ident())
            yield f"document number {i} with a few words that make it long enough to shingle"

    dedup = neardup.Dedup(temp_dir=tmp_path)
    assert sum(dedup.keep_mask(generator(5_000))) == 5_000
    assert pulled_on and main not in pulled_on

    started = threading.Event()

    def endless():
        i = 0
        while True:
            started.set()
            i += 1
            yield f"text {i} " * 20

    timer = threading.Thread(target=lambda: (started.wait(), _thread.interrupt_main()))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        dedup.run(endless())
    timer.join()
    assert list(tmp_path.iterdir()) == []
    assert dedup.keep_mask(["a b c d e f", "a b c d e f"]) == [True, False]


def test_issue13_an_index_built_from_python_is_the_cli_index(texts, tmp_path):
    """Index.build/add/info and Dedup(against=[...]) give what `neardup index build` and
    `dedup --against` give on the same texts."""
    half = len(texts) // 2
    first_ids = [f"old{i}" for i in range(half)]
    second_ids = [f"new{i}" for i in range(len(texts) - half)]
    write_jsonl(tmp_path / "first.jsonl", texts[:half], first_ids)
    write_jsonl(tmp_path / "second.jsonl", texts[half:], second_ids)
    cli("index", "build", "--index", "cli-index", "first.jsonl", "-q", cwd=tmp_path)
    cli("dedup", "second.jsonl", "--against", "cli-index", "-o", "kept.jsonl", "--removed",
        "removed.jsonl", "-q", cwd=tmp_path)

    index = neardup.Index(tmp_path / "py-index")
    summary = index.build(texts[:half], ids=first_ids)
    assert summary["docs_read"] == half
    info = index.info()
    expected = json.loads(cli("index", "info", "--index", "cli-index", "--json", cwd=tmp_path).stdout)
    assert info["documents"] == expected["documents"] > 0
    assert info["manifest"]["params"] == expected["manifest"]["params"]

    removed = neardup.Dedup(against=[index]).removed(texts[half:], ids=second_ids)
    expected_removed = lines(tmp_path / "removed.jsonl")
    assert any("duplicate_in" in r for r in removed)
    assert any("duplicate_in" not in r for r in removed)
    key = lambda r: (r["id"], r["duplicate_of"], "duplicate_in" in r, r["kind"])  # noqa: E731
    assert [key(r) for r in removed] == [key(r) for r in expected_removed]

    with pytest.raises(ValueError, match="ids has 1 items for"):
        neardup.Index(tmp_path / "other").build(texts[:3], ids=["a"])
    added = index.add(texts[half:], ids=second_ids)
    assert added["docs_read"] == len(texts) - half
    assert index.info()["documents"] > info["documents"]
    with pytest.raises(neardup.NeardupError):
        neardup.Index(tmp_path / "py-index").build(texts[:3])


def test_issue13_ctrl_c_stops_dedup_files_and_commits_nothing(tmp_path):
    """dedup_files runs the command line's dedup with the same cancel flag as Dedup: its input is
    a pipe that never ends, so only Ctrl-C can stop it, and it leaves no output."""
    fifo = tmp_path / "endless.jsonl"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed():
        try:
            with open(fifo, "w") as f:
                i = 0
                while not stop.is_set():
                    f.write("".join(json.dumps({"id": i + k, "text": f"document {i + k} " * 30}) + "\n"
                                    for k in range(500)))
                    i += 500
        except (BrokenPipeError, OSError):
            pass

    feeder = threading.Thread(target=feed)
    feeder.start()
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            neardup.dedup_files(fifo, tmp_path / "kept.jsonl", removed=tmp_path / "removed.jsonl")
    finally:
        stop.set()
        timer.join()
        feeder.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endless.jsonl"]


def test_issue14_spans_index_the_python_str_at_the_compared_story():
    """Pages of four sites, each with its template (non-ASCII, so offsets in bytes would be
    wrong) around one shared story: text[start:end] of each span is the story, never the
    template."""
    rng = random.Random(3)
    story = "\n".join([
        "The river council said on Monday that the old railway bridge would close for repairs "
        "after the storm, and that the work could take most of the winter to finish.",
        "Engineers who inspected it last week found that the water had washed away part of "
        "the stone under the second arch, and they asked for the trains to be stopped.",
        "The mayor told reporters that buses would carry passengers between the two stations "
        "while the bridge was shut, and that the council would pay for them from its reserves.",
        "Farmers near the village said they were worried about the harvest, because the only "
        "other road to the market is narrow and often flooded at this time of the year.",
    ])
    pages, templates = [], []
    for site in range(4):
        head = f"Übersicht · Café {site} · Menü\nStartseite » Nachrichten » Welt {site}\n"
        foot = f"\n© {site} Société Générale de Presse — tous droits réservés\nالرئيسية {site}"
        templates.append((head, foot))
        own = [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(4)]
        for body in [story] + own:
            pages.append(head + body + foot)
    clusters = neardup.Dedup(strip_boilerplate=True, spans=True).clusters(pages)
    wire = [c for c in clusters if c["size"] == 4]
    assert len(wire) == 1, clusters
    for member in wire[0]["members"]:
        text = pages[member["id"]]
        shown = [text[start:end] for start, end in member["spans"]]
        assert "".join(shown).replace("\n", "") == story.replace("\n", ""), shown
    # Without the setting, no spans.
    plain = neardup.Dedup(strip_boilerplate=True).clusters(pages)
    assert all("spans" not in m for c in plain for m in c["members"])
