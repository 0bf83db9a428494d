"""The vLLM side of the `vllm` engine: `vllm.LLM` in this process, driven over a pipe.

Run as a script by the interpreter that has vLLM (`python -P vllm_worker.py`: -P keeps this folder,
whose types.py would shadow the standard library's, off the import path), so it imports nothing of
the project: vLLM pins its own transformers and usually lives in a virtualenv of its own. When the
project's interpreter has vLLM itself, `harness.engines.vllm` runs it the same way, so both paths are
the one tested here.

Protocol: one JSON object per line on stdin, one reply per line on the file descriptor named by
`--reply-fd` (vLLM and its libraries print to stdout; the replies must not mix with that, so stdout
is pointed at stderr). Every reply has `ok`; a failure has `error`, one line.

    {"op": "init", "model": PATH, "llm": {...LLM kwargs}}         -> {"ok", "version", "max_model_len"}
    {"op": "generate", "requests": [...], "adapters": {name: [id, path]}}
                                                                   -> {"ok", "completions", "elapsed_s"}
    {"op": "close"}                                                -> {"ok"} and exit
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Any

# Every sampling field vLLM has, set: with `generation_config="vllm"` it applies no defaults from the
# model's generation_config.json, and nothing here is left for it to choose.
GREEDY = {
    "n": 1,
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
    "seed": 0,
    "ignore_eos": False,
    "min_tokens": 0,
    "skip_special_tokens": True,
    "spaces_between_special_tokens": True,
    "include_stop_str_in_output": False,
    "logprobs": None,
}


def _end_ids(model: str, revision: str | None) -> list[int]:
    """The end tokens the model's generation config lists (an instruct model's end of turn beside its
    end of sequence). `generation_config="vllm"` keeps vLLM from reading that file's sampling
    defaults, so the end tokens are passed explicitly, as the HF engine stops on them."""
    from transformers import GenerationConfig

    try:
        # transformers types `revision` as str ("main"); None (none given) downloads the default branch too
        listed = GenerationConfig.from_pretrained(model, revision=revision).eos_token_id  # type: ignore[arg-type]
    except OSError:  # no generation_config.json: the tokenizer's end of sequence, which vLLM knows
        return []
    return sorted({listed} if isinstance(listed, int) else set(listed or []))


class Worker:
    def __init__(self) -> None:
        self.llm: Any = None

    def init(self, model: str, llm: dict) -> dict:
        import vllm

        self.llm = vllm.LLM(model=model, generation_config="vllm", **llm)
        config = self.llm.llm_engine.model_config
        self.end_ids = _end_ids(model, llm.get("revision"))
        return {
            "version": vllm.__version__,
            "max_model_len": config.max_model_len,
            "end_token_ids": self.end_ids,
        }

    def generate(self, requests: list[dict], adapters: dict) -> dict:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        loras = {name: LoRARequest(name, int(i), path) for name, (i, path) in adapters.items()}
        tokenizer = self.llm.get_tokenizer()
        prompts, params, lora = [], [], []
        for r in requests:
            if r.get("messages") is not None:
                text = tokenizer.apply_chat_template(
                    r["messages"], add_generation_prompt=True, tokenize=False
                )
            else:
                text = r["prompt"]
            prompts.append(text)
            stop = [s for s in r["stop"] if s]
            bias = {int(t): b for t, b in (r.get("logit_bias") or {}).items()} or None  # JSON keys: text
            params.append(
                SamplingParams(
                    max_tokens=r["max_tokens"],
                    stop=stop or None,
                    stop_token_ids=self.end_ids,
                    logit_bias=bias,
                    **GREEDY,
                )
            )
            name = r.get("adapter")
            if name is not None and name not in loras:
                raise KeyError(f"adapter {name!r} is not loaded (loaded: {sorted(loras)})")
            lora.append(loras[name] if name is not None else None)
        t0 = time.perf_counter()
        # One call for every request, every adapter: vLLM batches the LoRAs together.
        outputs = self.llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        elapsed = time.perf_counter() - t0
        completions = [
            {
                "text": o.outputs[0].text,
                "tokens_in": len(o.prompt_token_ids or []),
                "tokens_out": len(o.outputs[0].token_ids),
            }
            for o in outputs
        ]
        return {"completions": completions, "elapsed_s": elapsed}


def _one_line(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text[:500]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reply-fd", type=int, required=True)
    args = parser.parse_args()
    replies = os.fdopen(args.reply_fd, "w", buffering=1)
    os.dup2(2, 1)  # whatever vLLM prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    worker = Worker()
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.get("op")
        try:
            if op == "init":
                out = worker.init(msg["model"], msg.get("llm", {}))
            elif op == "generate":
                out = worker.generate(msg["requests"], msg.get("adapters", {}))
            elif op == "close":
                replies.write(json.dumps({"ok": True}) + "\n")
                break
            else:
                raise ValueError(f"unknown op {op!r}")
            replies.write(json.dumps({"ok": True} | out) + "\n")
        except Exception as e:  # noqa: BLE001 - every failure goes back as one line
            traceback.print_exc(file=sys.stderr)
            replies.write(json.dumps({"ok": False, "error": _one_line(e)}) + "\n")
    replies.close()


if __name__ == "__main__":  # vLLM may spawn processes, which import this file again
    main()
