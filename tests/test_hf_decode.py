"""The HF engine's own greedy decoding loop (prefill once, one token a step, finished rows leave the
batch, later batches join a running one) gives exactly what transformers' `model.generate` gives,
its reference path: the same texts and token counts, on a tiny random Llama and a tiny GPT-2, bare
and through a LoRA adapter."""

import pytest
import torch

from harness.builtin.basemodel import train_tokenizer
from harness.engines import Decoding, HFEngine, Request

WORDS = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "north", "quiet", "amber"]
MAX_NEW = 12


def _words(i: int, n: int) -> str:
    return " ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(n))


PROMPTS = [_words(i, 1 + i % 12) for i in range(24)]  # 1 to 12 words: 6 batches of 4, widths 2 to 16


def _model(kind: str, vocab: int, eos: int, pad: int | None):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            initializer_range=0.5,  # large random weights: answers wander instead of repeating one token
            pad_token_id=pad,
            eos_token_id=eos,
            bos_token_id=None,
        )
        return LlamaForCausalLM(config), ["q_proj", "v_proj"], 2.0
    config = GPT2Config(
        vocab_size=vocab,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=128,
        initializer_range=0.5,
        eos_token_id=eos,
        bos_token_id=eos,
    )
    return GPT2LMHeadModel(config), ["c_attn"], 1.5


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny(request, tmp_path_factory):
    """(model folder, LoRA adapter folder) of a tiny random model whose output layer favours the
    end-of-sequence token and the tokens holding a newline, so that rows stop at different steps.
    The GPT-2 one pads with its end-of-sequence token (its tokenizer has no pad token)."""
    from peft import LoraConfig, get_peft_model

    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    texts = [_words(i, 3 + i % 9) + ("\n" if i % 2 else ".") for i in range(200)]
    tok = train_tokenizer(texts, 300)
    if kind == "gpt2":
        tok.pad_token = None
    model, targets, boost = _model(kind, len(tok), tok.eos_token_id, tok.pad_token_id)
    stops = [i for i in range(len(tok)) if "\n" in tok.decode([i])] + [tok.eos_token_id]
    with torch.no_grad():
        model.get_output_embeddings().weight[stops] *= boost
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    torch.manual_seed(1)
    lora = LoraConfig(
        r=4, lora_alpha=16, target_modules=targets, init_lora_weights=False, fan_in_fan_out=kind == "gpt2"
    )
    get_peft_model(model, lora).save_pretrained(root / "adapter")  # random B: it changes the answers
    return root / "model", root / "adapter"


def _both(engine, requests):
    """The completions of the reference path (`model.generate`) and of the decoding loop."""
    out = {}
    for reference in (True, False):
        engine.reference = reference
        out[reference] = engine.generate(requests)
    return out[True], out[False]


def _fields(completions):
    return [(c.text, c.tokens_in, c.tokens_out) for c in completions]


@pytest.mark.parametrize(
    "own_mask, min_rows",
    [(True, 4), (False, 4), (True, 1)],
    ids=["sdpa-mask", "2d-mask", "down-to-1-row"],
)
def test_the_loop_matches_generate_bare_and_with_a_lora_adapter(tiny, own_mask, min_rows):
    folder, adapter = tiny
    engine = HFEngine(str(folder), batch_size=4)
    assert not engine.reference and engine._own_mask  # plain greedy on sdpa: the loop, its own masks
    engine._own_mask = own_mask  # False: the 2D mask every step, as for other attention kinds
    engine.min_rows = min_rows
    runs, decode = [], engine._decode
    engine._decode = lambda *args: runs.append(1) or decode(*args)
    requests = [Request(p, decoding=Decoding(max_new_tokens=MAX_NEW)) for p in PROMPTS]
    ref, loop = _both(engine, requests)
    assert _fields(loop) == _fields(ref)
    assert len(runs) < len(PROMPTS) // 4  # batches joined running ones
    counts = [c.tokens_out for c in ref]
    assert min(counts) < MAX_NEW - 1 and max(counts) == MAX_NEW  # rows stop early, others run out

    engine.add_adapter("lora", adapter)
    tuned = [Request(p, adapter="lora", decoding=r.decoding) for p, r in zip(PROMPTS, requests, strict=True)]
    ref_a, loop_a = _both(engine, tuned + requests)  # the adapter, then the bare base (disabled)
    assert _fields(loop_a) == _fields(ref_a)
    assert _fields(loop_a[len(tuned) :]) == _fields(ref)
    assert [c.text for c in loop_a[: len(tuned)]] != [c.text for c in ref]  # the adapter mattered


def test_other_stop_strings_still_cut(tiny):
    folder, _ = tiny
    engine = HFEngine(str(folder), batch_size=4)
    free = Decoding(max_new_tokens=MAX_NEW, stop=())
    uncut = [c.text for c in engine.generate([Request(p, decoding=free) for p in PROMPTS])]
    # a letter that some answers hold after their first character, so it cuts them short; and the
    # mark of bytes that are no character, which a row's text also ends with while a character's
    # bytes are still coming (that must not stop it)
    letter = next(ch for t in uncut for ch in t[1:] if ch.isalpha() and sum(ch in u[1:] for u in uncut) >= 2)
    for stop in (letter, "\ufffd"):
        decoding = Decoding(max_new_tokens=MAX_NEW, stop=("\n", stop))
        ref, loop = _both(engine, [Request(p, decoding=decoding) for p in PROMPTS])
        assert [c.text for c in loop] == [c.text for c in ref]
        assert all(stop not in c.text for c in loop)
        assert sum(len(c.text) < len(u.split("\n")[0].strip()) for c, u in zip(loop, uncut, strict=True)) >= 2
        # the loop stops a row once its text holds the stop string: never later than `generate`
        assert all(a.tokens_out <= b.tokens_out for a, b in zip(loop, ref, strict=True))


def test_a_generation_config_with_a_logits_processor_decodes_through_generate(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, _ = tiny
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.generation_config.repetition_penalty = 1.3
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(folder).save_pretrained(tmp_path)
    assert HFEngine(str(tmp_path)).reference


def test_a_logit_bias_moves_the_argmax_in_the_loop_as_in_generate(tiny):
    """`Decoding.logit_bias` (a judge's calibrated verdict prior) is added to the logits every step:
    the loop gives what `model.generate` gives with the same `sequence_bias`, and the bias matters."""
    folder, _ = tiny
    engine = HFEngine(str(folder), batch_size=4)
    plain = Decoding(max_new_tokens=MAX_NEW)
    bare = engine.generate([Request(p, decoding=plain) for p in PROMPTS])
    first = engine.tokenizer(bare[0].text)["input_ids"][0]  # a token some answer starts with
    words = [t for t in range(len(engine.tokenizer)) if engine.tokenizer.decode([t]).strip().isalpha()]
    other = next(t for t in words if t != first)  # a word piece, no special token
    small = Decoding(max_new_tokens=MAX_NEW, logit_bias=((other, 8.0), (first, -8.0)))
    ref, loop = _both(engine, [Request(p, decoding=small) for p in PROMPTS])
    assert _fields(loop) == _fields(ref)
    assert [c.text for c in loop] != [c.text for c in bare]  # it moved some answers
    forced = Decoding(max_new_tokens=3, stop=(), logit_bias=((other, 100.0),))
    done = engine.generate([Request(p, decoding=forced) for p in PROMPTS])
    assert {c.text for c in done} == {engine.tokenizer.decode([other] * 3).strip()}
    assert small.key() != plain.key() and "logit_bias" not in plain.key()  # answers are cached apart
