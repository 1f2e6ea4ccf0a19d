"""How the cola runs of this folder answer, by the verb's transitivity and whether the sentence has an object.

    python benchmarks/results/world2-2026-12-03/knowledge/cola_answers.py RUN_DIR [RUN_DIR ...]
"""
import collections, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import BENCHMARK_DIR, LEXICON_SCALE, SEED
from runners.embedded.world2.lexicon import make_lexicon

lexicon = make_lexicon(SEED, LEXICON_SCALE)


def verb(sentence: str) -> str:
    word = sentence.split()[1]
    return word[:-2] if word.endswith("ed") and word[:-2] in lexicon.entries else word


def has_object(sentence: str) -> bool:
    return " the " in sentence.split(" in the ")[0]


rows = [json.loads(line) for line in open(BENCHMARK_DIR / "cola" / "test.jsonl")]
for split in ("train", "validation", "test"):
    glosses = {lexicon.entries[verb(json.loads(l)["sentence"])].gloss for l in open(BENCHMARK_DIR / "cola" / f"{split}.jsonl")}
    print(f"{split}: verbs of {len(glosses)} glosses: {', '.join(sorted(glosses))}")
for run in sys.argv[1:]:
    predictions = [json.loads(line)["prediction"] for line in open(Path(run) / "test_predictions.jsonl")]
    counts = collections.defaultdict(lambda: [0, 0])
    for row, prediction in zip(rows, predictions):
        key = (lexicon.entries[verb(row["sentence"])].transitive, has_object(row["sentence"]))
        counts[key][0] += 1
        counts[key][1] += prediction == "yes"
    print(run)
    for (transitive, obj), (n, yes) in sorted(counts.items()):
        print(f"  {'transitive' if transitive else 'intransitive'} verb, {'an object' if obj else 'no object'}: "
              f"{n} rows, 'yes' {100 * yes / n:.0f} %")
