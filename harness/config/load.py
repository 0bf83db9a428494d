"""Loading `bench.yaml`: strict YAML (the safe loader; a key given twice or a recursive alias refused:
`harness.config.strict_yaml`), every string valid Unicode, validated once into a `BenchConfig`
(a boolean or a non-finite number where a number goes refused: `harness.config.validate`) with the
config file's folder in the validation context (so every path field, `core.paths.ConfigPath` or
`ModelPath`, comes out absolute), and every reference (variant, retriever, metric, adapter folder)
checked. Any problem raises `InputError` naming the file, the line and the field; downstream code gets
absolute paths and never needs the config's location.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from core.errors import InputError, did_you_mean, lone_surrogate
from core.paths import CONFIG_FOLDER
from harness.config.bench import OLD_BLESSED, BenchConfig
from harness.config.inputs import DenseConfig, HybridConfig
from harness.config.strict_yaml import At, line_of, read_yaml
from harness.config.validate import check_numbers, validate
from harness.config.training import NOT_METHODS
from harness.engines.peft_files import adapter_config, soft_prompt
from harness.pretrained import gguf
from harness.pretrained.packaged import PREFIX as PACKAGED_PREFIX
from harness.pretrained.packaged import locate
from harness.training import METHODS, SECTIONS
from judges import SCORERS


def load_config(path: str | Path) -> BenchConfig:
    path = Path(path)
    name = str(path)
    data, lines = read_yaml(path, name)
    at = At(name, lines)
    if not isinstance(data, dict):
        raise InputError(name, "expected a mapping at the top level", line=1)
    _check_text(data, at)
    _check_training(data, at)
    _note_old_keys(data, at)
    config = validate(BenchConfig, data, at, (), context={CONFIG_FOLDER: path.resolve().parent})
    config._source = name
    check_numbers(data, config, at)
    _check_references(config, at)
    _check_decision(config, at)
    _check_models(config, at)
    return config


def _check_text(data: dict[str, Any], at: At) -> None:
    """Every string valid Unicode: YAML's `\\u` escapes can name half a UTF-16 pair, which no path,
    cache key or report can hold."""
    bad = lone_surrogate(data)
    if bad is not None:
        where, what = bad
        raise at.error(where, f"not valid Unicode: a lone surrogate {what} (an escape naming half a UTF-16 pair)")


_noted: set[str] = set()  # the config files whose old keys were noted: once each


def _note_old_keys(data: dict[str, Any], at: At) -> None:
    """One line on stderr, once per file, for a key that was renamed and still works."""
    gate = data.get("gate")
    if isinstance(gate, dict) and OLD_BLESSED in gate and at.name not in _noted:
        _noted.add(at.name)
        where = line_of(at.lines, ("gate", OLD_BLESSED))
        print(
            f"warning: {at.name}:{where}: gate.{OLD_BLESSED} is now gate.blessed (the blessed file): "
            "rename it, the old key still works",
            file=sys.stderr,
        )


def _check_training(data: dict[str, Any], at: At) -> None:
    """Each `training.<method>` section against its method's own config class, so that an error names
    its line and field (the method classes are looked up in the registry, not known to the schema)."""
    training = data.get("training")
    if not isinstance(training, dict):
        return
    for method, section in training.items():
        if method in NOT_METHODS:
            continue
        where = ("training", method)
        if method not in SECTIONS:
            raise at.error(where, f"unknown training method {method!r}{did_you_mean(str(method), SECTIONS)}")
        if section is not None and not isinstance(section, dict):
            raise at.error(where, "expected a mapping of settings")
        validate(SECTIONS[method].config, section or {}, at, where)


def _check_references(config: BenchConfig, at: At) -> None:
    """Every name the config uses names something it defines, every adapter folder is one."""
    if config.suite.hh_rlhf is not None and config.retrievers:
        raise at.error(
            ("retrievers",),
            "the hh_rlhf suite has no corpus, so nothing to retrieve: remove `retrievers` (and every "
            "variant's `retriever`)",
        )
    variants = _check_variants(config, at)
    _check_hybrids(config, at)
    _check_gate_rules(config, variants, at)
    _check_judge(config, at)
    if config.baseline not in variants:
        raise at.error(
            ("baseline",), f"unknown variant {config.baseline!r}{did_you_mean(config.baseline, variants)}"
        )


def _check_variants(config: BenchConfig, at: At) -> set[str]:
    """Each variant's adapter folder, engine and retriever; the variants' names, which are distinct."""
    seen: set[str] = set()
    for i, v in enumerate(config.variants):
        if v.adapter_path is not None and not _is_adapter(v.adapter_path):
            raise at.error(
                ("variants", i, "adapter_path"),
                f"{v.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
            )
        _check_soft_prompt(config, i, at)
        if v.name in seen:
            raise at.error(("variants", i, "name"), f"duplicate variant {v.name!r}")
        seen.add(v.name)
        if v.retriever is not None and v.retriever not in config.retrievers:
            raise at.error(
                ("variants", i, "retriever"),
                f"unknown retriever {v.retriever!r}{did_you_mean(v.retriever, config.retrievers)}",
            )
    return seen


def _is_adapter(folder: str) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def _check_soft_prompt(config: BenchConfig, i: int, at: At) -> None:
    """A soft prompt (prompt or prefix tuning, trained or a folder) generates on the in-process hf
    engine alone: vLLM and OpenAI-compatible servers serve LoRA adapters only. One line before
    anything trains."""
    v, engine = config.variants[i], config.generation.engine
    if engine == "hf":
        return
    if v.adapter is not None and METHODS[v.adapter].adapter_kind == "prompt":
        what, where = f"trains a soft prompt ({v.adapter})", "adapter"
    elif v.adapter_path is not None and _soft_prompt_folder(v.adapter_path):
        what, where = "is a soft prompt (PEFT prompt learning)", "adapter_path"
    else:
        return
    raise at.error(
        ("variants", i, where),
        f"variant {v.name!r} {what}, which generation.engine {engine} cannot serve (it serves LoRA "
        "adapters only): set generation.engine: hf, or give this variant a LoRA (adapter: sft)",
    )


def _soft_prompt_folder(folder: str) -> bool:
    try:
        return soft_prompt(adapter_config(folder))
    except ValueError:  # unreadable JSON: the engine's preflight names it, before anything loads
        return False


def _check_hybrids(config: BenchConfig, at: At) -> None:
    """A hybrid retriever fuses bm25 and dense ones the config defines."""
    plain = [n for n, c in config.retrievers.items() if not isinstance(c, HybridConfig)]
    for rname, r in config.retrievers.items():
        if not isinstance(r, HybridConfig):
            continue
        for j, other in enumerate(r.of):
            if other not in plain:
                raise at.error(
                    ("retrievers", rname, "of", j),
                    f"{other!r} is not a bm25 or dense retriever{did_you_mean(other, plain)}",
                )


def _check_gate_rules(config: BenchConfig, variants: set[str], at: At) -> None:
    """Each gate rule names a variant and a per-question metric of the run."""
    if config.gate is None:
        return
    for i, rule in enumerate(config.gate.rules):
        where = ("gate", "rules", i)
        if rule.variant not in variants:
            raise at.error(
                (*where, "variant"), f"unknown variant {rule.variant!r}{did_you_mean(rule.variant, variants)}"
            )
        scorer = SCORERS.get(rule.metric)
        if scorer is not None and scorer.corpus_level:
            raise at.error(
                (*where, "metric"),
                f"{rule.metric} is a corpus-level score with no per-question value to pair; gate on a "
                "per-question metric (accuracy, em, ...)",
            )
        if rule.metric not in config.all_metrics():
            raise at.error(
                (*where, "metric"),
                f"metric {rule.metric!r} is not among the run's metrics {config.all_metrics()}",
            )


def _check_judge(config: BenchConfig, at: At) -> None:
    j = config.judge
    if j is None:
        return
    dense = [n for n, r in config.retrievers.items() if isinstance(r, DenseConfig)]
    if j.embedder is not None and j.embedder not in dense:
        raise at.error(
            ("judge", "embedder"), f"{j.embedder!r} is not a dense retriever{did_you_mean(j.embedder, dense)}"
        )
    needy = [m for m in j.ragas if "embedder" in SCORERS[m].needs]
    if needy and j.embedder is None:
        raise at.error(
            ("judge", "ragas"), f"{needy[0]} needs an embedder: name a dense retriever in judge.embedder"
        )
    if j.hf is not None and j.hf.adapter_path is not None and not _is_adapter(j.hf.adapter_path):
        raise at.error(
            ("judge", "hf", "adapter_path"),
            f"{j.hf.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
        )


def _check_decision(config: BenchConfig, at: At) -> None:
    metric = config.decision.metric
    paired = [m for m in config.all_metrics() if not SCORERS[m].corpus_level]
    if metric is not None and metric not in paired:
        raise at.error(
            ("decision", "metric"),
            f"decision.metric {metric!r} is not among the run's paired metrics ({', '.join(paired)})",
        )


def _check_models(config: BenchConfig, at: At) -> None:
    """Every model path: a packaged model that is fetched; a GGUF file transformers can read."""
    for loc, value, gguf_name in _model_paths(config):
        if value is None:
            continue
        if value.startswith(PACKAGED_PREFIX):  # still a name: not resolvable
            try:
                locate(value)
            except LookupError as e:
                raise at.error(loc, str(e)) from None
        if (file := gguf.gguf_file(value, gguf_name)) is None:
            continue
        if loc[0] == "retrievers":
            raise at.error(loc, f"{file}: an embedder is a sentence-transformers folder, not GGUF")
        if gguf_name and not Path(value).is_dir():
            raise at.error(
                ("model", "gguf_file"),
                f"gguf_file names a file inside a local folder, and {value!r} is none (download the file and "
                "give its path as model.path)",
            )
        try:
            gguf.check(file, at.name, ".".join(loc))
        except InputError as e:
            raise at.error(loc, e.message) from None


def _model_paths(config: BenchConfig) -> list[tuple[tuple[str, ...], str | None, str | None]]:
    """(where, model path, GGUF file inside it) of every model the config names."""
    places: list[tuple[tuple[str, ...], str | None, str | None]] = [
        (("model", "path"), config.model.path, config.model.gguf_file)
    ]
    for r_name, r in config.retrievers.items():
        if isinstance(r, DenseConfig):
            places.append((("retrievers", r_name, "embedder", "path"), r.embedder.path, None))
    if config.judge is not None and config.judge.hf is not None:
        places.append((("judge", "hf", "path"), config.judge.hf.path, None))
    if config.synth is not None and config.synth.generator is not None:
        places.append((("synth", "generator", "path"), config.synth.generator.path, None))
    return places
