"""The built-in domain: deterministic, split by fact, paraphrased, with corpus-only knowledge."""

import re

from judges import normalize_answer
from suites.builtin import builtin_suite, reading_pool


def test_same_seed_same_suite_and_other_seed_other_suite():
    assert builtin_suite(11).digest() == builtin_suite(11).digest()
    assert builtin_suite(11).digest() != builtin_suite(12).digest()


def test_size_ids_and_gold_passages():
    suite = builtin_suite(7)
    assert 200 <= len(suite.passages) == len(suite.questions) <= 400
    ids = {p.id for p in suite.passages}
    assert len(ids) == len(suite.passages)
    for q in suite.questions:
        assert q.gold_passage_ids and set(q.gold_passage_ids) <= ids
        gold_text = normalize_answer(suite.passage_map()[q.gold_passage_ids[0]].text)
        assert normalize_answer(q.answers[0]) in gold_text


def test_corpus_only_facts_never_reach_training_data():
    suite = builtin_suite(7)
    corpus_only = [q for q in suite.questions if q.slice == "corpus_only"]
    trained = [q for q in suite.questions if q.slice == "trained"]
    assert 0.2 < len(corpus_only) / len(suite.questions) < 0.4
    assert {q.category for q in corpus_only} == {q.category for q in trained}  # stratified
    training_text = " ".join(
        [p.question + " " + p.answer for p in suite.training.sft]
        + [p.chosen + " " + p.rejected for p in suite.training.preferences]
        + list(suite.training.documents)
    )
    passages = suite.passage_map()
    for q in corpus_only:
        assert passages[q.gold_passage_ids[0]].text not in training_text


def test_test_questions_are_paraphrases_of_training_wording():
    suite = builtin_suite(7)
    train_questions = {p.question for p in suite.training.sft}
    assert not train_questions & {q.text for q in suite.questions}
    assert len(suite.training.sft) == sum(q.slice == "trained" for q in suite.questions)


def test_preference_pairs_reject_a_plausible_wrong_answer():
    def shape(answer):  # "129 dollars" -> "# dollars", "Section 4.2" -> "Aa #.#", "Ada Brel" -> "Aa Aa"
        return re.sub(r"[A-Z][a-z]+", "Aa", re.sub(r"\d+", "#", answer))

    for pair in builtin_suite(7).training.preferences:
        assert normalize_answer(pair.chosen) != normalize_answer(pair.rejected)
        assert shape(pair.chosen) == shape(pair.rejected), (pair.chosen, pair.rejected)


def test_reading_pool_shares_no_names_with_the_domain():
    suite = builtin_suite(7)
    domain_text = " ".join(p.text for p in suite.passages)
    for fact in reading_pool(7, scale=10):
        answer = fact.answers[0]
        if answer[0].isupper() and not answer.startswith("Section"):  # a city or a person
            assert answer not in domain_text
