"""Loading `bench.yaml`: YAML with the safe loader, validated into a `BenchConfig`, every relative
path resolved once against the config file's folder, and every reference (variant, retriever,
metric, adapter folder) checked. Any problem raises `InputError` naming the file, the line and the
field; downstream code gets absolute paths and never needs the config's location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import InputError, did_you_mean
from harness.config.bench import BenchConfig
from harness.config.inputs import DenseConfig, HybridConfig
from harness.config.judge import BUILTIN_READING
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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(name, f"not UTF-8 text (byte {e.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise InputError(name, f"YAML syntax error: {getattr(e, 'problem', e)}", line=line) from None
    if not isinstance(data, dict):
        raise InputError(name, "expected a mapping at the top level", line=1)
    lines = _line_index(node)
    _check_training(data, name, lines)
    try:
        config = BenchConfig.model_validate(data)
        config = BenchConfig.model_validate(resolve_paths(config.model_dump(), path.resolve().parent))
    except ValidationError as e:
        _raise(e, name, lines, ())
    config._source = name
    _check_references(config, name, lines)
    _check_decision(config, name, lines)
    _check_models(config, name, lines)
    return config


def _check_decision(config: BenchConfig, name: str, lines: dict) -> None:
    metric = config.decision.metric
    paired = [m for m in config.all_metrics() if not SCORERS[m].corpus_level]
    if metric is not None and metric not in paired:
        raise InputError(
            name,
            f"decision.metric {metric!r} is not among the run's paired metrics ({', '.join(paired)})",
            line=_line_of(lines, ("decision", "metric")),
            field="decision.metric",
        )


def _check_models(config: BenchConfig, name: str, lines: dict) -> None:
    """Every model path: a packaged model that is fetched; a GGUF file transformers can read."""
    places: list[tuple[tuple, str | None, str | None]] = [
        (("model", "path"), config.model.path, config.model.gguf_file)
    ]
    for r_name, r in config.retrievers.items():
        if isinstance(r, DenseConfig):
            places.append((("retrievers", r_name, "embedder", "path"), r.embedder.path, None))
    if config.judge is not None and config.judge.hf is not None:
        places.append((("judge", "hf", "path"), config.judge.hf.path, None))
    if config.synth is not None and config.synth.generator is not None:
        places.append((("synth", "generator", "path"), config.synth.generator.path, None))
    for loc, value, gguf_name in places:
        field, line = ".".join(loc), _line_of(lines, loc)
        if value is not None and value.startswith(PACKAGED_PREFIX):  # still a name: not resolvable
            try:
                locate(value)
            except LookupError as e:
                raise InputError(name, str(e), line=line, field=field) from None
        if (file := gguf.gguf_file(value, gguf_name)) is not None:
            if loc[0] == "retrievers":
                raise InputError(
                    name,
                    f"{file}: an embedder is a sentence-transformers folder, not GGUF",
                    line=line,
                    field=field,
                )
            if gguf_name and not Path(value).is_dir():
                raise InputError(
                    name,
                    f"gguf_file names a file inside a local folder, and {value!r} is none (download the file and "
                    "give its path as model.path)",
                    line=_line_of(lines, ("model", "gguf_file")),
                    field="model.gguf_file",
                )
            try:
                gguf.check(file, name, field)
            except InputError as e:
                raise InputError(name, e.message, line=line, field=field) from None


def _raise(e: ValidationError, name: str, lines: dict, prefix: tuple) -> None:
    err = e.errors()[0]
    loc = prefix + tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    raise InputError(name, _message(err), line=_line_of(lines, loc), field=field) from None


def _check_training(data: dict, name: str, lines: dict) -> None:
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
            raise InputError(
                name,
                f"unknown training method {method!r}{did_you_mean(str(method), SECTIONS)}",
                line=_line_of(lines, where),
                field=f"training.{method}",
            )
        if section is not None and not isinstance(section, dict):
            raise InputError(
                name,
                "expected a mapping of settings",
                line=_line_of(lines, where),
                field=f"training.{method}",
            )
        try:
            SECTIONS[method].config.model_validate(section or {})
        except ValidationError as e:
            _raise(e, name, lines, where)


def _local(folder: Path, value: str | None) -> str | None:
    """A path the config names, made absolute against the config's folder."""
    return None if value is None else str((folder / value).resolve())


