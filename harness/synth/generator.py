"""The model that writes `ragvft synth`'s questions, through the engine interface (`harness.engines`):
the built-in question writer (a LoRA on the built-in base model, trained once and cached by its key,
`harness.training.question_writer`), a hub id or model folder on the hf or vllm engine, or an
OpenAI-compatible server."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import InputError
from core.progress import progress_bar
from harness.artifacts.model import BaseModel, resolve_model
from harness.builtin.shipped import SHIPPED
from harness.config.synth import GeneratorConfig
from harness.engines import Decoding, LoadSpec, Request
from harness.prompts import RAW, PromptFormat
from harness.run.engine import LazyEngine, loading
from harness.training.adapters import TRAINING_RECORD, Adapter, AdapterJob, ensure_adapter
from harness.training.question_writer import METHOD, writer_rows

if TYPE_CHECKING:
    from harness.config import BenchConfig

WRITER = "qwriter"
# the default writer, trained by maintainers (`python -m harness.synth.ship`)
SHIPPED_WRITER = SHIPPED / "writer"


@dataclass
class Generator:
    """Prompts in, replies out in order: `engine` (with `adapter` on it, the built-in writer's)."""

    engine: LazyEngine
    decoding: Decoding
    adapter: str | None = None
    fmt: PromptFormat = RAW  # how a prompt reaches a model in-process: raw, or its chat template
    chat_messages: bool = False  # a server asked through /chat/completions
    builtin: bool = False
    info: dict = field(default_factory=dict)  # what the report says of it

    def ask(self, prompts: list[str], *, label: str = "writing questions") -> list[str]:
        if self.chat_messages:
            requests = [
                Request(
                    messages=({"role": "user", "content": p},), adapter=self.adapter, decoding=self.decoding
                )
                for p in prompts
            ]
        else:
            requests = [
                Request(self.fmt.instruction(p), adapter=self.adapter, decoding=self.decoding)
                for p in prompts
            ]
        t0 = time.time()
        live = self.engine.get()
        self.engine.check({"generator": None})  # a server: its model is served (else one line)
        with progress_bar(label, len(requests)) as advance:
            replies = [c.text for c in live.generate(requests, progress=advance)]
        self.info["generate_s"] = round(time.time() - t0, 2)
        return replies


def builtin_base(config: BenchConfig, base: BaseModel, timings: dict) -> BaseModel:
    """The built-in base model the writer sits on: the run's own when it is the built-in one, else the
    shipped default."""
    if base.spec is not None:
        return base
    from harness.config.inputs import BuiltinModel, ModelConfig

    plain = config.model_copy(update={"model": ModelConfig(builtin=BuiltinModel(), dtype=config.model.dtype)})
    return resolve_model(plain, timings)


def writer_job(config: BenchConfig, g: GeneratorConfig, base: BaseModel) -> AdapterJob:
    """The built-in question writer's training: rows from `base`'s reading pool, keyed like every
    adapter (base identity, rows, settings, seed, libraries)."""
    spec, hyper = base.spec, g.builtin
    assert spec is not None and hyper is not None  # a built-in base, the built-in writer
    return AdapterJob(
        method=METHOD,
        base_identity=base.identity,
        base_path=base.path,
        rows=writer_rows((spec.seed, spec.pool_scale, spec.domain_scale), hyper.examples, config.seed, RAW),
        hyper=hyper.settings(),
        seed=config.seed,
        dtype=config.model.dtype,
    )


def ensure_writer(job: AdapterJob) -> Adapter:
    """The writer `job` trains: from the cache; else the shipped one when it is this very job (its
    training record holds the same key), copied into the cache; else trained now (and cached)."""
    import json
    import shutil

    from core.cache import build_once

    path, record = job.path(), SHIPPED_WRITER / TRAINING_RECORD
    shipped = (
        not path.is_dir() and record.is_file() and json.loads(record.read_text()).get("key") == job.key()
    )
    if shipped:  # copied once: another run doing the same waits for it, and finds it cached
        shipped = build_once(
            path, lambda tmp: shutil.copytree(SHIPPED_WRITER, tmp, dirs_exist_ok=True), what=f"the {path.name}"
        )
    adapter = ensure_adapter(job)
    adapter.status = "shipped" if shipped else adapter.status
    return adapter


def build_generator(
    config: BenchConfig, g: GeneratorConfig, base: BaseModel, reader: LazyEngine, *, field_name: str
) -> Generator:
    """The generator `g` names: the built-in writer, a `path` model, or a server."""
    decoding = Decoding(max_new_tokens=g.max_new_tokens, stop=("\n",) if g.builtin is not None else ())
    if g.builtin is not None:
        return _builtin_generator(config, g, base, reader, decoding)
    if g.path is not None:
        return _path_generator(config, g, g.path, decoding, field_name)
    assert g.openai is not None  # GeneratorConfig names exactly one
    engine = LazyEngine("openai", "(server)", options=g.openai, source=config.source)
    served = g.openai.models.get("base", "base")
    info = {"kind": "openai", "base_url": g.openai.base_url, "model": served}
    return Generator(engine, decoding, None, RAW, chat_messages=g.chat_template is True, info=info)


def _builtin_generator(
    config: BenchConfig, g: GeneratorConfig, base: BaseModel, reader: LazyEngine, decoding: Decoding
) -> Generator:
    """The built-in writer. It shares the reader's engine when both sit on the same built-in base
    in-process (one load); otherwise it gets an hf engine of its own."""
    timings: dict = {}
    writer_base = builtin_base(config, base, timings)
    adapter = ensure_writer(writer_job(config, g, writer_base))
    shared = (
        writer_base is base and config.generation.engine in ("hf", "vllm") and config.generation.ray is None
    )
    own = LoadSpec(writer_base.path, **loading(config.model))
    engine = reader if shared else LazyEngine("hf", own, source=config.source)
    name = engine.with_adapter(adapter.identity, adapter.path, WRITER)
    record = adapter.record or {}
    info = {
        "kind": "builtin",
        "base": writer_base.identity,
        "adapter": adapter.identity,
        "status": adapter.status,
        "training": {k: record.get(k) for k in ("examples", "steps", "final_loss", "wall_time_s", "device")},
    }
    return Generator(engine, decoding, name, RAW, builtin=True, info=info)


def _path_generator(
    config: BenchConfig, g: GeneratorConfig, path: str, decoding: Decoding, field_name: str
) -> Generator:
    """A hub id or model folder (a .gguf file: its dequantised folder), with its adapter if any."""
    from harness.pretrained.gguf import loadable

    path = loadable(path)[0]
    g = g.model_copy(update={"path": path})
    engine = LazyEngine(
        g.engine,
        LoadSpec(path, g.revision, g.trust_remote_code, **loading(config.model)),
        batch_size=config.generation.batch_size,
        source=config.source,
    )
    name, info = None, {"kind": "path", "path": path}
    if g.adapter_path is not None:
        from core.cache import model_identity

        info["adapter"] = identity = model_identity(g.adapter_path)
        try:
            name = engine.with_adapter(identity, g.adapter_path, WRITER)
        except (OSError, ValueError) as e:
            message = f"{g.adapter_path}: not a PEFT adapter folder ({str(e).splitlines()[0]})"
            raise InputError(config.source, message, field=f"{field_name}.adapter_path") from None
    return Generator(engine, decoding, name, _format(g, config.source, field_name), info=info)


def _format(g: GeneratorConfig, source: str, field_name: str) -> PromptFormat:
    """A `path` model's prompt format: its chat template (an instruction as one user turn) or raw text."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            g.path, revision=g.revision, trust_remote_code=g.trust_remote_code
        )
        return PromptFormat.of(tokenizer, g.chat_template, system=None)
    except (OSError, ValueError) as e:
        raise InputError(source, f"{g.path}: {str(e).splitlines()[0]}", field=field_name) from None
