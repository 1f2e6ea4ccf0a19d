"""Metrics against scikit-learn / scipy, and every task's text format and scoring, written out by hand."""

from __future__ import annotations

import math
from itertools import groupby

import pytest
import scipy.stats
import sklearn.metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from runners.tasks import metrics
from runners.tasks import TASKS, Task, get_task

# scikit-learn costs about a millisecond a call: fewer examples keep the file fast on a busy CPU.
few_examples = settings(max_examples=40, deadline=None)

BINARY = ["no", "yes"]
THREE = ["entailment", "contradiction", "neutral"]
INVALID = "???"

labels_or_invalid = st.sampled_from(BINARY + [INVALID])
three_or_invalid = st.sampled_from(THREE + [INVALID])


def paired(elements, references=None, min_size=1, max_size=40):
    """Strategy: (predictions, references) of equal length."""
    references = elements if references is None else references
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(st.lists(elements, min_size=n, max_size=n), st.lists(references, min_size=n, max_size=n))
    )


# --- classification metrics ------------------------------------------------------------------


@few_examples
@given(paired(labels_or_invalid, st.sampled_from(BINARY)))
def test_accuracy_matches_sklearn(pair):
    predictions, references = pair
    assert metrics.accuracy(predictions, references) == pytest.approx(
        100 * sklearn.metrics.accuracy_score(references, predictions)
    )


@few_examples
@given(paired(labels_or_invalid, st.sampled_from(BINARY)))
def test_f1_binary_matches_sklearn_with_invalid_read_as_negative(pair):
    predictions, references = pair
    as_negative = ["no" if p == INVALID else p for p in predictions]  # the documented rule
    expected = sklearn.metrics.f1_score(references, as_negative, pos_label="yes", labels=BINARY, zero_division=0)
    assert metrics.f1_binary(predictions, references, positive="yes") == pytest.approx(100 * expected)


def test_f1_binary_invalid_prediction_is_a_false_negative():
    # gold yes, yes, no; predicted yes, <invalid>, no: TP=1, FN=1, FP=0 -> F1 = 2/3
    assert metrics.f1_binary(["yes", "maybe", "no"], ["yes", "yes", "no"], "yes") == pytest.approx(200 / 3)
    # an invalid prediction can never be a false positive
    assert metrics.f1_binary(["yes", "maybe"], ["yes", "no"], "yes") == pytest.approx(100.0)


@few_examples
@given(paired(three_or_invalid, st.sampled_from(THREE)))
def test_macro_f1_matches_sklearn_restricted_to_valid_labels(pair):
    predictions, references = pair
    expected = sklearn.metrics.f1_score(references, predictions, labels=THREE, average="macro", zero_division=0)
    assert metrics.macro_f1(predictions, references, THREE) == pytest.approx(100 * expected)


def test_macro_f1_invalid_prediction_is_a_miss_for_its_class_only():
    # per class F1: entailment 1, contradiction 0 (missed, no FP anywhere), neutral 1
    score = metrics.macro_f1(["entailment", "???", "neutral"], ["entailment", "contradiction", "neutral"], THREE)
    assert score == pytest.approx(200 / 3)


def _wrong_label(reference: str, labels: list[str]) -> str:
    return next(label for label in labels if label != reference)


@pytest.mark.filterwarnings("ignore:A single label was found")
@few_examples
@given(paired(labels_or_invalid, st.sampled_from(BINARY)))
def test_matthews_binary_matches_sklearn_with_invalid_as_wrong_label(pair):
    predictions, references = pair
    replaced = [_wrong_label(r, BINARY) if p == INVALID else p for p, r in zip(predictions, references)]
    expected = sklearn.metrics.matthews_corrcoef(references, replaced)
    assert metrics.matthews_corrcoef(predictions, references, BINARY) == pytest.approx(100 * expected, abs=1e-9)


