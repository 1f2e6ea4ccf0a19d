"""World 2 of the embedded language (runners/embedded/world2): held-out lexicon, corpus coverage, rebuild.

Small worlds (a twentieth of the lexicon, a few hundred rows) keep these to seconds; the generator
takes its sizes as parameters, so what holds here is what the shipped build does at full size.
"""

from __future__ import annotations

import gzip
import json
import random

import pytest

from runners.embedded.world2 import BENCHMARK_SIZES, HELD_OUT_SHARE
from runners.embedded.world2.benchmark import ROW_MAKERS, TASK_FIELDS, held_out_parts, make_rows
from runners.embedded.world2.build import Sizes, build, check, main
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon

SEED = 7
SCALE = 0.05
SMALL = {"train": 300, "validation": 60, "test": 120}


@pytest.fixture(scope="module")
def lexicon():
    return make_lexicon(SEED, SCALE)


@pytest.fixture(scope="module")
def rows(lexicon):
    return {task: make_rows(task, lexicon, SEED, SMALL, shares=HELD_OUT_SHARE) for task in TASK_FIELDS}


def tokens(row: dict) -> set[str]:
    return {w for key, value in row.items() if key != "label" for w in str(value).split()}


def word_in(word: str, row_tokens: set[str]) -> bool:
    """The word, or its plural / past tense, is a token of the row."""
    return bool({word, word + "s", word + "ed"} & row_tokens)


@pytest.mark.parametrize("task", list(TASK_FIELDS))
def test_no_designated_word_of_a_held_out_split_is_in_its_training_split(task, lexicon, rows):
    train_tokens = set().union(*(tokens(row) for row, _ in rows[task]["train"]))
    for split in ("validation", "test"):
        designated = set()
        for row, words in rows[task][split]:
            assert words, f"{task} {split}: a row without designated words: {row}"
            assert all(word_in(w, tokens(row)) for w in words), (row, words)  # the bookkeeping names real words
            designated |= set(words)
        leaked = {w for w in designated if word_in(w, train_tokens)}
        assert not leaked, f"{task}: {split} words in the training split: {sorted(leaked)[:5]}"
    # and the splits between them use every held-out word only once: validation and test are disjoint too
    validation = {w for _, words in rows[task]["validation"] for w in words}
    test = {w for _, words in rows[task]["test"] for w in words}
    assert not validation & test


def test_the_label_follows_from_the_designated_words_property(lexicon, rows):
    """Recomputed here from the lexicon: sst2's label is the word's polarity (flipped by "not"), cola's
    is whether the verb's transitivity matches an object and the adjective comes first."""
    for row, (word,) in rows["sst2"]["test"]:
        polarity = lexicon.entries[word].polarity * (-1 if " not " in row["sentence"] else 1)
        assert row["label"] == (1 if polarity > 0 else 0), row
    for row, words in rows["cola"]["test"]:
        text = row["sentence"].split()
        verb = lexicon.entries[words[0]]
        has_object = "the" in text[:3]
        in_order = len(words) == 1 or text.index(words[1]) < text.index(words[2])
        assert row["label"] == int(verb.transitive == has_object and in_order), row


def statement_found(lexicon, word: str, corpus_sentences: set[str]) -> bool:
    """Some corpus sentence with the word and its property (written out here, not taken from the corpus module)."""
    entry = lexicon.entries[word]
    if entry.kind == "evaluative":
        values = (entry.gloss, "praise" if entry.polarity > 0 else "blame")
    elif entry.kind == "descriptive":
        values = (entry.gloss, lexicon.opposite_gloss(entry.gloss))
    elif entry.kind == "verb":
        values = (entry.gloss,)
    elif entry.kind == "noun":
        values = (entry.category, entry.category + "s", entry.synonym)
    else:
        values = (entry.profession,)
    return any({word, word + "s"} & set(sentence.split()) and set(values) & set(sentence.split())
               for sentence in corpus_sentences)


