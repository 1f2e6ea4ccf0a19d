"""Regenerate the shipped demo task and tokenizer, byte for byte.

    python -m runners.embedded.build            # rewrite the files next to this script
    python -m runners.embedded.build --check    # rebuild in a temp folder, compare, exit 1 on a difference

The task is synthetic review sentiment ("negative"/"positive"), assembled from word lists so that
no single token gives the label away:

* polarity comes from adjectives ("superb", "flimsy") or opinion verbs ("adored", "regretted");
* a negator before the word flips it (a quarter of the clauses: "was not very good",
  "i never liked the lamp");
* in "X but Y", "although X , Y" and "Y , even though X" the main clause Y decides, and X says
  the opposite; "X and Y" clauses agree; neutral clauses ("the tent was red") and phrases
  ("last week") are distractors.

A bag-of-words logistic regression reaches about 72 % on validation+test (bigrams: 80 %), so
the label is learnable but not a lookup of one word.

Every split is exactly balanced and no sentence occurs twice across the three files. The
sentencepiece unigram model is trained on the training split's T5 texts (source and target),
single-threaded, with identity normalisation (the text is lower-case ASCII), pad 0 / eos 1 / unk 2
and no bos, the ids T5 expects.

>>> rows = make_rows(seed=0, count=4)
>>> [row["label"] for row in rows]
[0, 1, 0, 1]
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import os
import random
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20211206  # NeurIPS 2021
SPLIT_SIZES = {"train": 2000, "validation": 200, "test": 200}
VOCAB_SIZE = 300
LABELS = ("negative", "positive")

ITEMS = (
    "movie film camera phone laptop hotel restaurant soup pizza book album game jacket chair "
    "blender headset concert show car bike printer lamp sofa watch app tent kettle novel series "
    "podcast backpack mattress toaster tablet speaker vacuum drill helmet umbrella stroller "
    "monitor router guitar museum cafe bakery salad burger sandwich sneakers scarf puzzle "
    "projector heater fridge microwave suitcase notebook mouse charger airline resort "
    "theater musical documentary cartoon thriller sitcom noodles pancake smoothie espresso "
    "sweater blanket candle mirror curtain wallet bracelet camping trolley ferry garden gallery "
    "festival lecture workshop seminar opera ballet circus aquarium stadium cinema library"
).split()
PARTS = (
    "battery screen service staff plot ending price sound design delivery food room music "
    "acting keyboard fabric manual lens packaging interface soundtrack dialogue menu dessert "
    "breakfast checkout warranty zipper handle cushion display remote wifi camerawork "
    "lighting pillow shower lobby pacing narrator costume seat coffee portion tire brake"
).split()
DETERMINERS = ("the", "this", "my", "our", "that")
LINKING_VERBS = ("was", "is", "seemed", "felt", "looked", "sounded", "proved")
POSITIVE_ADJECTIVES = "good great excellent wonderful superb lovely fantastic brilliant pleasant reliable".split()
NEGATIVE_ADJECTIVES = "bad awful terrible poor dull boring horrible disappointing flimsy useless".split()
NEUTRAL_ADJECTIVES = (
    "new red large small heavy blue square wooden round grey green tall narrow metallic "
    "plastic yellow purple compact orange silver striped"
).split()
INTENSIFIERS = ("really", "very", "quite", "rather", "truly", "pretty", "so", "extremely", "incredibly")
NEGATORS = ("not", "never", "hardly", "far from")
NEGATORS_TAKING_INTENSIFIERS = ("not", "never")  # "not very good" reads well, "hardly very good" not
# Opinion verbs as (past tense, base form).
POSITIVE_VERBS = (("loved", "love"), ("liked", "like"), ("enjoyed", "enjoy"), ("adored", "adore"))
NEGATIVE_VERBS = (("hated", "hate"), ("disliked", "dislike"), ("loathed", "loathe"), ("regretted", "regret"))
PHRASES = (
    "last week", "on monday", "after the update", "for my brother", "during the trip",
    "at the mall", "in the evening", "to be honest", "as a gift", "this summer",
    "yesterday", "on the weekend", "for the kids", "since january", "with my friends",
    "at first glance", "in my experience",
)
# Sentence shapes as (name, weight); see make_sentence.
SHAPES = (("single", 45), ("and", 20), ("neutral", 15), ("but", 10), ("although", 5), ("even_though", 5))
NEGATION_RATE = 0.25  # share of polar clauses whose polarity word is negated


def adjective_clause(rng: random.Random, polarity: int) -> str:
    """ "the camera was not very good" with the given overall polarity (+1 / -1)."""
    negated = rng.random() < NEGATION_RATE
    word_polarity = -polarity if negated else polarity
    adjective = rng.choice(POSITIVE_ADJECTIVES if word_polarity > 0 else NEGATIVE_ADJECTIVES)
    subject = rng.choice(ITEMS + PARTS)
    words = [rng.choice(DETERMINERS), subject, rng.choice(LINKING_VERBS)]
    negator = rng.choice(NEGATORS) if negated else ""
    if negator:
        words.append(negator)
    if (not negator or negator in NEGATORS_TAKING_INTENSIFIERS) and rng.random() < 0.4:
        words.append(rng.choice(INTENSIFIERS))
    words.append(adjective)
    return " ".join(words)


def opinion_clause(rng: random.Random, polarity: int) -> str:
    """ "i adored the lamp" / "i did not like the lamp" with the given overall polarity."""
    negated = rng.random() < NEGATION_RATE
    verbs = POSITIVE_VERBS if (polarity > 0) != negated else NEGATIVE_VERBS
    past, base = rng.choice(verbs)
    if negated:
        verb = rng.choice((f"did not {base}", f"never {past}", f"really did not {base}"))
    else:
        verb = rng.choice((past, f"really {past}", past))
    return f"i {verb} {rng.choice(DETERMINERS)} {rng.choice(ITEMS)}"


def polar_clause(rng: random.Random, polarity: int) -> str:
    make = adjective_clause if rng.random() < 0.7 else opinion_clause
    return make(rng, polarity)


def neutral_clause(rng: random.Random) -> str:
    determiner, subject = rng.choice(DETERMINERS), rng.choice(ITEMS + PARTS)
    return f"{determiner} {subject} {rng.choice(LINKING_VERBS)} {rng.choice(NEUTRAL_ADJECTIVES)}"


def make_sentence(rng: random.Random, label: int) -> str:
    """One review sentence whose sentiment is ``LABELS[label]``."""
    polarity = 1 if label == 1 else -1
    shape = rng.choices([name for name, _ in SHAPES], weights=[weight for _, weight in SHAPES])[0]
    if shape == "single":
        sentence = polar_clause(rng, polarity)
    elif shape == "and":
        sentence = f"{polar_clause(rng, polarity)} and {polar_clause(rng, polarity)}"
    elif shape == "neutral":
        clauses = [polar_clause(rng, polarity), neutral_clause(rng)]
        rng.shuffle(clauses)
        sentence = " and ".join(clauses)
    elif shape == "but":
        sentence = f"{polar_clause(rng, -polarity)} but {polar_clause(rng, polarity)}"
    elif shape == "although":
        sentence = f"although {polar_clause(rng, -polarity)} , {polar_clause(rng, polarity)}"
    else:
        sentence = f"{polar_clause(rng, polarity)} , even though {polar_clause(rng, -polarity)}"
    if rng.random() < 0.3:
        phrase = rng.choice(PHRASES)
        sentence = f"{phrase} , {sentence}" if rng.random() < 0.5 else f"{sentence} {phrase}"
    return sentence + " ."


def make_rows(seed: int = SEED, count: int = sum(SPLIT_SIZES.values())) -> list[dict]:
    """``count`` distinct rows ``{"sentence": str, "label": 0|1}``, labels alternating 0, 1, 0, ..."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows = []
    while len(rows) < count:
        label = len(rows) % 2
        sentence = make_sentence(rng, label)
        if sentence not in seen:
            seen.add(sentence)
            rows.append({"sentence": sentence, "label": label})
    return rows


