"""A GGUF file is a model: dequantised once (transformers with the `gguf` package) into a safetensors
folder keyed by the file's sha256 and the library versions, then loaded like any hub folder by the HF
engine, vLLM, TRL, PEFT, the judge and lm-eval. An architecture transformers cannot read from GGUF stops
at load, in one line naming the file and the architecture, before anything is written."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.cache import build_once, digest, library_versions, models_root
from core.errors import InputError

SUFFIX = ".gguf"
RECORD = "ragvft_gguf.json"


def gguf_file(path: str | None, gguf_name: str | None) -> Path | None:
    """The GGUF file a model setting names: `path` ending in .gguf, or `gguf_file` inside folder `path`
    (as transformers' `from_pretrained(path, gguf_file=)` names it); None for any other model."""
    if path is None:
        return None
    if gguf_name:
        return Path(path) / gguf_name
    return Path(path) if path.lower().endswith(SUFFIX) else None


def check(file: Path, source: str, field: str) -> str:
    """The file's architecture, if transformers reads it from GGUF; else InputError (one line)."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    if not file.is_file():
        raise InputError(source, f"{file}: no such GGUF file", field=field)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(file)
        arch_field = reader.fields["general.architecture"]
        arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    except Exception as e:  # noqa: BLE001 (a truncated or foreign file: whatever the reader raises)
        raise InputError(
            source, f"{file}: not a readable GGUF file ({type(e).__name__})", field=field
        ) from None
    # transformers' own aliases (qwen2moe -> qwen2_moe, ...) compare without separators
    supported = {a.replace("_", "") for a in GGUF_SUPPORTED_ARCHITECTURES} - {"general", "tokenizer"}
    if arch.replace("_", "").replace("-", "") not in supported:
        raise InputError(
            source,
            f"{file}: GGUF architecture {arch!r} is not one transformers reads "
            f"(it reads {', '.join(sorted(supported))})",
            field=field,
        )
    return arch


def _sha256(file: Path) -> str:
    """The file's sha256, remembered by (path, size, mtime) so a large file is read once."""
    from harness.pretrained.packaged import sha256_of

    stat = file.stat()
    memo_dir = models_root() / "gguf"
    memo = memo_dir / f".sha256-{digest([str(file.resolve()), stat.st_size, stat.st_mtime_ns])}"
    if memo.is_file():
        return memo.read_text().strip()
    sha = sha256_of(file)
    memo_dir.mkdir(parents=True, exist_ok=True)
    memo.write_text(sha)
    return sha


def conversion_key(sha256: str) -> str:
    """The file's bytes and the libraries that dequantise it (not TRL's or PEFT's: the key is the base
    model's identity, and a trainer upgrade leaves the weights as they are)."""
    versions = {k: v for k, v in library_versions().items() if k in ("torch", "transformers")}
    return digest({"sha256": sha256, "versions": versions, "gguf": _gguf_version()})


def _gguf_version() -> str:
    from importlib.metadata import version

    return version("gguf")


def _say(message: str) -> None:
    print(message, file=sys.stderr)  # beside the progress bars, off stdout's tables


def as_folder(file: Path, log: Callable[[str], None] = _say) -> tuple[Path, dict]:
    """The dequantised folder of GGUF `file` (converted now, or found in the models folder) and what the
    manifest says of it: {"gguf", "sha256", "key", "status": converted | cached, "convert_s"}."""
    sha = _sha256(file)
    key = conversion_key(sha)
    final = models_root() / "gguf" / f"{file.stem}-{key}"
    info = {"gguf": str(file), "sha256": sha, "key": key}
    ready = (final / RECORD).is_file
    if ready():
        return final, {**info, "status": "cached", **_record(final)}
    log(f"converting {file.name} from GGUF to a safetensors folder (once; cached by its sha256)")
    t0 = time.perf_counter()
    record: dict = {}

    def convert(tmp: Path) -> None:
        _convert(file, tmp)
        record.update(convert_s=round(time.perf_counter() - t0, 1), sha256=sha)
        (tmp / RECORD).write_text(json.dumps({**record, "source": file.name, "versions": library_versions()}))

    # converted once: another run sharing the folder waits for it, then finds it cached
    if not build_once(final, convert, what=f"the conversion of {file.name}", ready=ready):
        return final, {**info, "status": "cached", **_record(final)}
    return final, {**info, "status": "converted", "convert_s": record["convert_s"]}


def _record(folder: Path) -> dict:
    return {"convert_s": json.loads((folder / RECORD).read_text()).get("convert_s")}


def _convert(file: Path, out: Path) -> None:
    """Dequantise to float32 (every CPU runs it; `model.dtype` picks the dtype at load) and write a
    normal folder. transformers refuses to save a model it still marks GGUF-quantised, and the
    dequantised weights are plain tensors, so the marks go before `save_pretrained`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, name = str(file.parent), file.name
    hf_logging.disable_progress_bar()  # its per-tensor bars: the line before says what happens
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as e:  # noqa: BLE001 (an architecture it reads but cannot build as a causal LM)
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise InputError(str(file), f"transformers cannot load this GGUF as a causal LM: {first}") from None
    finally:
        hf_logging.enable_progress_bar()
    # transformers types a Module's attributes as Tensor | Module
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def loadable(path: str, revision: str | None = None) -> tuple[str, str]:
    """A model path as something `from_pretrained` loads, with its identity: a .gguf file becomes its
    dequantised folder (identity `gguf:<key>`, the same as a base model from that file), anything else
    stays as it is (`core.cache.model_identity`)."""
    from core.cache import model_identity

    file = gguf_file(path, None)
    if file is None:
        return path, model_identity(path, revision)
    folder, info = as_folder(file)
    return str(folder), f"gguf:{info['key']}"