def test_every_test_item_has_its_property_stated_in_the_corpus(lexicon, rows):
    documents = make_corpus(lexicon, SEED, 2 * len(lexicon.entries), definitions=1)
    corpus_sentences = {s for d in documents for s in d.removesuffix(" .").split(" . ")}
    for task in TASK_FIELDS:
        for _, words in rows[task]["test"]:
            missing = [w for w in words if not statement_found(lexicon, w, corpus_sentences)]
            assert not missing, f"{task}: no statement of {missing} in the corpus"


def test_a_corpus_too_small_for_its_definitions_is_refused(lexicon):
    with pytest.raises(ValueError, match="cannot hold 1 definitions"):
        make_corpus(lexicon, SEED, 10, definitions=1)


SMALL_SIZES = Sizes(scale=SCALE, documents=1500, definitions=2, supervised=300, explain=300,
                    benchmark=(("train", 100), ("validation", 30), ("test", 30)))


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world2")
    return folder, build(folder, SMALL_SIZES, seed=SEED, progress=lambda message: None)


def test_rebuild_check_is_identical_and_notices_a_change(small_build):
    folder, written = small_build
    assert check(folder, SMALL_SIZES, seed=SEED) == []
    test_file = folder / "glue" / "sst2" / "test.jsonl"
    test_file.write_text(test_file.read_text().replace("positive", "negative").replace('"label": 1', '"label": 0'))
    assert check(folder, SMALL_SIZES, seed=SEED) == ["glue/sst2/test.jsonl"]


@pytest.mark.slow
def test_the_shipped_files_are_what_the_generator_makes_now():
    """The full-size rebuild (about 15 s) matches world 2's shipped files byte for byte, so a change to
    the generator (a rationale rule, a template) cannot ship with stale benchmark files."""
    assert check() == []


def test_no_benchmark_sentence_is_a_corpus_sentence(small_build):
    folder, _ = small_build
    with gzip.open(folder / "corpus.txt.gz", "rt") as file:
        corpus = {s.strip() for line in file for s in line.strip().removesuffix(" .").split(" . ")}
    with gzip.open(folder / "supervised.jsonl.gz", "rt") as file:  # the explain: sentences are pretraining text too
        explained = [json.loads(line)["source"] for line in file if line.startswith('{"source": "explain: ')]
    assert explained
    corpus |= {s.strip() for source in explained for s in source.removeprefix("explain: ").removesuffix(" .").split(" . ")}
    for path in (folder / "glue").glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            for key, value in row.items():
                if key != "label":
                    assert not {s.strip() for s in value.removesuffix(" .").split(" . ")} & corpus, (path, row)


def test_the_tokenizer_spells_every_word_without_unknown_pieces(small_build):
    from runners.embedded.tokenizer import embedded_tokenizer
    from runners.embedded.world2.tasks import world2_task

    folder, _ = small_build
    tokenizer = embedded_tokenizer(folder / "spiece.model")
    for task in TASK_FIELDS:
        for line in (folder / "glue" / task / "test.jsonl").read_text().splitlines():
            source, target = world2_task(task).to_text(json.loads(line))
            assert tokenizer.unk_token_id not in tokenizer(source + " " + target).input_ids, source


def test_how_the_tokenizer_cuts_a_word_says_nothing_of_its_class_or_properties(small_build):
    # Frequency-chosen pieces leaked the corpus: in the quarter-size world the past tense of every
    # verb that takes an object was one piece and of every other verb six, so a random-init model
    # read transitivity (cola's label) off the cut. Now every invented word is one piece and each
    # inflected form two, the stem's and the suffix's, whatever the word's class and frequency.
    from runners.embedded.tokenizer import embedded_tokenizer

    folder, _ = small_build
    tokenizer = embedded_tokenizer(folder / "spiece.model")
    lexicon = make_lexicon(SEED, SCALE)
    kinds = set()
    for word, entry in lexicon.entries.items():
        assert tokenizer.tokenize(word) == ["▁" + word], (entry.kind, word)
        for suffix in ("ed", "s"):
            cut = tokenizer.tokenize(word + suffix)
            assert cut == ["▁" + word, suffix], (entry.kind, word, cut)
        kinds.add(entry.kind)
    assert kinds == {"evaluative", "descriptive", "verb", "noun", "person", "town"}