def make_splits(seed: int = SEED) -> dict[str, list[dict]]:
    """Balanced, disjoint train/validation/test splits of ``SPLIT_SIZES`` rows."""
    rows = make_rows(seed)
    splits, start = {}, 0
    for split, size in SPLIT_SIZES.items():
        part = rows[start : start + size]  # an even-length slice of alternating labels: balanced
        random.Random(f"{seed}-{split}").shuffle(part)
        splits[split] = part
        start += size
    return splits


def write_jsonl(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=True) + "\n")


def seed_pieces(texts: list[str], max_length: int = 16) -> list[tuple[str, int]]:
    """Every substring (2..``max_length`` chars) of every ``▁word``, with its corpus frequency.

    sentencepiece 0.2's suffix-array seed search misses most whole words of a corpus this small
    and repetitive (a word becomes a candidate only if it is also the prefix of another word), so
    the trained model would spell "was" as "wa" + "s". Handing the trainer this seed list, the
    candidates the classic unigram recipe starts from, gives a normal word-level vocabulary.

    >>> seed_pieces(["ab ab"])
    [('ab', 2), ('▁a', 2), ('▁ab', 2)]
    """
    word_counts: dict[str, int] = {}
    for text in texts:
        for word in text.split():
            word_counts["▁" + word] = word_counts.get("▁" + word, 0) + 1
    piece_counts: dict[str, int] = {}
    for word, count in word_counts.items():
        for start in range(len(word)):
            for end in range(start + 2, min(len(word), start + max_length) + 1):
                piece = word[start:end]
                piece_counts[piece] = piece_counts.get(piece, 0) + count
    return sorted(piece_counts.items())