def _local_or_hub(folder: Path, value: str | None) -> str | None:
    """A local folder, made absolute against the config's folder; or a hub id ("org/name"), left as it
    is. What starts like a path (".", "/", "~") or exists beside the config is always a path, so a
    mistyped folder fails as a missing folder, never as a hub lookup."""
    if value is None:
        return None
    if value.startswith(PACKAGED_PREFIX):  # fetched by `make real-models`; if not, _check_models says so
        try:
            return locate(value)
        except LookupError:
            return value
    local = folder / Path(value).expanduser()
    if value.startswith((".", "/", "~")) or local.exists():
        return str(local.resolve())
    return value


def resolve_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`data` (a dumped `BenchConfig`) with every relative path made absolute against `folder`."""
    s = data["suite"]
    for source, keys in (
        ("squad", ("path",)),
        ("pubmedqa", ("path", "test_ids")),
        ("jsonl", ("corpus", "questions")),
        ("hh_rlhf", ("path",)),
    ):
        if s.get(source):
            for k in keys:
                s[source][k] = _local(folder, s[source][k])
    data["model"]["path"] = _local_or_hub(folder, data["model"]["path"])
    for r in data["retrievers"].values():
        if r.get("kind") == "dense" and r["embedder"].get("path"):
            r["embedder"]["path"] = _local_or_hub(folder, r["embedder"]["path"])
    for v in data["variants"]:
        v["adapter_path"] = _local(folder, v["adapter_path"])
    data["training"]["extra_sft"] = _local(folder, data["training"].get("extra_sft"))
    data["training"]["extra_preferences"] = _local(folder, data["training"].get("extra_preferences"))
    if "feedback" in (kto := data["training"].get("kto") or {}):
        kto["feedback"] = _local(folder, kto["feedback"])
    if data.get("judge") and data["judge"].get("hf"):
        hf = data["judge"]["hf"]
        hf["path"] = _local_or_hub(folder, hf["path"])
        hf["adapter_path"] = _local(folder, hf["adapter_path"])
    if data.get("forgetting"):
        data["forgetting"]["tasks"] = [
            t if t == BUILTIN_READING else _local(folder, t) for t in data["forgetting"]["tasks"]
        ]
    if data.get("gate"):
        data["gate"]["baseline"] = _local(folder, data["gate"]["baseline"])
    if data.get("synth"):
        data["synth"]["docs"] = _local(folder, data["synth"].get("docs"))
        if generator := data["synth"].get("generator"):
            generator["path"] = _local_or_hub(folder, generator.get("path"))
            generator["adapter_path"] = _local(folder, generator.get("adapter_path"))
    data["runs_dir"] = _local(folder, data["runs_dir"])
    return data


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _check_references(config: BenchConfig, name: str, lines: dict) -> None:
    if config.suite.hh_rlhf is not None and config.retrievers:
        raise InputError(
            name,
            "the hh_rlhf suite has no corpus, so nothing to retrieve: remove `retrievers` (and every "
            "variant's `retriever`)",
            line=_line_of(lines, ("retrievers",)),
            field="retrievers",
        )
    seen: set[str] = set()
    for i, v in enumerate(config.variants):
        if v.adapter_path is not None and not (Path(v.adapter_path) / "adapter_config.json").is_file():
            raise InputError(
                name,
                f"{v.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
                line=_line_of(lines, ("variants", i, "adapter_path")),
                field=f"variants.{i}.adapter_path",
            )
        _check_soft_prompt(config, i, name, lines)
        if v.name in seen:
            raise InputError(
                name,
                f"duplicate variant {v.name!r}",
                line=_line_of(lines, ("variants", i, "name")),
                field=f"variants.{i}.name",
            )
        seen.add(v.name)
        if v.retriever is not None and v.retriever not in config.retrievers:
            raise InputError(
                name,
                f"unknown retriever {v.retriever!r}{did_you_mean(v.retriever, config.retrievers)}",
                line=_line_of(lines, ("variants", i, "retriever")),
                field=f"variants.{i}.retriever",
            )
    for rname, r in config.retrievers.items():
        if isinstance(r, HybridConfig):
            for j, other in enumerate(r.of):
                if other not in config.retrievers or isinstance(config.retrievers[other], HybridConfig):
                    known = [n for n, c in config.retrievers.items() if not isinstance(c, HybridConfig)]
                    raise InputError(
                        name,
                        f"{other!r} is not a bm25 or dense retriever{did_you_mean(other, known)}",
                        line=_line_of(lines, ("retrievers", rname, "of", j)),
                        field=f"retrievers.{rname}.of.{j}",
                    )
    if config.gate is not None:
        for i, rule in enumerate(config.gate.rules):
            where = ("gate", "rules", i)
            if rule.variant not in seen:
                raise InputError(
                    name,
                    f"unknown variant {rule.variant!r}{did_you_mean(rule.variant, seen)}",
                    line=_line_of(lines, (*where, "variant")),
                    field=f"gate.rules.{i}.variant",
                )
            scorer = SCORERS.get(rule.metric)
            if scorer is not None and scorer.corpus_level:
                raise InputError(
                    name,
                    f"{rule.metric} is a corpus-level score with no per-question value to pair; gate on a "
                    "per-question metric (accuracy, em, ...)",
                    line=_line_of(lines, (*where, "metric")),
                    field=f"gate.rules.{i}.metric",
                )
            if rule.metric not in config.all_metrics():
                raise InputError(
                    name,
                    f"metric {rule.metric!r} is not among the run's metrics {config.all_metrics()}",
                    line=_line_of(lines, (*where, "metric")),
                    field=f"gate.rules.{i}.metric",
                )
    _check_judge(config, name, lines)
    if config.baseline not in seen:
        raise InputError(
            name,
            f"unknown variant {config.baseline!r}{did_you_mean(config.baseline, seen)}",
            line=_line_of(lines, ("baseline",)),
            field="baseline",
        )


def _check_soft_prompt(config: BenchConfig, i: int, name: str, lines: dict) -> None:
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
    raise InputError(
        name,
        f"variant {v.name!r} {what}, which generation.engine {engine} cannot serve (it serves LoRA "
        "adapters only): set generation.engine: hf, or give this variant a LoRA (adapter: sft)",
        line=_line_of(lines, ("variants", i, where)),
        field=f"variants.{i}.{where}",
    )


def _soft_prompt_folder(folder: str) -> bool:
    try:
        return soft_prompt(adapter_config(folder))
    except ValueError:  # unreadable JSON: the engine's preflight names it, before anything loads
        return False


def _check_judge(config: BenchConfig, name: str, lines: dict) -> None:
    j = config.judge
    if j is None:
        return
    dense = [n for n, r in config.retrievers.items() if isinstance(r, DenseConfig)]
    if j.embedder is not None and j.embedder not in dense:
        raise InputError(
            name,
            f"{j.embedder!r} is not a dense retriever{did_you_mean(j.embedder, dense)}",
            line=_line_of(lines, ("judge", "embedder")),
            field="judge.embedder",
        )
    needy = [m for m in j.ragas if "embedder" in SCORERS[m].needs]
    if needy and j.embedder is None:
        raise InputError(
            name,
            f"{needy[0]} needs an embedder: name a dense retriever in judge.embedder",
            line=_line_of(lines, ("judge", "ragas")),
            field="judge.ragas",
        )
    hf = j.hf
    if (
        hf is not None
        and hf.adapter_path is not None
        and not (Path(hf.adapter_path) / "adapter_config.json").is_file()
    ):
        raise InputError(
            name,
            f"{hf.adapter_path!r} is not a PEFT adapter folder (no adapter_config.json)",
            line=_line_of(lines, ("judge", "hf", "adapter_path")),
            field="judge.hf.adapter_path",
        )


def _line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """Map every path (keys and list indexes) in the YAML document to its 1-based line."""
    index: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        index[path] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                index[path + (k.value,)] = k.start_mark.line + 1
                walk(v, path + (k.value,))
                index[path + (k.value,)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return index


def _line_of(index: dict[tuple, int], loc: tuple) -> int | None:
    """The line of `loc`, or of its nearest ancestor present in the file."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None
