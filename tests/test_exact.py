"""EM/F1 equal the official SQuAD v1.1 evaluation (evaluate-v1.1.py) on hand-worked vectors."""

import pytest

from judges import exact_match, normalize_answer, token_f1


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("The Cat", "cat"),  # case and articles
        ("a  quick\tbrown\n fox", "quick brown fox"),  # articles, every kind of whitespace
        ("An apple, an egg.", "apple egg"),
        ("$1,299.00!", "129900"),  # punctuation is deleted, not replaced by spaces
        ("theatre", "theatre"),  # 'the' only as a whole word
        ("Section 4.12", "section 412"),
        ("", ""),
    ],
)
def test_normalisation_follows_squad_v11(raw, normalised):
    assert normalize_answer(raw) == normalised


@pytest.mark.parametrize(
    "prediction, golds, em, f1",
    [
        ("the Eiffel Tower", ["Eiffel Tower"], 1.0, 1.0),
        ("Eiffel tower.", ["The Eiffel Tower"], 1.0, 1.0),
        ("tower", ["Eiffel Tower"], 0.0, 2 * (1 * 0.5) / 1.5),  # P=1, R=1/2
        ("the big red dog", ["red dog", "a big dog"], 0.0, 0.8),  # best of two golds: P=2/3,R=1 vs P=2/3,R=1
        ("1299 dollars", ["1,299 dollars", "$1299"], 1.0, 1.0),  # several golds, max taken
        ("a the an", ["the"], 1.0, 0.0),  # both normalise to empty: EM 1, F1 0 (no common tokens)
        ("dog dog", ["dog"], 0.0, 2 * (0.5 * 1) / 1.5),  # repeated tokens counted by multiset
        ("blue", ["red"], 0.0, 0.0),
    ],
)
def test_em_and_f1_match_official_script(prediction, golds, em, f1):
    assert exact_match(prediction, golds).value == em
    assert token_f1(prediction, golds).value == pytest.approx(f1)


def test_no_gold_answer_is_undetermined_not_zero():
    assert exact_match("anything", []).value is None
    assert token_f1("anything", []).value is None


def test_reason_names_the_matching_gold():
    assert "'$1299'" in exact_match("1299", ["1,300", "$1299"]).reason