def train_sentencepiece(texts: list[str], vocab_size: int = VOCAB_SIZE) -> bytes:
    """A serialized unigram sentencepiece model with T5's special ids."""
    import sentencepiece

    model = io.BytesIO()
    previous_dir = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        # The trainer records the seed file's path in the model: a fixed relative name keeps
        # the model bytes identical from build to build.
        os.chdir(scratch)
        try:
            Path("seed_pieces.tsv").write_text(
                "".join(f"{piece}\t{count}\n" for piece, count in seed_pieces(texts)), encoding="utf-8"
            )
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                model_type="unigram",
                vocab_size=vocab_size,
                pad_id=0,
                eos_id=1,
                unk_id=2,
                bos_id=-1,
                character_coverage=1.0,
                normalization_rule_name="identity",
                seed_sentencepieces_file="seed_pieces.tsv",
                num_threads=1,
                minloglevel=2,
            )
        finally:
            os.chdir(previous_dir)
    return model.getvalue()


def build(out_dir: Path) -> list[Path]:
    """Write ``train/validation/test.jsonl`` and ``spiece.model`` into ``out_dir``."""
    from runners.tasks import get_task  # the tokenizer learns the exact texts T5 will see

    out_dir.mkdir(parents=True, exist_ok=True)
    splits = make_splits()
    written = []
    for split, rows in splits.items():
        path = out_dir / f"{split}.jsonl"
        write_jsonl(rows, path)
        written.append(path)
    task = get_task("embedded")
    texts = [text for row in splits["train"] for text in task.to_text(row)]
    model_path = out_dir / "spiece.model"
    model_path.write_bytes(train_sentencepiece(texts))
    written.append(model_path)
    return written


def check(shipped_dir: Path = HERE) -> list[str]:
    """Names of shipped files that differ from a fresh build (empty when all match)."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = build(Path(scratch))
        return [
            path.name
            for path in fresh
            if not (shipped_dir / path.name).is_file() or not filecmp.cmp(path, shipped_dir / path.name, shallow=False)
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the shipped files")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: next to this script)")
    args = parser.parse_args(argv)
    if args.check:
        different = check(args.out)
        print("all files match" if not different else "differ: " + ", ".join(different))
        return 1 if different else 0
    for path in build(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: make `runners` importable
        sys.path.insert(0, str(HERE.parents[1]))
    sys.exit(main())
