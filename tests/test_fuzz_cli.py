"""Property-based fuzzing of the commands that read a run folder (issue #37): `ragvft gate`, `bless`,
`review` and `labels import` on a valid run whose files (results.jsonl, summary.json, manifest.json,
the labels attached to it), the labels file imported or the blessed baseline were mutated at random:
values of the wrong type, deleted, renamed and added keys, huge, negative and non-finite numbers, odd
Unicode, lines that are no row, bytes that are not UTF-8, files cut short. Whatever the input, each
command ends well (exit 0, or 1 for a gate that failed) with no temporary file left, or says why in one
line naming a file, exit 2, with nothing written: never a traceback. In process (typer's CliRunner),
derandomised: the same examples on every run, at least 200 for each entry point."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests import fuzz
from tests.conftest import invoke
from tests.review_run import labels_file, make_run

FUZZ = settings(
    derandomize=True,  # the same examples every run: a failure in CI is one to reproduce, not luck
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXT = [
    "", " ", "a" * 300, "/", "x\x00y", "nan", "true", "3", "-1", "em", "base", "rag", "judge", "q0", "correct",
    "valid", "invalid", "\u2028", "\u202e", "\ufeff", "\U0001f600", "\ud800", "a\udc80b", "null",
    "<script>x</script>", "\n",
]  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2, 2**32, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.booleans(), st.none(), NUMBERS, st.sampled_from(ODD_TEXT), st.text(max_size=8))
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(
        st.sampled_from(["mean", "value", "id", "rules", "variant", "metric", "a"]), SCALARS, max_size=2
    ),
)
KEYS = st.sampled_from(["extra", "mean", "value", "variant", "scores", "labels", "\ud800", "é", "1"])
# What a hostile line of results.jsonl holds instead of a row
LINES = [
    b"",
    b"42",
    b"[]",
    b"null",
    b'"text"',
    b"{",
    b"[" * 100_000,
    b'{"variant": ' + b"9" * 5000 + b"}",
    b'{"variant": "\\ud800"}',
    b"\xff\xfe",
    b"\x00",
    b"NaN",
    b'{"a": 1, "a": 2}',
]


def mutate(doc: Any, data: st.DataObject) -> Any:
    return fuzz.mutate(doc, data, VALUES, KEYS)


def dumped(doc: Any, data: st.DataObject, indent: int | None = None) -> bytes:
    """`doc` as JSON (ASCII-escaped or not), sometimes cut short or with a byte that is not UTF-8."""
    try:
        raw = json.dumps(doc, ensure_ascii=data.draw(st.booleans()), indent=indent).encode(
            "utf-8", "surrogatepass"
        )
    except (TypeError, ValueError):  # a key JSON cannot write
        raw = b"{}"
    return spoilt_bytes(raw, data)


def spoilt_bytes(raw: bytes, data: st.DataObject) -> bytes:
    """`raw`, one time in five cut short or given a byte that is not UTF-8."""
    roll = data.draw(st.integers(0, 9))
    if roll == 0:
        return raw[: data.draw(st.integers(0, len(raw)))]
    if roll == 1:
        at = data.draw(st.integers(0, len(raw)))
        return raw[:at] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) + raw[at:]
    return raw


def mutated_json(raw: bytes, data: st.DataObject) -> bytes:
    doc = json.loads(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        doc = mutate(doc, data)
    return dumped(doc, data, indent=data.draw(st.sampled_from([None, 1])))


def mutated_rows(raw: bytes, data: st.DataObject) -> bytes:
    """results.jsonl with a row mutated, or a line replaced by one that is no row."""
    lines = raw.rstrip(b"\n").split(b"\n")
    i = data.draw(st.integers(0, len(lines) - 1))
    if data.draw(st.integers(0, 3)) == 0:
        lines[i] = data.draw(st.sampled_from(LINES))
    else:
        lines[i] = mutated_json(lines[i], data).replace(b"\n", b" ")
    return b"\n".join(lines) + b"\n"


class Scene:
    """A valid run (as `ragvft bench` writes one, with a gate and labels attached), its blessed baseline
    and a labels file to import, in `root`; `reset` puts every file back as it was."""

    def __init__(self, root: Path) -> None:
        self.root = root
        blessed = root / "blessed.json"
        rules = [
            {"variant": "rag", "metric": "em", "margin": 0.5},
            {"variant": "base", "metric": "judge", "floor": 0},
        ]
        self.run = make_run(root, config={"gate": {"blessed": str(blessed), "rules": rules}})
        self.labels = labels_file(self.run, root).rename(root / "labels-in.json")
        assert invoke("labels", "import", self.labels, "--run", self.run)[0] == 0  # labels.json attached
        assert invoke("bless", "--run", self.run, "--out", blessed)[0] == 0
        self.blessed = blessed
        self.pristine = files(root)

    def reset(self) -> None:
        for p in sorted(self.root.rglob("*"), reverse=True):
            if str(p.relative_to(self.root)) in self.pristine:
                continue
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
        for name, raw in self.pristine.items():
            if raw is not None and (self.root / name).read_bytes() != raw:
                (self.root / name).write_bytes(raw)

    def spoil(self, name: str, data: st.DataObject) -> None:
        """Mutate the file `name` (of the run folder, else of `root`)."""
        path = self.run / name if (self.run / name).exists() else self.root / name
        raw = path.read_bytes()
        path.write_bytes(mutated_rows(raw, data) if name == "results.jsonl" else mutated_json(raw, data))
        event(f"spoilt {name}")


def files(root: Path) -> dict[str, bytes | None]:
    """{relative path: bytes} of every file under `root` (None for folders and links)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Scene:
    return Scene(tmp_path_factory.mktemp("fuzz-cli"))