def bag_of_words(task, train, test):
    from runners.embedded.baselines import fit_and_score
    from runners.embedded.world2.tasks import world2_task

    return fit_and_score(world2_task(task), [r for r, _ in train], [r for r, _ in test], (1, 2))


CHANCE_BOUNDS = {"sst2": ("accuracy", 35, 65), "cola": ("matthews_corrcoef", -25, 25), "mrpc": ("accuracy", 35, 65),
                 "mnli": ("accuracy", 20, 46), "stsb": ("pearson", -25, 25)}


@pytest.mark.parametrize("task", list(TASK_FIELDS))
def test_bag_of_words_is_near_chance_on_held_out_items(task, rows):
    metric, low, high = CHANCE_BOUNDS[task]
    score = bag_of_words(task, rows[task]["train"], rows[task]["test"])[metric]
    assert low <= score <= high, f"{task}: bag-of-words {metric} {score:.1f} on held-out words"


@pytest.mark.parametrize("task", ["sst2", "cola"])
def test_bag_of_words_learns_the_same_task_when_the_words_are_not_held_out(task, lexicon, rows):
    """The control: test rows drawn from the training split's own words are learnable by words alone
    (on the one-sentence tasks; on pair tasks word features cannot compare the two sentences)."""
    make, classes = ROW_MAKERS[task]
    parts = held_out_parts(lexicon, task, SEED, HELD_OUT_SHARE)
    rng = random.Random(0)
    seen = [make(rng, lexicon, parts["train"], i % classes) for i in range(120)]
    score = bag_of_words(task, rows[task]["train"], seen)[CHANCE_BOUNDS[task][0]]
    assert score >= CHANCE_BOUNDS[task][2], f"{task}: bag-of-words only {score:.1f} on words it was trained on"


def test_build_cli_refuses_bad_sizes_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--scale", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --scale must be in (0, 10], got 0.0"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--scale", "0.05", "--documents", "10"])
    assert exit_info.value.code == 2
    assert "cannot hold 6 definitions" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_the_shipped_world2_tasks_load_with_valid_labels():
    from runners.embedded.world2.tasks import WORLD2_TASKS
    from runners.tasks.data import load_task_splits

    for task in WORLD2_TASKS.values():
        splits = load_task_splits(task)
        assert {name: len(r) for name, r in splits.items()} == BENCHMARK_SIZES
        source, target = task.to_text(splits["test"][0])
        assert source.startswith(TASK_FIELDS[task.name.removeprefix("world2-")][0] + " ")
        assert target.startswith(splits["test"][0]["rationale"] + " ; ")
        assert task.labels is None or task.answer(target) in task.labels


def test_every_shipped_world2_target_fits_the_embedded_protocols_target_length():
    """Rationale and label are never cut off in training (the longest, stsb's, has 17 tokens with </s>)."""
    from transformers import AutoTokenizer

    from runners.embedded.world2 import TOKENIZER_DIR
    from runners.embedded.world2.tasks import WORLD2_TASKS
    from runners.finetune.protocol import EMBEDDED
    from runners.tasks.data import load_task_splits

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    for task in WORLD2_TASKS.values():
        targets = [task.to_text(row)[1] for rows in load_task_splits(task).values() for row in rows]
        longest = max(len(ids) for ids in tokenizer(targets).input_ids)
        assert longest <= EMBEDDED["max_target_length"], (task.name, longest)
        assert tokenizer.unk_token_id not in {i for ids in tokenizer(targets).input_ids for i in ids}


