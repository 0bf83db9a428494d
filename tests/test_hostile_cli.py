"""Hostile run folders and output locations, through the command line (issue #37): each case below was a
traceback (exit 1), lost labels or left a temporary file. Each now ends in one line naming the file
(and the line of results.jsonl), exit code 2, no traceback, and nothing written or left behind: the
folders involved are listed, bytes and all, before and after. One micro bench (and its blessed
baseline) is made for the module; every case works on a copy of it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import assert_input_error, invoke, write_config

GATE = {"blessed": "blessed.json", "rules": [{"variant": "rag", "metric": "em", "margin": 0.2}]}


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every file, link and folder under `folder` (dot-files too): its bytes, link target or "dir"."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        name = str(p.relative_to(folder))
        out[name] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory, cache_dir) -> Path:
    """A folder holding a micro bench's run (runs/latest), its blessed baseline (blessed.json), a gated
    config naming it (gated.yaml) and a labels file for the run (labels-in.json)."""
    folder = tmp_path_factory.mktemp("hostile-cli")
    config = write_config(folder)
    code, out = invoke("bench", "--config", config)
    assert code == 0, out
    run = (folder / "runs" / "latest").resolve()
    code, out = invoke("bless", "--run", run, "--out", folder / "blessed.json")
    assert code == 0, out
    write_config(folder, None, "gated.yaml", gate=GATE)
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    (folder / "labels-in.json").write_text(json.dumps(labels_for(run, rows[0], "correct")))
    return folder


def labels_for(run: Path, row: dict, label: str, **extra) -> dict:
    """A labels file as the review page exports one: one label on `row`'s answer (or, with variant
    None in `extra`, on its question)."""
    from reports import gate

    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    manifest = json.loads((run / "manifest.json").read_text())
    lab = {"question_id": row["question_id"], "variant": row["variant"], "label": label} | extra
    return {"run": manifest["run_id"], "suite": gate.run_fingerprint(rows, manifest), "labels": [lab]}


@pytest.fixture
def run(made, tmp_path) -> Path:
    """A copy of the module's run, to spoil."""
    return Path(shutil.copytree((made / "runs" / "latest").resolve(), tmp_path / "run"))


def command(name: str, made: Path, run: Path, tmp_path: Path) -> list:
    """`ragvft ...` of each command that reads a run folder, on `run`."""
    return {
        "gate": ["gate", "--run", run, "--config", made / "gated.yaml", "--baseline", made / "blessed.json"],
        "bless": ["bless", "--run", run, "--out", tmp_path / "out" / "blessed.json"],
        "review": ["review", "--run", run],
        "labels import": ["labels", "import", made / "labels-in.json", "--run", run],
    }[name]


COMMANDS = ["gate", "bless", "review", "labels import"]


def rewrite_row(run: Path, number: int, text: bytes) -> None:
    """results.jsonl with its line `number` (from 1) replaced by `text`."""
    lines = (run / "results.jsonl").read_bytes().split(b"\n")
    lines[number - 1] = text
    (run / "results.jsonl").write_bytes(b"\n".join(lines))


def first_row(run: Path) -> dict:
    return json.loads((run / "results.jsonl").read_text().split("\n")[0])