def ends_well(scene: Scene, args: list) -> None:
    """`ragvft ARGS` (in process: a crash fails in `invoke`) on the spoilt scene: a valid result and no
    temporary file left, or one line naming a file, exit 2, and nothing written."""
    before = files(scene.root)
    code, output = invoke(*args)
    verdict = output.strip().splitlines()[-1:] if output.strip() else [""]
    if code == 2 and not verdict[0].startswith("gate error: "):  # that one: the gate's verdict, another suite
        lines = output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(scene.root) in lines[0], output
        assert files(scene.root) == before, output
        event(f"refused: {lines[0].split(': ', 2)[-1][:40]}")
        return
    assert code in (0, 1, 2), output  # 1: the gate ran and a rule failed; 2: "gate error", as above
    assert not [p for p in scene.root.rglob("*.tmp")], output
    event(f"exit {code}")


RUN_FILES = ["results.jsonl", "summary.json", "manifest.json", "labels.json"]


@settings(FUZZ, max_examples=250)
@given(st.data())
def test_gate_on_a_spoilt_run(scene, data):
    scene.reset()
    for name in data.draw(st.lists(st.sampled_from(RUN_FILES), min_size=1, max_size=2, unique=True)):
        scene.spoil(name, data)
    ends_well(scene, ["gate", "--run", scene.run])


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_gate_on_a_spoilt_baseline(scene, data):
    scene.reset()
    scene.spoil("blessed.json", data)
    ends_well(scene, ["gate", "--run", scene.run, "--junit", scene.root / "junit.xml"])


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_bless_a_spoilt_run(scene, data):
    scene.reset()
    scene.spoil(data.draw(st.sampled_from(RUN_FILES)), data)
    ends_well(scene, ["bless", "--run", scene.run, "--out", scene.root / "again.json"])


@settings(FUZZ, max_examples=200)
@given(st.data())
def test_review_a_spoilt_run(scene, data):
    scene.reset()
    scene.spoil(data.draw(st.sampled_from(RUN_FILES[:3])), data)
    ends_well(scene, ["review", "--run", scene.run])


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_labels_import_on_a_spoilt_run_or_labels_file(scene, data):
    scene.reset()
    scene.spoil(data.draw(st.sampled_from([*RUN_FILES, scene.labels.name])), data)
    replace = data.draw(st.sampled_from([[], ["--replace"]]))
    ends_well(scene, ["labels", "import", scene.labels, "--run", scene.run, *replace])


def test_the_scene_is_valid(scene):
    """What the tests above spoil works as it is: every command ends with exit 0 (the gate: 0 or 1)."""
    scene.reset()
    for args in (
        ["gate", "--run", scene.run],
        ["bless", "--run", scene.run, "--out", scene.root / "b.json"],
        ["review", "--run", scene.run],
        ["labels", "import", scene.labels, "--run", scene.run],
    ):
        code, output = invoke(*args)
        assert code in ((0, 1) if args[0] == "gate" else (0,)), output
    scene.reset()
    assert files(scene.root) == scene.pristine
