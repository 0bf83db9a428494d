"""Rebuild the shipped question writer (`harness/builtin/shipped/writer`) for maintainers, after its
recipe, the built-in base model or the libraries change: `python -m harness.synth.ship [bench.yaml]`.
The embedded default's writer is trained when missing from the cache and copied there with a card."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from harness.synth.generator import SHIPPED_WRITER, ensure_writer, writer_job

CARD = """# ragvft built-in question writer

A LoRA adapter on the built-in base model (`../base`) that writes, for a passage, one question it
answers as a JSON object `{{"question", "answer", "type"}}` (`harness/training/question_writer.py`),
trained with TRL's SFTTrainer on {examples:,} rows of the base model's reading pool (facts about
other, made-up organisations; never the built-in domain's). `ragvft synth` uses it when
`synth.generator` names no other model. It is a test article for the harness: its questions are
only as good as a 2M-parameter model trained on templated facts.

| | |
| --- | --- |
| key | `{key}` |
| steps | {steps} (batch {batch}) |
| final loss | {loss:.4f} |
| training | {wall:.0f} s on `{device}` |
"""


def ship_writer(config: Path = Path("bench.yaml"), out: Path = SHIPPED_WRITER) -> Path:
    from harness.artifacts import resolve_model
    from harness.config import load_config
    from harness.config.synth import SynthConfig
    from harness.synth.generator import builtin_base

    cfg = load_config(config)
    base = builtin_base(cfg, resolve_model(cfg, {}), {})
    adapter = ensure_writer(writer_job(cfg, (cfg.synth or SynthConfig()).generator, base))
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(adapter.path, out)
    out.chmod(0o755)  # the cache's temporary folders are private; a shipped one is not
    for f in out.iterdir():
        f.chmod(0o644)
    r = json.loads((out / "ragvft_training.json").read_text())
    peft = json.loads((out / "adapter_config.json").read_text())
    peft["base_model_name_or_path"] = "harness/builtin/shipped/base"  # not the maintainer's own path
    (out / "adapter_config.json").write_text(json.dumps(peft, indent=2) + "\n")
    (out / "README.md").write_text(
        CARD.format(
            examples=r["examples"],
            key=r["key"],
            steps=r["steps"],
            batch=r["effective_batch_size"],
            loss=r["final_loss"],
            wall=r["wall_time_s"],
            device=r["device"],
        )
    )
    return out


if __name__ == "__main__":
    print(ship_writer(*(Path(a) for a in sys.argv[1:2])))