def spoil(run: Path, case: str) -> str:
    """Spoil `run` as `case` says; returns what the error line must hold (the file, line, field)."""
    if case == "a byte that is not UTF-8 in results.jsonl":
        rewrite_row(run, 3, (run / "results.jsonl").read_bytes().split(b"\n")[2].replace(b"?", b"\xff", 1))
        return f"{run / 'results.jsonl'}:3: not UTF-8 text"
    if case in ("a byte that is not UTF-8 in summary.json", "a byte that is not UTF-8 in manifest.json"):
        name = case.rsplit(" ", 1)[1]
        (run / name).write_bytes((run / name).read_bytes().replace(b"{", b"{\xe9", 1))
        return f"{run / name}:1: not UTF-8 text (byte 1)"
    if case == "a manifest that is []":
        (run / "manifest.json").write_text("[]")
        return f"{run / 'manifest.json'}: expected a JSON object (the run's manifest), got a list"
    if case == "a summary of the wrong shape":
        summary = json.loads((run / "summary.json").read_text())
        summary["variants"]["rag"]["em"] = [0.5]
        (run / "summary.json").write_text(json.dumps(summary))
        return f"{run / 'summary.json'}: variants.rag.em: Input should be a valid dictionary, got a list"
    if case == "a results row that is 42":
        rewrite_row(run, 2, b"42")
        return f"{run / 'results.jsonl'}:2: expected a JSON object (a result row), got a number"
    if case == "a results row missing its scores":
        row = first_row(run)
        del row["scores"]
        rewrite_row(run, 1, json.dumps(row).encode())
        return f"{run / 'results.jsonl'}:1: scores: missing"
    if case == "a lone surrogate in an answer":
        rewrite_row(run, 1, json.dumps(first_row(run) | {"question": "What \ud800 is?"}).encode())
        return f"{run / 'results.jsonl'}:1: question: not valid Unicode: a lone surrogate \\ud800"
    raise AssertionError(case)


CASES = [
    "a byte that is not UTF-8 in results.jsonl",
    "a byte that is not UTF-8 in summary.json",
    "a byte that is not UTF-8 in manifest.json",
    "a manifest that is []",
    "a summary of the wrong shape",
    "a results row that is 42",
    "a results row missing its scores",
    "a lone surrogate in an answer",
]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_a_spoilt_run_folder_is_one_line_naming_the_file(made, run, tmp_path, name, case):
    where = spoil(run, case)
    before = snapshot(tmp_path)
    assert_input_error(invoke(*command(name, made, run, tmp_path)), f"error: {where}")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_reads_the_unspoilt_run(made, run, tmp_path, name):
    """The cases above spoil a run these commands take as it is."""
    code, out = invoke(*command(name, made, run, tmp_path))
    assert code == 0, out


@pytest.mark.parametrize("name", ["gate", "bless"])
def test_labels_attached_to_the_run_that_are_not_utf8(made, run, tmp_path, name):
    """The gate reads the suite of the labels attached to a run (they must be of its suite)."""
    (run / "labels.json").write_bytes(b'{"suite": "caf\xe9"}')
    before = snapshot(tmp_path)
    assert_input_error(
        invoke(*command(name, made, run, tmp_path)), f"error: {run / 'labels.json'}:1: not UTF-8"
    )
    assert snapshot(tmp_path) == before


# --- nothing lost, nothing stray --------------------------------------------------------------------


def test_labels_import_refuses_an_empty_file(made, run, tmp_path):
    assert invoke("labels", "import", made / "labels-in.json", "--run", run)[0] == 0
    before = snapshot(run)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(json.loads((made / "labels-in.json").read_text()) | {"labels": []}))
    for args in ([], ["--replace"]):  # not even to replace: an empty export is a mistake, not a wish
        line = assert_input_error(invoke("labels", "import", empty, "--run", run, *args))
        assert line.startswith(f"error: {empty}: labels: no labels in it: nothing to import")
    empty.write_text("")
    assert_input_error(invoke("labels", "import", empty, "--run", run), f"{empty}: the file is empty")
    assert snapshot(run) == before


def test_labels_import_adds_and_replacing_takes_replace(made, run, tmp_path):
    """A second file adds its labels to those attached; one labelling an answer otherwise is refused
    (naming the label) without --replace, and with it replaces them all."""
    row = first_row(run)
    second = tmp_path / "second.json"
    second.write_text(json.dumps(labels_for(run, row, "valid", variant=None)))  # the question's label
    assert invoke("labels", "import", made / "labels-in.json", "--run", run)[0] == 0
    code, out = invoke("labels", "import", second, "--run", run)
    assert code == 0 and "(1 of them kept from before)" in " ".join(out.split()), out
    attached = json.loads((run / "labels.json").read_text())["labels"]
    assert [(lab["variant"], lab["label"]) for lab in attached] == [
        (row["variant"], "correct"),
        (None, "valid"),
    ]

    other = tmp_path / "other.json"
    other.write_text(json.dumps(labels_for(run, row, "incorrect")))
    before = snapshot(run)
    line = assert_input_error(invoke("labels", "import", other, "--run", run))
    assert line.startswith(f"error: {other}: labels[0]: {run / 'labels.json'} has 'correct'"), line
    assert "--replace" in line and snapshot(run) == before
    code, out = invoke("labels", "import", other, "--run", run, "--replace")
    assert code == 0, out
    assert [lab["label"] for lab in json.loads((run / "labels.json").read_text())["labels"]] == ["incorrect"]


