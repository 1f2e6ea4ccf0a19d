"""Loading local files, the paper's split protocol, clear data errors, and the shipped embedded benchmark."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pyarrow
import pyarrow.parquet
import pytest
import sentencepiece

from runners.embedded import build
from runners.tasks import TASK_GROUPS, get_task
from runners.tasks.data import DataError, embedded_tokenizer, load_embedded, load_task_splits

# --- writers for fake data sets --------------------------------------------------------------


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write rows in the format the suffix names (list/dict cells JSON-encoded in CSV/TSV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    if path.suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as file:
            delimiter = "," if path.suffix == ".csv" else "\t"
            quoting = csv.QUOTE_MINIMAL if path.suffix == ".csv" else csv.QUOTE_NONE
            writer = csv.DictWriter(file, fieldnames=columns, delimiter=delimiter, quoting=quoting, escapechar="\\")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps({"data": rows}), encoding="utf-8")
    elif path.suffix == ".parquet":
        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
        raise AssertionError(path)
    return path


def rte_rows(count: int, prefix: str) -> list[dict]:
    return [
        {"sentence1": f"{prefix} premise, {i}", "sentence2": f"{prefix} claim {i}", "label": i % 2}
        for i in range(count)
    ]


def qnli_rows(count: int, prefix: str) -> list[dict]:
    return [{"question": f"{prefix} q{i}?", "sentence": f"{prefix} s{i}.", "label": i % 2} for i in range(count)]


def key(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


# --- the split protocol ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "train_suffix, validation_suffix", [(".csv", ".jsonl"), (".parquet", ".csv"), (".tsv", ".json")]
)
def test_small_task_halves_the_original_validation_set(tmp_path, train_suffix, validation_suffix):
    train, validation = rte_rows(30, "train"), rte_rows(21, "val")
    write_rows(tmp_path / f"train{train_suffix}", train)
    write_rows(tmp_path / f"validation{validation_suffix}", validation)

    splits = load_task_splits(get_task("rte"), tmp_path, seed=7)

    assert set(splits) == {"train", "validation", "test"}
    assert [key(r) for r in splits["train"]] == [key(r) for r in train]  # values round-trip through every format
    assert (len(splits["validation"]), len(splits["test"])) == (10, 11)
    halves = [key(r) for r in splits["validation"] + splits["test"]]
    assert sorted(halves) == sorted(key(r) for r in validation) and len(set(halves)) == 21  # disjoint, complete


def test_split_is_seeded(tmp_path):
    write_rows(tmp_path / "train.jsonl", rte_rows(10, "train"))
    write_rows(tmp_path / "validation.jsonl", rte_rows(40, "val"))
    first = load_task_splits("rte", tmp_path, seed=3)
    assert load_task_splits("rte", tmp_path, seed=3) == first
    other = load_task_splits("rte", tmp_path, seed=4)
    assert [key(r) for r in other["validation"]] != [key(r) for r in first["validation"]]
    # the same halving an independent seeded shuffle gives
    shuffled = rte_rows(40, "val")
    random.Random(3).shuffle(shuffled)
    assert first["validation"] == shuffled[:20] and first["test"] == shuffled[20:]


def test_large_task_takes_1000_training_rows_as_validation(tmp_path):
    train, validation = qnli_rows(1030, "train"), qnli_rows(17, "val")
    write_rows(tmp_path / "train.parquet", train)
    write_rows(tmp_path / "validation.csv", validation)

    splits = load_task_splits(get_task("qnli"), tmp_path, seed=1)

    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (30, 1000, 17)
    assert splits["test"] == validation
    train_keys, validation_keys = {key(r) for r in splits["train"]}, {key(r) for r in splits["validation"]}
    assert not train_keys & validation_keys and train_keys | validation_keys == {key(r) for r in train}
    assert load_task_splits("qnli", tmp_path, seed=1) == splits
    assert load_task_splits("qnli", tmp_path, seed=2)["validation"] != splits["validation"]


def test_large_task_with_too_few_training_rows_is_refused(tmp_path):
    write_rows(tmp_path / "train.jsonl", qnli_rows(1000, "train"))
    write_rows(tmp_path / "validation.jsonl", qnli_rows(5, "val"))
    with pytest.raises(DataError, match="more than 1000 training rows; found 1000"):
        load_task_splits("qnli", tmp_path)


def test_mnli_tests_on_validation_matched(tmp_path):
    rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 3} for i in range(1002)]
    write_rows(tmp_path / "train.jsonl", rows)
    write_rows(tmp_path / "validation_matched.jsonl", rows[:4])
    write_rows(tmp_path / "validation_mismatched.jsonl", rows[4:9])  # must be ignored
    splits = load_task_splits("mnli", tmp_path)
    assert splits["test"] == rows[:4] and len(splits["train"]) == 2


def test_max_train_samples_after_the_split(tmp_path):
    write_rows(tmp_path / "train.csv", rte_rows(50, "train"))
    write_rows(tmp_path / "validation.csv", rte_rows(20, "val"))
    full = load_task_splits("rte", tmp_path, seed=5)
    few = load_task_splits("rte", tmp_path, seed=5, max_train=8)
    assert len(few["train"]) == 8 and len({key(r) for r in few["train"]}) == 8
    assert {key(r) for r in few["train"]} <= {key(r) for r in full["train"]}
    assert few["validation"] == full["validation"] and few["test"] == full["test"]
    assert load_task_splits("rte", tmp_path, seed=5, max_train=8) == few
    assert load_task_splits("rte", tmp_path, seed=6, max_train=8)["train"] != few["train"]
    with pytest.warns(UserWarning, match="exceeds the 50 training rows"):
        assert load_task_splits("rte", tmp_path, seed=5, max_train=500)["train"] == full["train"]
    with pytest.raises(DataError, match="max_train"):
        load_task_splits("rte", tmp_path, max_train=0)


def test_multirc_is_halved_by_question(tmp_path):
    rows = [
        {"paragraph": "P", "question": f"Q{q}", "answer": f"A{a}", "idx": {"paragraph": 0, "question": q, "answer": a},
         "label": (q + a) % 2}
        for q in range(10)
        for a in range(3)
    ]
    write_rows(tmp_path / "train.csv", rows[:6])  # idx JSON-encoded in a CSV cell
    write_rows(tmp_path / "validation.jsonl", rows)
    splits = load_task_splits("multirc", tmp_path, seed=0)
    assert splits["train"][0]["idx"] == {"paragraph": 0, "question": 0, "answer": 0}
    questions = [{r["idx"]["question"] for r in splits[name]} for name in ("validation", "test")]
    assert not questions[0] & questions[1] and len(questions[0]) == len(questions[1]) == 5
    assert len(splits["validation"]) == len(splits["test"]) == 15


def test_record_lists_survive_csv_and_labels_may_be_names(tmp_path):
    rows = [
        {"passage": f"Ann met Bob {i}.", "query": "@placeholder met Bob.", "entities": ["Ann", "Bob"],
         "answers": ["Ann"]}
        for i in range(1003)
    ]
    write_rows(tmp_path / "train.csv", rows)
    write_rows(tmp_path / "validation.csv", rows[:2])
    splits = load_task_splits("record", tmp_path)
    assert splits["test"][0]["entities"] == ["Ann", "Bob"] and splits["test"][0]["answers"] == ["Ann"]

    named = [{**row, "label": "not_entailment" if row["label"] else "entailment"} for row in rte_rows(6, "x")]
    write_rows(tmp_path / "rte" / "train.csv", named)
    write_rows(tmp_path / "rte" / "validation.csv", named)
    assert get_task("rte").to_text(load_task_splits("rte", tmp_path / "rte")["train"][1])[1] == "not_entailment"


def test_hub_loading_is_one_load_dataset_call(monkeypatch):
    calls = []

    def fake_load_dataset(path, name):
        calls.append((path, name))
        return {"train": rte_rows(4, "t"), "validation": rte_rows(4, "v"), "test": [{"label": -1}]}

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_task_splits("rte")
    assert calls == [("nyu-mll/glue", "rte")]
    assert len(splits["train"]) == 4 and len(splits["validation"]) == len(splits["test"]) == 2

    def offline(*args):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"could not load 'aps/super_glue' config 'cb'.*no network.*data folder"):
        load_task_splits("cb")


# --- errors ----------------------------------------------------------------------------------


def test_missing_file_names_the_expected_paths(tmp_path):
    write_rows(tmp_path / "train.csv", rte_rows(4, "t"))
    with pytest.raises(DataError) as error:
        load_task_splits("rte", tmp_path)
    message = str(error.value)
    assert "task 'rte'" in message and "'validation'" in message
    for suffix in (".csv", ".tsv", ".json", ".jsonl", ".parquet"):
        assert str(tmp_path / f"validation{suffix}") in message
    with pytest.raises(DataError, match="validation_matched.jsonl"):
        write_rows(tmp_path / "mnli" / "train.jsonl", [{"premise": "p", "hypothesis": "h", "label": 0}])
        load_task_splits("mnli", tmp_path / "mnli")
    with pytest.raises(DataError, match="does not exist"):
        load_task_splits("rte", tmp_path / "nowhere")


def test_missing_column_names_file_column_and_columns_found(tmp_path):
    write_rows(tmp_path / "train.jsonl", [{"sentence1": "a", "label": 0}])
    write_rows(tmp_path / "validation.jsonl", rte_rows(4, "v"))
    with pytest.raises(DataError) as error:
        load_task_splits("rte", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "train.jsonl") in message and "'sentence2'" in message and "sentence1, label" in message

    write_rows(tmp_path / "csv" / "train.csv", [{"premise": "a", "hypothesis": "b", "label": 0}])
    write_rows(tmp_path / "csv" / "validation.csv", rte_rows(4, "v"))
    with pytest.raises(DataError, match=r"train\.csv, line 2: missing column 'sentence1'.*premise, hypothesis, label"):
        load_task_splits("rte", tmp_path / "csv")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("train.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 0}\n{"sentence1": \n',
         r"train\.jsonl, line 2: malformed JSON"),
        ("train.jsonl", '[1, 2]\n', r"train\.jsonl, line 1: malformed row, expected a JSON object"),
        ("train.json", '{"a": 1}', r"train\.json: malformed file"),
        ("train.csv", "sentence1,sentence2,label\na,b,0\nc,d,1,extra\n",
         r"train\.csv, line 3: malformed row, expected 3 fields"),
        ("train.csv", "", r"train\.csv: malformed file, it is empty"),
        ("train.parquet", "this is not parquet", r"train\.parquet: malformed file"),
        ("train.csv", "sentence1,sentence2,label\na,b,maybe\n", r"train\.csv, line 2: task 'rte': label 'maybe'"),
        ("train.csv", "sentence1,sentence2,label\n", r"train\.csv: the file holds no rows"),
    ],
)
def test_malformed_files_are_named(tmp_path, name, content, expected):
    (tmp_path / name).write_text(content, encoding="utf-8")
    write_rows(tmp_path / "validation.jsonl", rte_rows(4, "v"))
    with pytest.raises(DataError, match=expected) as error:
        load_task_splits("rte", tmp_path)
    chained = error.value.__cause__ or (None if error.value.__suppress_context__ else error.value.__context__)
    assert chained is None  # the parser's own traceback is not printed under ours


def test_csv_with_a_byte_order_mark_reads_like_any_csv(tmp_path):
    (tmp_path / "train.csv").write_text("\ufeffsentence1,sentence2,label\na,b,1\n", encoding="utf-8")
    write_rows(tmp_path / "validation.jsonl", rte_rows(4, "v"))
    assert load_task_splits("rte", tmp_path)["train"] == [{"sentence1": "a", "sentence2": "b", "label": 1}]


def test_non_utf8_and_ambiguous_files(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"sentence1,sentence2,label\n\xff\xfe,b,0\n")
    write_rows(tmp_path / "validation.jsonl", rte_rows(4, "v"))
    with pytest.raises(DataError, match=r"train\.csv: malformed file, not UTF-8"):
        load_task_splits("rte", tmp_path)
    write_rows(tmp_path / "train.jsonl", rte_rows(4, "t"))
    with pytest.raises(DataError, match="more than one file for the 'train' split"):
        load_task_splits("rte", tmp_path)


def test_unknown_task_name_suggests_one():
    with pytest.raises(ValueError, match="did you mean 'qnli'"):
        load_task_splits("qnil")


# --- the embedded benchmark ----------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_GROUPS["embedded-glue"])
def test_embedded_tasks_are_balanced_and_disjoint(name):
    task = get_task(name)
    splits = load_embedded(name)
    assert {split: len(rows) for split, rows in splits.items()} == {"train": 2000, "validation": 500, "test": 500}
    for rows in splits.values():
        if task.labels is not None:  # every label equally often (within one: 3 classes cycle)
            counts = Counter(task.to_text(row)[1] for row in rows)
            assert set(counts) == set(task.labels) and max(counts.values()) - min(counts.values()) <= 1
        else:
            assert len({round(row["label"]) for row in rows}) == 6  # scores over the whole 0..5 range
    inputs = [tuple(row[c] for c in task.source_columns) for rows in splits.values() for row in rows]
    assert len(set(inputs)) == len(inputs)
    assert load_task_splits(name) == splits  # data_dir=None reads the shipped files, no Hub


def test_one_sentence_inputs_are_not_corpus_sentences():
    from runners.embedded import CORPUS_FILE
    from runners.embedded.language.benchmark import sentences

    corpus = {s for line in gzip.open(CORPUS_FILE, "rt", encoding="utf-8") for s in sentences(line.strip())}
    for name in ("embedded-sst2", "embedded-cola"):
        for rows in load_embedded(name).values():
            assert not any(row["sentence"].removesuffix(" .") in corpus for row in rows)


def test_embedded_tokenizer_matches_sentencepiece_and_round_trips():
    from runners.embedded import SPIECE_MODEL, SPIECE_VOCAB_SIZE

    tokenizer = embedded_tokenizer()
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert len(tokenizer) == SPIECE_VOCAB_SIZE + 100
    sentinels = {tokenizer.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(100)}
    assert sentinels == set(range(SPIECE_VOCAB_SIZE, SPIECE_VOCAB_SIZE + 100))  # after every piece
    processor = sentencepiece.SentencePieceProcessor(model_file=str(SPIECE_MODEL))
    texts = [text for name in TASK_GROUPS["embedded-glue"] for row in load_embedded(name)["train"][:60]
             for text in get_task(name).to_text(row)]
    for text in texts:
        ids = tokenizer(text).input_ids
        assert ids == processor.encode(text) + [1]  # sentencepiece's pieces, then </s>
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.tokenize("the lamp was not good .") == ["▁the", "▁lamp", "▁was", "▁not", "▁good", "▁."]
    batch = tokenizer(["positive", "mia hated the lamp ."], padding=True)
    assert batch.input_ids[0][-1] == tokenizer.pad_token_id and batch.attention_mask[0][-1] == 0


def test_embedded_files_rebuild_byte_for_byte():
    assert build.check() == []