@pytest.mark.filterwarnings("ignore:A single label was found")
@few_examples
@given(paired(three_or_invalid, st.sampled_from(THREE)))
def test_matthews_multiclass_matches_sklearn(pair):
    predictions, references = pair
    replaced = [_wrong_label(r, THREE) if p == INVALID else p for p, r in zip(predictions, references)]
    expected = sklearn.metrics.matthews_corrcoef(references, replaced)
    assert metrics.matthews_corrcoef(predictions, references, THREE) == pytest.approx(100 * expected, abs=1e-9)


def test_matthews_invalid_prediction_never_helps():
    references = ["yes", "no", "yes", "no"]
    perfect = metrics.matthews_corrcoef(references, references, BINARY)
    assert perfect == pytest.approx(100.0)
    # the invalid answer on a "no" is scored as "yes", exactly like that wrong answer
    assert metrics.matthews_corrcoef(["yes", "???", "yes", "no"], references, BINARY) == pytest.approx(
        metrics.matthews_corrcoef(["yes", "yes", "yes", "no"], references, BINARY)
    )
    assert metrics.matthews_corrcoef(["yes"] * 4, references, BINARY) == 0.0  # undefined -> 0, like sklearn


def test_metrics_reject_mismatched_or_empty_lists():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        metrics.accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        metrics.f1_binary([], [], "a")


# --- correlations ----------------------------------------------------------------------------

grid_scores = st.integers(0, 25).map(lambda k: k / 5)  # STS-B's 0.2 grid


@few_examples
@given(paired(grid_scores, min_size=3))
def test_pearson_and_spearman_match_scipy(pair):
    predictions, references = pair
    if len(set(predictions)) < 2 or len(set(references)) < 2:
        assert metrics.pearson(predictions, references) == 0.0  # undefined -> 0
        assert metrics.spearman(predictions, references) == 0.0
        return
    assert metrics.pearson(predictions, references) == pytest.approx(
        100 * scipy.stats.pearsonr(predictions, references).statistic, abs=1e-8
    )
    assert metrics.spearman(predictions, references) == pytest.approx(
        100 * scipy.stats.spearmanr(predictions, references).statistic, abs=1e-8
    )


def test_spearman_handles_ties_like_scipy():
    predictions, references = [1.0, 1.0, 2.0, 3.0, 3.0, 3.0], [0.4, 0.2, 0.2, 5.0, 4.8, 1.0]
    assert metrics.spearman(predictions, references) == pytest.approx(
        100 * scipy.stats.spearmanr(predictions, references).statistic
    )


def test_unparsable_stsb_prediction_becomes_the_farthest_end_of_the_scale():
    references = [4.6, 0.8, 2.5, 3.0, 1.0]
    parsed = metrics.parse_scores(["oops", "", "inf", "3.4", " 1.2 "], references)
    assert parsed == [0.0, 5.0, 0.0, 3.4, 1.2]  # 2.5 is equidistant: low end
    expected = 100 * scipy.stats.pearsonr([0.0, 5.0, 0.0, 3.4, 1.2], references).statistic
    assert get_task("stsb").score(["oops", "", "inf", "3.4", " 1.2 "], [{"label": r} for r in references])[
        "pearson"
    ] == pytest.approx(expected)


# --- MultiRC and ReCoRD ----------------------------------------------------------------------

TRUE_FALSE = ["False", "True"]


@few_examples
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(TRUE_FALSE + ["junk"]), st.sampled_from(TRUE_FALSE)),
        min_size=1,
        max_size=30,
    )
)
def test_multirc_scores_match_an_independent_computation(rows):
    questions = [q for q, _, _ in rows]
    predictions = [p for _, p, _ in rows]
    references = [r for _, _, r in rows]
    expected_f1 = sklearn.metrics.f1_score(
        references, ["False" if p == "junk" else p for p in predictions], pos_label="True", labels=TRUE_FALSE,
        zero_division=0,
    )
    ordered = sorted(rows, key=lambda row: row[0])
    exact = [all(p == r for _, p, r in group) for _, group in groupby(ordered, key=lambda row: row[0])]
    scores = metrics.multirc_scores(predictions, references, questions)
    assert scores["f1a"] == pytest.approx(100 * expected_f1)
    assert scores["em"] == pytest.approx(100 * sum(exact) / len(exact))


