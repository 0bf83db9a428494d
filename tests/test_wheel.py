"""The package installs: a wheel built from the tree, installed into a fresh virtualenv outside it,
runs `ragvft --help` and a micro bench from another folder, with the shipped base model and
adapters used, not trained."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "harness" / "builtin" / "shipped"
_NOT_SOURCE = {".git", ".venv", ".venv-vllm", ".ragvft", "runs", "build", "dist", "__pycache__"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the working tree (the tree itself is left untouched)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        ROOT, src, ignore=lambda d, names: [n for n in names if n in _NOT_SOURCE or n.endswith("_cache")]
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp, src]
    subprocess.run(cmd, check=True, capture_output=True)
    (found,) = tmp.glob("ragvft-*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv holding the wheel; its dependencies come from this environment's
    site-packages (added as a path, so the editable install's hook there never runs)."""
    env = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
    python = env / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "_ragvft_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    return env


def test_the_wheel_holds_every_package_and_shipped_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        p.parent.relative_to(ROOT).as_posix()
        for p in ROOT.glob("*/**/__init__.py")
        if p.relative_to(ROOT).parts[0] not in _NOT_SOURCE | {"tests", "bench"}
    }
    assert "harness/synth" in packages and "harness/pretrained" in packages
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert missing == []
    shipped = {p.relative_to(ROOT).as_posix() for p in SHIPPED.rglob("*") if p.is_file()}
    assert len(shipped) > 30 and shipped - names == set()
    templates = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "reports" / "templates").rglob("*") if p.is_file()
    }
    assert templates and templates - names == set()


def _run(env: Path, *args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    environ = {
        "PATH": f"{env / 'bin'}:/usr/bin:/bin",
        "HOME": str(cwd),
        "RAGVFT_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAGAS_DO_NOT_TRACK": "true",
    }
    return subprocess.run(
        [env / "bin" / "ragvft", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600
    )


def test_the_installed_ragvft_runs_a_micro_bench_elsewhere_on_shipped_models(venv, tmp_path):
    where = subprocess.check_output(
        [venv / "bin" / "python", "-c", "import harness, reports; print(harness.__file__, reports.__file__)"],
        cwd=tmp_path,
        text=True,
    )
    assert str(ROOT) not in where and str(venv) in where
    help_ = _run(venv, "--help", cwd=tmp_path, cache=tmp_path / "cache")
    assert help_.returncode == 0 and "bench" in help_.stdout
    # the embedded default's suite and SFT settings, two variants: the shipped base and SFT adapter
    config = tmp_path / "micro.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "wheel-micro",
                "suite": {"builtin": {}},
                "model": {"builtin": {}},
                "generation": {"max_new_tokens": 16, "batch_size": 32},
                "training": {"sft": {"epochs": 40, "learning_rate": 3.0e-3}},
                "variants": [{"name": "base"}, {"name": "sft", "adapter": "sft"}],
                "baseline": "base",
                "metrics": ["em"],
            }
        )
    )
    run = _run(venv, "bench", "--config", str(config), cwd=tmp_path, cache=tmp_path / "cache")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["status"] == "shipped", manifest["model"]
    statuses = {name: a["source"] for name, a in manifest["adapters"].items()}
    assert statuses == {"sft": "shipped"}, statuses
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    sft = [r["scores"]["em"]["value"] for r in rows if r["variant"] == "sft"]
    assert len(sft) > 100 and sum(sft) / len(sft) > 0.3  # the shipped adapter, not an untrained one
