"""The bench configuration: typed, with defaults and help, validated at the boundary.

`load_config(path)` reads YAML with the safe loader and returns a `BenchConfig` whose relative paths
are already absolute; any problem raises `InputError` naming the file, the line and the field.
"""

from harness.config.bench import (
    METRICS,
    BenchConfig,
    GateConfig,
    GateRule,
    GenerationConfig,
    LeakageConfig,
    VariantConfig,
)
from harness.config.inputs import (
    BM25Config,
    BuiltinEmbedder,
    BuiltinModel,
    BuiltinSuite,
    ChunkingConfig,
    DenseConfig,
    EmbedderConfig,
    HybridConfig,
    JsonlSuite,
    ModelConfig,
    PubMedQASuite,
    RetrieverConfig,
    SquadSuite,
    SuiteConfig,
)
from harness.config.judge import (
    BUILTIN_READING,
    ForgettingConfig,
    HFJudgeConfig,
    HTTPJudgeConfig,
    JudgeConfig,
)
from harness.config.load import load_config
from harness.config.training import TrainingConfig

__all__ = [
    "BUILTIN_READING",
    "METRICS",
    "BM25Config",
    "BenchConfig",
    "BuiltinEmbedder",
    "BuiltinModel",
    "BuiltinSuite",
    "ChunkingConfig",
    "DenseConfig",
    "EmbedderConfig",
    "ForgettingConfig",
    "GateConfig",
    "GateRule",
    "GenerationConfig",
    "HFJudgeConfig",
    "HTTPJudgeConfig",
    "HybridConfig",
    "JsonlSuite",
    "JudgeConfig",
    "LeakageConfig",
    "ModelConfig",
    "PubMedQASuite",
    "RetrieverConfig",
    "SquadSuite",
    "SuiteConfig",
    "TrainingConfig",
    "VariantConfig",
    "load_config",
]
