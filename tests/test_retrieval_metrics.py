"""Retrieval metrics: hand-worked cases, and equality with trec_eval (pytrec_eval) on random runs."""

import random

import pytest

from retrievers.metrics import evaluate, question_metrics
from retrievers.types import Hit


def test_hand_worked_question():
    m = question_metrics(["a", "g1", "b", "g2", "c"], {"g1", "g2", "g3"}, ks=(1, 2, 5))
    assert (
        m["recall@1"] == 0 and m["recall@2"] == pytest.approx(1 / 3) and m["recall@5"] == pytest.approx(2 / 3)
    )
    assert m["hit@1"] == 0 and m["hit@2"] == 1
    assert m["mrr@10"] == 0.5
    dcg = 1 / 1.584962500721156 + 1 / 2.321928094887362  # ranks 2 and 4
    ideal = 1 + 1 / 1.584962500721156 + 1 / 2.0  # three gold at ranks 1-3
    assert m["ndcg@10"] == pytest.approx(dcg / ideal)


def test_no_gold_is_undetermined_not_a_miss():
    per_q, overall = evaluate([[Hit("a", 1.0)], [Hit("b", 1.0)]], [[], ["b"]])
    assert per_q[0]["recall@1"] is None and overall["recall@1"] == 1.0
    assert overall["n"] == 1 and overall["undetermined"] == 1


def test_equal_to_trec_eval_on_random_runs():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(5)
    docs = [f"d{i}" for i in range(40)]
    qrels, run, hits, golds = {}, {}, [], []
    for q in range(60):
        gold = rng.sample(docs, rng.randint(1, 4))
        ranked = rng.sample(docs, 10)
        qrels[f"q{q}"] = {d: 1 for d in gold}
        run[f"q{q}"] = {d: float(10 - i) for i, d in enumerate(ranked)}  # distinct scores: no ties
        hits.append([Hit(d, float(10 - i)) for i, d in enumerate(ranked)])
        golds.append(gold)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recall.1,3,5,10", "recip_rank", "ndcg_cut.10"}).evaluate(
        run
    )
    per_q, _ = evaluate(hits, golds)
    for i, m in enumerate(per_q):
        r = ref[f"q{i}"]
        for k in (1, 3, 5, 10):
            assert m[f"recall@{k}"] == pytest.approx(r[f"recall_{k}"])
        assert m["mrr@10"] == pytest.approx(r["recip_rank"])  # runs are 10 deep: the cut changes nothing
        assert m["ndcg@10"] == pytest.approx(r["ndcg_cut_10"])
