"""PubMedQA: the loader's split and errors, label accuracy, and macro-F1 against scikit-learn."""

import json
from pathlib import Path

import pytest

from core.errors import InputError
from judges import label_accuracy
from reports.stats import macro_f1
from suites.pubmedqa import load_pubmedqa

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa"


def _record(q, label):
    return {"QUESTION": q, "CONTEXTS": [f"About {q}.", "More."], "final_decision": label}


def test_split_gold_and_training(tmp_path):
    data = {"1": _record("Is a?", "yes"), "2": _record("Is b?", "no"), "3": _record("Is c?", "maybe")}
    (tmp_path / "p.json").write_text(json.dumps(data))
    (tmp_path / "t.json").write_text(json.dumps({"2": "no"}))
    suite = load_pubmedqa(tmp_path / "p.json", test_ids=tmp_path / "t.json")
    (q,) = suite.questions
    assert (
        q.text == "Is b?"
        and q.answers == ("no",)
        and q.gold_passage_ids == ("pmid-2",)
        and q.category == "no"
    )
    assert len(suite.passages) == 3  # every abstract is retrievable
    assert [p.question for p in suite.training.sft] == ["Is a?", "Is c?"]
    assert [(p.chosen, p.rejected) for p in suite.training.preferences] == [("yes", "no"), ("maybe", "yes")]
    bad = dict(data, **{"4": _record("Is d?", "perhaps")})
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"bad.json: 4.final_decision: final_decision must be one of"):
        load_pubmedqa(tmp_path / "bad.json")
    (tmp_path / "t2.json").write_text(json.dumps({"9": "no"}))
    with pytest.raises(InputError, match="'9' is not in p.json"):
        load_pubmedqa(tmp_path / "p.json", test_ids=tmp_path / "t2.json")


def test_label_accuracy():
    assert label_accuracy("Yes.", ["yes"]).value == 1.0
    assert label_accuracy("no, it does not", ["no"]).value == 1.0
    s = label_accuracy("perhaps", ["maybe"])
    assert s.value == 0.0 and s.label is None and "no label" in s.reason


def test_macro_f1_equals_sklearn():
    from sklearn.metrics import f1_score

    golds = ["yes", "no", "maybe", "yes", "no", "yes", "maybe", "no", "yes", "yes"]
    preds = ["yes", "yes", "maybe", "no", "no", "yes", "yes", "no", "maybe", "yes"]
    assert macro_f1(preds, golds) == pytest.approx(f1_score(golds, preds, average="macro"))
    # an unlabelled answer is a miss for its gold class: here yes F1 = 2/3, no F1 = 1
    assert macro_f1([None, "yes", "no"], ["yes", "yes", "no"]) == pytest.approx((2 / 3 + 1) / 2)


@pytest.mark.skipif(
    not (DATA / "ori_pqal.json").exists(), reason=f"{DATA} is absent (real data lives in ../shared/data)"
)
def test_real_pubmedqa_split():
    suite = load_pubmedqa(DATA / "ori_pqal.json", test_ids=DATA / "test_ground_truth.json")
    assert len(suite.questions) == 500 and len(suite.training.sft) == 500 and len(suite.passages) == 1000
    test = {q.id[2:] for q in suite.questions}
    assert not test & {p.fact_id for p in suite.training.sft}  # no test question is trained on