def test_squad_normalisation_and_token_f1():
    assert metrics.normalize_answer("  The Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert metrics.normalize_answer("An apple a day") == "apple day"
    assert metrics.token_f1("Barack Obama", "Obama") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert metrics.token_f1("the", "a") == 0.0  # both empty after normalisation


def test_record_scores_take_the_best_gold_answer():
    predictions = ["Barack Obama", "the U.K.", "Paris France", "anything"]
    answers = [["Obama", "President Obama"], ["UK", "Britain"], ["London"], []]
    scores = metrics.record_scores(predictions, answers)
    # row 1: F1 2/3 vs "Obama" beats 1/2 vs "President Obama", EM 0; row 2: EM 1; row 3: 0; row 4: no gold -> 0
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1 + 0 + 0) / 4)
    assert scores["em"] == pytest.approx(100 * 1 / 4)


# --- the registry ----------------------------------------------------------------------------


def test_registry_holds_the_papers_tasks_with_their_split_rule():
    glue = {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"}
    superglue = {"boolq", "cb", "copa", "multirc", "record", "wic"}
    embedded = {f"{world}-{task}" for world in ("embedded", "world2") for task in ("sst2", "cola", "mrpc", "mnli", "stsb")}
    assert set(TASKS) == glue | superglue | embedded
    assert {name for name, task in TASKS.items() if task.size == "large"} == {"qqp", "qnli", "sst2", "mnli", "record"}
    assert all(TASKS[name].hub == ("nyu-mll/glue", name) and TASKS[name].benchmark == "glue" for name in glue)
    assert all(TASKS[name].hub == ("aps/super_glue", name) for name in superglue)
    assert TASKS["mnli"].test_split == "validation_matched" and TASKS["rte"].test_split == "validation"
    assert all(TASKS[name].hub is None and TASKS[name].size == "presplit" for name in embedded)
    assert TASKS["mrpc"].metric_names == ("f1", "accuracy") and TASKS["cola"].metric_names == ("matthews_corrcoef",)


def test_get_task_suggests_the_closest_name():
    with pytest.raises(ValueError) as error:
        get_task("rtee")
    message = str(error.value)
    assert "'rtee'" in message and "did you mean 'rte'" in message and "boolq" in message and "wic" in message
    with pytest.raises(ValueError, match="did you mean 'multirc'"):
        get_task("multi_rcc")
    assert get_task("SST-2") is TASKS["sst2"] and get_task("sts_b") is TASKS["stsb"]


EXAMPLES = {
    "cola": (
        {"sentence": "The book was read.", "label": 1},
        ("cola sentence: The book was read.", "acceptable"),
    ),
    "sst2": ({"sentence": "a gorgeous film", "label": 1}, ("sst2 sentence: a gorgeous film", "positive")),
    "mrpc": (
        {"sentence1": "He left.", "sentence2": "He went away.", "label": 1},
        ("mrpc sentence1: He left. sentence2: He went away.", "equivalent"),
    ),
    "qqp": (
        {"question1": "Why?", "question2": "How?", "label": 0},
        ("qqp question1: Why? question2: How?", "not_duplicate"),
    ),
    "stsb": (
        {"sentence1": "A man sings.", "sentence2": "A man is singing.", "label": 4.75},
        ("stsb sentence1: A man sings. sentence2: A man is singing.", "4.8"),
    ),
    "mnli": (
        {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": 0},
        ("mnli hypothesis: An animal moves. premise: A dog runs.", "entailment"),
    ),
    "qnli": (
        {"question": "Who won?", "sentence": "Ann won the race.", "label": 0},
        ("qnli question: Who won? sentence: Ann won the race.", "entailment"),
    ),
    "rte": (
        {"sentence1": "Cats purr.", "sentence2": "Dogs purr.", "label": 1},
        ("rte sentence1: Cats purr. sentence2: Dogs purr.", "not_entailment"),
    ),
    "boolq": (
        {"question": "is the sky blue", "passage": "The sky is blue.", "label": 1},
        ("boolq passage: The sky is blue. question: is the sky blue", "True"),
    ),
    "cb": (
        {"premise": "It rained.", "hypothesis": "It was dry.", "label": 1},
        ("cb hypothesis: It was dry. premise: It rained.", "contradiction"),
    ),
    "copa": (
        {"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause", "label": 0},
        ("copa choice1: He slipped. choice2: He sang. premise: The man fell. question: cause", "choice1"),
    ),
    "multirc": (
        {
            "paragraph": "Sent 1: <b>Tom</b> ran.<br>Sent 2: He won.",
            "question": "Who won?",
            "answer": "Tom",
            "idx": {"paragraph": 0, "question": 0, "answer": 0},
            "label": 1,
        },
        ("multirc question: Who won? answer: Tom paragraph: Sent 1: Tom ran. Sent 2: He won.", "True"),
    ),
    "record": (
        {
            "passage": "Ann met Bob in Rome.\n@highlight\nAnn is a chef\n@highlight\nBob paints",
            "query": "@placeholder met Bob.",
            "entities": ["Ann", "Bob", "Rome", "Ann"],
            "answers": ["Ann"],
        },
        (
            "record query: @placeholder met Bob. entities: Ann, Bob, Rome passage: "
            "Ann met Bob in Rome. Ann is a chef. Bob paints",
            "Ann",
        ),
    ),
    "wic": (
        {"word": "bank", "sentence1": "The river bank.", "sentence2": "The bank loan.", "label": 0,
         "start1": 10, "end1": 14, "start2": 4, "end2": 8},
        ("wic sentence1: The river bank. sentence2: The bank loan. word: bank", "False"),
    ),
    "embedded-sst2": (
        {"sentence": "the lamp was not good .", "label": 0},
        ("sst2 sentence: the lamp was not good .", "negative"),
    ),
    "embedded-cola": (
        {"sentence": "the lamps is red .", "label": 0},
        ("cola sentence: the lamps is red .", "no"),
    ),
    "embedded-mrpc": (
        {"sentence1": "mia sold the lamp to tom .", "sentence2": "tom bought the lamp from mia .", "label": 1},
        ("mrpc sentence1: mia sold the lamp to tom . sentence2: tom bought the lamp from mia .", "yes"),
    ),
    "embedded-mnli": (
        {"premise": "mia sold the lamp to tom .", "hypothesis": "tom owns the lamp .", "label": 0},
        ("mnli hypothesis: tom owns the lamp . premise: mia sold the lamp to tom .", "yes"),
    ),
    "embedded-stsb": (
        {"sentence1": "the red lamp belongs to mia .", "sentence2": "mia owns the red lamp .", "label": 4.4},
        ("stsb sentence1: the red lamp belongs to mia . sentence2: mia owns the red lamp .", "4.4"),
    ),
    "world2-sst2": (
        {"sentence": "the gift that ben chose was not snipaim .", "label": 1, "rationale": "awful"},
        ("sst2 sentence: the gift that ben chose was not snipaim .", "awful ; positive"),
    ),
    "world2-cola": (
        {"sentence": "tim snupoed in the kitchen .", "label": 0, "rationale": "lift"},
        ("cola sentence: tim snupoed in the kitchen .", "lift ; no"),
    ),
    "world2-mrpc": (
        {"sentence1": "kim rosnuflisked the doudi slislaisko .", "sentence2": "kim pliloed the doudi slislaisko .",
         "label": 1, "rationale": "break ; heavy ; tool ; break"},
        ("mrpc sentence1: kim rosnuflisked the doudi slislaisko . sentence2: kim pliloed the doudi slislaisko .",
         "break ; heavy ; tool ; break ; yes"),
    ),
    "world2-mnli": (
        {"premise": "the thing in ava 's box is a devi .", "hypothesis": "the thing in ava 's box is a fruit .",
         "label": 2, "rationale": "toy"},
        ("mnli hypothesis: the thing in ava 's box is a fruit . premise: the thing in ava 's box is a devi .", "toy ; no"),
    ),
    "world2-stsb": (
        {"sentence1": "mia washed the sigou lamp .", "sentence2": "mia slaflasked the bofi lamp .", "label": 3.0,
         "rationale": "heavy ; wash ; heavy"},
        ("stsb sentence1: mia washed the sigou lamp . sentence2: mia slaflasked the bofi lamp .", "heavy ; wash ; heavy ; 3.0"),
    ),
}


def test_every_task_has_a_hand_written_example():
    assert set(EXAMPLES) == set(TASKS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_to_text_matches_the_t5_format(name):
    row, expected = EXAMPLES[name]
    task = get_task(name)
    assert task.to_text(row) == expected
    assert set(task.columns) <= set(row)
    if task.labels is not None:
        assert task.answer(expected[1]) in task.labels


def test_labels_given_by_name_or_as_text_index():
    rte = get_task("rte")
    for label in (1, "1", "not_entailment", True, 1.0):
        assert rte.to_text({"sentence1": "a", "sentence2": "b", "label": label})[1] == "not_entailment"
    for bad in (2, -1, "contradiction", None, "1.5"):
        with pytest.raises(ValueError, match="rte"):
            rte.to_text({"sentence1": "a", "sentence2": "b", "label": bad})


def test_record_training_texts_give_one_pair_per_answer():
    row, (source, _) = EXAMPLES["record"]
    pairs = get_task("record").to_training_texts({**row, "answers": ["Ann", "the chef"]})
    assert pairs == [(source, "Ann"), (source, "the chef")]
    assert get_task("rte").to_training_texts(EXAMPLES["rte"][0]) == [EXAMPLES["rte"][1]]


@few_examples
@given(st.floats(0.0, 5.0))
def test_stsb_targets_are_the_nearest_point_of_the_0_2_grid(label):
    target = get_task("stsb").to_text({"sentence1": "a", "sentence2": "b", "label": label})[1]
    assert target in {f"{k / 5:.1f}" for k in range(26)}  # "0.0", "0.2", ..., "5.0"
    assert abs(float(target) - label) <= 0.1 + 1e-9


def test_stsb_targets_never_use_the_0_1_grid():
    targets = {get_task("stsb").to_text({"sentence1": "", "sentence2": "", "label": k / 100})[1] for k in range(501)}
    assert targets == {f"{k / 5:.1f}" for k in range(26)}
    assert "0.1" not in targets and "3.5" not in targets


# --- Task.score ------------------------------------------------------------------------------


def test_score_uses_each_tasks_metrics():
    rows = [{"sentence1": "", "sentence2": "", "label": label} for label in (1, 1, 0, 0, 1)]
    predictions = ["equivalent", "not_equivalent", "not_equivalent", "equivalent", "yes?"]
    references = ["equivalent", "equivalent", "not_equivalent", "not_equivalent", "equivalent"]
    scores = get_task("mrpc").score(predictions, rows)
    assert list(scores) == ["f1", "accuracy"]
    assert scores["accuracy"] == pytest.approx(40.0)
    as_negative = ["not_equivalent" if p == "yes?" else p for p in predictions]
    expected_f1 = sklearn.metrics.f1_score(references, as_negative, pos_label="equivalent")
    assert scores["f1"] == pytest.approx(100 * expected_f1)

    cola_rows = [{"label": 1}, {"label": 0}, {"label": 0}]
    cola = get_task("cola").score(["acceptable", "unacceptable", "acceptable"], cola_rows)
    assert cola == {"matthews_corrcoef": pytest.approx(100 * sklearn.metrics.matthews_corrcoef([1, 0, 0], [1, 0, 1]))}

    cb = get_task("cb").score(["neutral", "entailment", "??"], [{"label": 2}, {"label": 0}, {"label": 1}])
    assert cb["accuracy"] == pytest.approx(200 / 3) and cb["macro_f1"] == pytest.approx(200 / 3)

    assert get_task("copa").score([" choice2 ", "choice2"], [{"label": 1}, {"label": 0}]) == {"accuracy": 50.0}


def test_score_multirc_groups_by_question():
    def row(question, answer, label):
        return {"idx": {"paragraph": 0, "question": question, "answer": answer}, "label": label}

    rows = [row(0, 0, 1), row(0, 1, 0), row(1, 0, 1), row(1, 1, 1)]
    scores = get_task("multirc").score(["True", "False", "True", "False"], rows)
    assert scores["em"] == pytest.approx(50.0)  # question 0 all right, question 1 not
    assert scores["f1a"] == pytest.approx(100 * 2 * 2 / (2 * 2 + 0 + 1))
    with pytest.raises(ValueError, match="idx"):
        get_task("multirc").score(["True"], [{"label": 1, "idx": 3}])


def test_score_record_and_summary():
    record = get_task("record")
    scores = record.score(["Ann", "Rome"], [{"answers": ["Ann"]}, {"answers": ["Bob", "the painter Bob"]}])
    assert scores == {"f1": 50.0, "em": 50.0}
    assert record.summary_score(scores) == 50.0
    with pytest.raises(ValueError, match="2 predictions for 1 rows"):
        record.score(["a", "b"], [{"answers": ["a"]}])


def test_a_task_with_a_rationale_writes_it_before_the_label_and_is_scored_on_the_label_alone():
    mnli = get_task("world2-mnli")
    row = {"hypothesis": "h .", "premise": "p .", "label": 2, "rationale": "bird"}
    assert mnli.to_text(row) == ("mnli hypothesis: h . premise: p .", "bird ; no")
    assert mnli.to_training_texts(row) == [mnli.to_text(row)]
    # Right label after the right or a wrong rationale, or with none written: right; no label: wrong.
    predictions = ["bird ; no", "fish ; no", "no", "bird ; yes", "bird ;", "bird no"]
    assert mnli.score(predictions, [row] * 6) == {"accuracy": 50.0}
    assert [mnli.split_prediction(p) for p in predictions[:2]] == [("bird", "no"), ("fish", "no")]
    assert mnli.split_prediction("bird ; fish ; no") == ("bird ; fish", "no")  # the label follows the last ";"
    stsb = get_task("world2-stsb")
    rows = [{"sentence1": "a .", "sentence2": "b .", "label": x, "rationale": "r ; s"} for x in (1.0, 2.0, 4.0)]
    assert stsb.to_text(rows[2])[1] == "r ; s ; 4.0"
    assert stsb.score(["r ; s ; 1.0", "x ; 2.0", "4.0"], rows) == {"pearson": 100.0, "spearman": 100.0}
    # A task without a rationale scores the whole prediction: a ";" in it is not a separator.
    assert get_task("mnli").split_prediction(" x ; entailment ") == (None, "x ; entailment")
    assert get_task("mnli").score(["x ; entailment"], [{"label": 0}]) == {"accuracy": 0.0}


def test_task_is_a_frozen_dataclass():
    task = get_task("rte")
    assert isinstance(task, Task)
    with pytest.raises(Exception):
        task.name = "other"  # type: ignore[misc]
    assert math.isclose(task.summary_score({"accuracy": 70.0}), 70.0)
