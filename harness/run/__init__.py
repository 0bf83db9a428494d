"""A bench run, stage by stage: plan (plan.py), generate (generate.py, on the shared engine of
engine.py), score (score.py), rows (rows.py), judge (judging.py), forgetting (forgetting.py), and the
run folder (write.py); pipeline.py strings them together. retrieval.py is `ragvft retrieval`."""

from harness.run.pipeline import RunResult, bench

__all__ = ["RunResult", "bench"]