def test_labels_import_writes_all_four_files_or_none(made, run, tmp_path, monkeypatch):
    """Each of labels.json, summary.json, report.html and report.md is written to a temporary file
    before any is renamed into place: a failure leaves the run as it was, and no temporary file."""
    (run / "report.md").unlink()
    (run / "report.md").mkdir()  # one of the four cannot be written at all: found before writing
    before = snapshot(run)
    assert_input_error(
        invoke("labels", "import", made / "labels-in.json", "--run", run), f"{run / 'report.md'}: a folder"
    )
    assert snapshot(run) == before
    (run / "report.md").rmdir()
    before = snapshot(run)
    real = Path.write_text

    def full(self, *args, **kwargs):  # the disk fills up while the third is written
        if self.name.startswith(".report.html."):
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    line = assert_input_error(invoke("labels", "import", made / "labels-in.json", "--run", run))
    assert line == f"error: {run / 'report.html'}: cannot write it: No space left on device"
    assert snapshot(run) == before


def test_bless_out_naming_a_folder_leaves_nothing(made, run, tmp_path):
    out = tmp_path / "baselines"
    out.mkdir()
    before = snapshot(tmp_path)
    assert_input_error(invoke("bless", "--run", run, "--out", out), f"error: {out}: is a folder")
    assert snapshot(tmp_path) == before


