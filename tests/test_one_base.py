"""One shipped base model serves every built-in suite: the base's reading pool is generated from fixed
settings, and every built-in domain (any seed, any scale) avoids the pool's names, so no suite
setting enters the base model's key."""

import pytest
import yaml

from harness.artifacts.model import resolve_model
from harness.config.load import load_config
from suites.builtin import DOMAIN_ORG, _domain_facts, builtin_suite, pool_names, reading_pool


def _names_in(text: str, names: frozenset[str]) -> set[str]:
    return {n for n in names if n in text}


@pytest.mark.parametrize("seed,scale", [(0, 2), (3, 4), (7, 4), (11, 8), (42, 40), (123456789, 12)])
def test_every_builtin_domain_avoids_the_pools_names(seed, scale):
    pool = pool_names()
    assert len(pool) > 100  # products, cities, people, ... of the base's curriculum
    _, domain = _domain_facts(seed, scale, avoid=pool)
    assert domain and not (domain & pool)
    suite = builtin_suite(seed, scale=scale)
    text = "\n".join(p.text for p in suite.passages)
    assert DOMAIN_ORG in text and _names_in(text, pool) == set()


def test_the_shipped_domain_is_the_one_the_base_was_built_against():
    """The default domain draws no pool name, so avoiding them changes nothing there: the shipped
    adapters, judge and blessed baseline stay valid."""
    _, unconstrained = _domain_facts(7, 40)
    _, constrained = _domain_facts(7, 40, avoid=pool_names())
    assert constrained == unconstrained
    pool_text = "\n".join(f.passage for f in reading_pool())
    assert not _names_in(pool_text, frozenset(unconstrained))


@pytest.mark.parametrize("suite", [{"builtin": {"scale": 4}}, {"builtin": {"seed": 99, "scale": 12}}])
def test_any_builtin_suite_uses_the_shipped_base(tmp_path, suite, monkeypatch):
    monkeypatch.setenv("RAGVFT_CACHE", str(tmp_path / "cache"))  # cold: nothing built before
    config_path = tmp_path / "bench.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "quick",
                "seed": 12345,
                "suite": suite,
                "model": {"builtin": {}},
                "variants": [{"name": "base"}],
            }
        )
    )
    timings: dict = {}
    base = resolve_model(load_config(config_path), timings)
    assert base.info["status"] == "shipped", base.info
    assert base.identity.startswith("shipped:") or "shipped" in str(base.path)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))