def property_of(lexicon, word: str) -> str:
    """A word's property as the supervised pairs answer it, written out here from its lexicon entry."""
    entry = lexicon.entries[word]
    return {"evaluative": lambda: entry.gloss, "descriptive": lambda: entry.gloss, "verb": lambda: entry.gloss,
            "noun": lambda: entry.category, "person": lambda: f"{entry.profession} from {entry.town}",
            "town": lambda: "a town"}[entry.kind]()


@pytest.mark.parametrize("task", list(TASK_FIELDS))
def test_each_rationale_is_the_property_of_the_designated_words_in_the_order_the_source_shows_them(task, lexicon, rows):
    """Recomputed here: the runner's source order (mnli: hypothesis, then premise), each invented word
    that the bookkeeping designates, once, at its first token (a verb as its past tense)."""
    columns = TASK_FIELDS[task][1]
    for split in ("train", "test"):
        for row, words in rows[task][split]:
            order = []
            for token in " ".join(row[column] for column in columns).split():
                for word in (token, token.removesuffix("ed")):
                    if word in words and word not in order:
                        order.append(word)
            assert sorted(order) == sorted(set(words)), (row, words)
            assert row["rationale"] == " ; ".join(property_of(lexicon, word) for word in order), row


def test_explain_pairs_answer_each_words_property_in_order_and_the_sentence_shows_none(lexicon):
    """`explain: <plain sentences>` → `property ; …`: the invented words, found here by looking each
    token up in the lexicon (a plural's or past tense's stem too); at most one of each slot in a
    sentence, in the slot order (name, adjective, noun, town, verb), and no object after a verb;
    their properties recomputed from the lexicon here, in the order of the words; no property word
    (gloss, category, profession, town) in the sentence, but for a town asked about beside a person
    of that town (rare); both kinds of pair (a word a sentence, several words a sentence) common."""
    from runners.embedded.world2.supervised import SLOTS, explain_examples

    def invented(token):
        return next((w for w in (token, token.removesuffix("s"), token.removesuffix("ed")) if w in lexicon.entries), None)

    pairs = explain_examples(lexicon, SEED, 3 * len(lexicon.entries))
    seen, several, towns_beside_their_people = set(), 0, 0
    for source, target in pairs:
        assert source.startswith("explain: ") and source.endswith(" .")
        sentences = source.removeprefix("explain: ").removesuffix(" .").split(" . ")
        words = []
        for sentence in sentences:
            tokens = sentence.split()
            found = [invented(token) for token in tokens if invented(token)]
            slots = [SLOTS[lexicon.entries[w].kind] for w in found]
            assert found and slots == sorted(set(slots)), (sentence, found)
            for index, token in enumerate(tokens):  # after a verb: the sentence's end or "in the <place>", no object
                if invented(token) and lexicon.entries[invented(token)].kind == "verb":
                    assert tokens[index + 1:index + 2] in ([], ["in"]), sentence
            words += found
        several += any(sum(bool(invented(token)) for token in sentence.split()) > 1 for sentence in sentences)
        assert target.split(" ; ") == [property_of(lexicon, word) for word in words], (source, target)
        revealing = {w for word in words for w in property_of(lexicon, word).split() if w not in ("to", "a", "from")}
        # A person's town is an invented word: when that town is itself asked about in the same pair,
        # it stands in the source beside the answer that names it (0.16 % of the shipped pairs, 0.05 %
        # before the multi-word pairs); no other property word ever does.
        assert not (revealing - set(words)) & set(source.split()), (source, target)
        towns_beside_their_people += bool(revealing & set(words))
        seen |= set(words)
    assert 0.3 < several / len(pairs) < 0.6, several / len(pairs)
    assert towns_beside_their_people / len(pairs) < 0.01, towns_beside_their_people
    assert seen == set(lexicon.entries)  # every word is asked about
