"""Built-in models shipped with the project: built once by maintainers (`make models`, or
`ragvft models build`) from the same recipe a run would train from, saved as small safetensors shards
with a model card, and loaded with `from_pretrained` exactly as a hub folder is.

A first run then spends no time training its base model. A shipped folder is used only when its
recipe key (the spec and the domain generator's version, not the library versions) equals the one the
config asks for; any other spec is trained on first use and cached, as before.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from core.cache import building, digest, folder_hash, library_versions
from harness.builtin.basemodel import BUILD_RECORD, BaseModelSpec, build_base_model, curriculum

SHIPPED = Path(__file__).parent / "shipped"
SHARD_SIZE = "4MB"  # every committed file stays under 5 MB
HELDOUT_DRAW = 1_000_003  # a draw of the pool's answers no training pass reaches


def shipped_base(spec: BaseModelSpec, root: Path | None = None) -> Path | None:
    """The shipped folder of the base model for `spec`, or None when none matches its recipe."""
    folder = (root or SHIPPED) / "base"
    record = folder / BUILD_RECORD
    if record.exists() and json.loads(record.read_text()).get("recipe_key") == spec.recipe_key():
        return folder
    return None


def shipped_adapter(name: str, root: Path | None = None) -> Path | None:
    """The shipped adapter folder `name` (`<method>-<key>`, as the cache names it), or None. The key
    holds everything that determines the adapter (base, data, method, settings, seed, libraries), so
    a shipped folder stands in for exactly the training that would make it."""
    folder = (root or SHIPPED) / "adapters" / name
    return folder if (folder / "adapter_config.json").is_file() else None


def shipped_identity(folder: Path) -> str:
    """What generation and adapter keys depend on: the recipe and the shipped bytes."""
    record = json.loads((folder / BUILD_RECORD).read_text())
    return f"builtin:{record['recipe_key']}-{folder_hash(folder, 12)}"


def reading_em(folder: Path, spec: BaseModelSpec, *, n: int = 200, batch_size: int = 32) -> float:
    """Exact match of greedy answers to `n` pool questions read from their passage, on a held-out draw
    of answers (values the model has never been trained on): how well the model reads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness import prompts
    from judges.exact import normalize_answer
    from suites.builtin import reading_pool

    facts = reading_pool(spec.seed, scale=spec.pool_scale, domain_scale=spec.domain_scale, draw=HELDOUT_DRAW)
    step = max(1, len(facts) // n)  # every organisation and kind of fact, not the first few
    items = [(prompts.with_passages(f.wordings[-1], [f.passage]), f.answers) for f in facts[::step]][:n]
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    right = 0
    for i in range(0, len(items), batch_size):
        chunk = items[i : i + batch_size]
        batch = tokenizer([p for p, _ in chunk], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(
                **batch, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for (_, golds), ids in zip(chunk, out[:, batch["input_ids"].shape[1] :], strict=True):
            # transformers types `decode` for a batch too (a list of texts); one row's ids make one text
            text = tokenizer.decode(ids, skip_special_tokens=True).strip().split("\n")[0]  # type: ignore[union-attr]
            right += normalize_answer(text) in {normalize_answer(g) for g in golds}
    return round(right / len(items), 4)


def curriculum_hash(spec: BaseModelSpec) -> str:
    return digest([[e["prompt"] + e["completion"] for e in phase] for phase in curriculum(spec)])


def ship_base(spec: BaseModelSpec, out: Path, *, root: Path | None = None, progress: bool = True) -> Path:
    """Build (or take from the cache) the base model for `spec`, then write it to `out/base` as
    safetensors shards under 5 MB with its tokenizer, build record and model card."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    built = build_base_model(spec, root=root, progress=progress)
    record = json.loads((built / BUILD_RECORD).read_text())
    record |= {
        "recipe_key": spec.recipe_key(),
        "data_sha256": curriculum_hash(spec),
        "metrics": {"final_loss": record["final_loss"], "reading_em_heldout": reading_em(built, spec)},
        "shipped_with": library_versions(),
    }
    final = out / "base"
    with building(out / f".base-{int(started)}") as tmp:
        AutoModelForCausalLM.from_pretrained(built).save_pretrained(tmp, max_shard_size=SHARD_SIZE)
        AutoTokenizer.from_pretrained(built).save_pretrained(tmp)
        (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=2))
        (tmp / "README.md").write_text(model_card(record))
    staged = out / f".base-{int(started)}"
    shutil.rmtree(final, ignore_errors=True)
    staged.rename(final)
    return final


def model_card(record: dict) -> str:
    """The shipped model's card: what it is, its recipe, data and figures."""
    spec = record["spec"]
    m = record["metrics"]
    rows = "\n".join(f"| `{k}` | {v} |" for k, v in spec.items())
    return f"""---
library_name: transformers
license: apache-2.0
tags: [ragvft, builtin, llama, from-scratch]
---
# ragvft built-in base model

A {record["parameters"]:,}-parameter Llama trained from scratch by ragvft's own recipe
(`harness/builtin/basemodel.py`), the base every variant of the embedded bench shares. It learned
the language and how to answer a question from a passage on a reading pool of facts about *other*
organisations: it has never seen a fact of the built-in domain. It is a test article for the harness,
not a general model.

Rebuild it with `make models` (or `ragvft models build`); `tests/test_shipped_models.py` rebuilds the
same recipe at tiny scale so it cannot rot.

## Recipe (key `{record["recipe_key"]}`)
| setting | value |
| --- | --- |
{rows}

Curriculum (sha256 of its texts, first 16 hex digits): `{record["data_sha256"]}`, {record["examples"]:,}
examples, {record["steps"]:,} steps, {record["tokens"]:,} tokens, on `{record["device"]}` in
{record["wall_time_s"]} s.

## Figures
- final training loss: {m["final_loss"]}
- exact match reading a held-out draw of the pool (200 questions, answers never trained on, the passage
  given): {m["reading_em_heldout"]}

Built with {", ".join(f"{k} {v}" for k, v in record["libraries"].items())}.
"""


def adapter_card(record: dict, bench: str, base: str) -> str:
    """A shipped adapter's card: what trained it, on what, and its figures (from its training record)."""
    hyper = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(record.get("hyperparameters", {}).items()))
    init = f", starting from the `{record['init_method']}` adapter" if record.get("init_method") else ""
    return f"""---
library_name: peft
license: apache-2.0
tags: [ragvft, builtin, {record["method"]}, lora]
---
# ragvft built-in `{record["method"]}` adapter

The `{record["method"]}` adapter of the embedded default bench (`{bench}`), trained by ragvft's own
recipe (`harness/training/{record["method"]}.py`, TRL + PEFT) on the built-in base model
(`{base}`){init}, on the built-in domain's training set. Shipped so a first `make bench` trains
nothing: it is used only when a run's adapter key (`{record["key"]}`: base, data, method, settings,
seed, library versions) is this one; any other key is trained on first use and cached, as before.
Rebuild with `make models`.

## Recipe
| setting | value |
| --- | --- |
{hyper}

{record.get("examples")} training examples, {record.get("steps")} steps, {record.get("tokens"):,} tokens, seed
{record.get("seed")}, on `{record.get("device")}` in {record.get("wall_time_s")} s; final loss
{round(record.get("final_loss") or 0, 4)}.
"""