def test_bless_that_fails_writing_leaves_no_temporary_file(made, run, tmp_path, monkeypatch):
    """A failure once the temporary file exists (a full disk, say) removes it."""
    from core import cache

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.os, "replace", full)
    before = snapshot(tmp_path)
    out = tmp_path / "blessed.json"
    assert_input_error(
        invoke("bless", "--run", run, "--out", out), f"{out}: cannot write the baseline: No space"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("option", ["review --out", "gate --junit"])
def test_an_output_file_naming_a_folder(made, run, tmp_path, option):
    out = tmp_path / "folder"
    out.mkdir()
    args = {
        "review --out": ["review", "--run", run, "--out", out],
        "gate --junit": [*command("gate", made, run, tmp_path), "--junit", out],
    }[option]
    before = snapshot(tmp_path)
    assert_input_error(invoke(*args), f"error: {out}: ", "is a folder")
    assert snapshot(tmp_path) == before


def test_gate_junit_in_a_folder_that_does_not_exist(made, run, tmp_path):
    junit = tmp_path / "no" / "j.xml"
    assert_input_error(invoke(*command("gate", made, run, tmp_path), "--junit", junit), "does not exist")
    assert not (tmp_path / "no").exists()


# --- where a bench writes, checked before it starts ------------------------------------------------


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """A cache of the test's own, which a bench stopped before any work never makes."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RAGVFT_CACHE", str(cache))
    return cache


def bench_stops(folder: Path, *fragments: str, **overrides) -> None:
    """`ragvft bench` on the micro config (with `overrides`) in `folder`: one line holding `fragments`,
    exit 2, and nothing in `folder` changed (no cache made: no model built, no store)."""
    config = write_config(folder, None, **overrides)
    before = snapshot(folder)
    assert_input_error(invoke("bench", "--config", config), *fragments)
    assert snapshot(folder) == before


def test_runs_dir_that_is_a_file(tmp_path, own_cache):
    (tmp_path / "runs").write_text("not a folder")
    bench_stops(tmp_path, "bench.yaml: runs_dir: ", f"{tmp_path / 'runs'} is a file, not a folder")


def test_runs_dir_inside_a_file(tmp_path, own_cache):
    (tmp_path / "file").write_text("not a folder")
    bench_stops(tmp_path, f"cannot be made: {tmp_path / 'file'} is a file", runs_dir="file/runs")


def test_runs_dir_that_cannot_be_written(tmp_path, own_cache, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: the refusal is the file system's, faked here
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != runs and real(p, mode, **kw))
    try:
        bench_stops(tmp_path, f"runs_dir: {runs} is not writable")
    finally:
        runs.chmod(0o700)


def test_latest_that_is_a_real_folder(tmp_path, own_cache):
    """It was a traceback after all the work, leaving `.latest.<pid>.tmp`; now nothing starts."""
    (tmp_path / "runs" / "latest").mkdir(parents=True)
    (tmp_path / "runs" / "latest" / "mine.txt").write_text("keep me")
    bench_stops(tmp_path, f"error: {tmp_path / 'runs' / 'latest'}: a folder where ragvft keeps a link")


def test_results_store_damaged_past_its_header(tmp_path, own_cache):
    own_cache.mkdir()
    (own_cache / "results.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    bench_stops(tmp_path, f"error: {own_cache / 'results.sqlite'}: not a usable SQLite database")


def test_retrieval_checks_its_runs_dir_too(tmp_path, own_cache):
    (tmp_path / "runs").write_text("not a folder")
    config = write_config(tmp_path)
    before = snapshot(tmp_path)
    assert_input_error(invoke("retrieval", "--config", config), "runs_dir: ", "is a file, not a folder")
    assert snapshot(tmp_path) == before


def test_write_run_leaves_nothing_when_it_fails(tmp_path, monkeypatch):
    """What the check before the run cannot see (latest made a folder since, a writer failing): the run
    folder's temporary name and latest's temporary link are removed."""
    import harness.run.write as write
    from core.errors import InputError
    from tests.review_run import make_run

    runs = tmp_path / "runs"
    first = make_run(tmp_path)
    (runs / "latest").unlink()
    (runs / "latest").mkdir()
    with pytest.raises(InputError, match="the run is written .*, but latest cannot point at it"):
        make_run(tmp_path)
    written = sorted(p.name for p in runs.iterdir())
    assert len(written) == 3 and first.name in written and "latest" in written  # and no .latest.*.tmp

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write, "write_junit", broken)
    with pytest.raises(InputError, match="cannot write the run: No space left on device"):
        make_run(tmp_path)
    assert sorted(p.name for p in runs.iterdir()) == written  # no .<run-id>.<pid>.tmp


def test_replacing_removes_its_temporary_file_on_every_failure(tmp_path):
    from core.cache import replacing, write_atomic

    with pytest.raises(RuntimeError), replacing(tmp_path / "a.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed while writing")
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "dir", "x")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(tmp_path / "b.json", "\ud800")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]
    write_atomic(tmp_path / "c.json", "whole")
    assert (tmp_path / "c.json").read_text() == "whole" and oct((tmp_path / "c.json").stat().st_mode)[
        -3:
    ] == "644"


# --- calibrate --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seeds, got", [("1,4294967296", "4294967296"), ("-1,2", "-1")])
def test_calibrate_seeds_out_of_the_generators_range(tmp_path, own_cache, seeds, got):
    config = write_config(tmp_path)
    before = snapshot(tmp_path)
    line = assert_input_error(invoke("calibrate", "--config", config, "--seeds", seeds))
    assert line == f"error: --seeds: a seed is a whole number from 0 to 4294967295 (2**32 - 1), got {got}"
    assert snapshot(tmp_path) == before


def test_calibrate_seeds_past_the_range_from_the_configs_seed(tmp_path, own_cache):
    config = write_config(tmp_path, None, seed=2**32 - 1)
    before = snapshot(tmp_path)
    assert_input_error(
        invoke("calibrate", "--config", config), "bench.yaml: seed: ", "got 4294967296", "--seeds"
    )
    assert snapshot(tmp_path) == before
