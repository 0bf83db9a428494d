"""The project's own models, built by its own recipes: the built-in tiny base model (a byte-level BPE
tokenizer and a small Llama trained from scratch on facts about other organisations). Below the
config (whose defaults come from `BaseModelSpec`) and the artifacts (which build it when missing)."""
