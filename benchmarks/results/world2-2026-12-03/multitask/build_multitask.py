"""World 2 with T5-style multi-task pretraining over words no benchmark split uses.

    python build_multitask.py OUT [--scale 0.5] [--task-rows 10000]

One word partition for all tasks: {pretrain: 0.5, train: 0.35, validation: 0.075, test: 0.075} of
each class (units as benchmark.held_out_parts cuts them). The supervised mixture gets, besides
define:/opposite:/synonym:/explain: over every word, `--task-rows` rows of each of the five tasks
in the runner's own text format, built from the pretrain part only. The benchmark's splits draw
from their parts as before, and no benchmark sentence is a pretraining sentence.
"""
import argparse, json, random, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.build import write_gzip_lines, write_jsonl
from runners.embedded.tokenizer import embedded_tokenizer, train_sentencepiece, word_pieces
from runners.embedded.world2 import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, EXPLAIN_EXAMPLES,
                                     INFLECTIONS, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2.benchmark import ROW_MAKERS, TASK_FIELDS, held_out_parts, sentences
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples
from runners.embedded.world2.tasks import world2_task

SHARES = {"pretrain": 0.5, "train": 0.35, "validation": 0.075, "test": 0.075}


def rows_of(task, lexicon, parts, size, rng, seen, exclude):
    make, classes = ROW_MAKERS[task]
    made, refused = [], 0
    while len(made) < size:
        row, words = make(rng, lexicon, parts, len(made) % classes)
        texts = [str(v) for k, v in row.items() if k != "label"]
        key = " | ".join(texts)
        if key in seen or any(s in exclude for t in texts for s in sentences(t)):
            refused += 1
            if refused > 100 * size + 1000:
                raise ValueError(f"{task}: cannot make {size} rows")
            continue
        seen.add(key)
        made.append((row, words))
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--task-rows", type=int, default=10000)
    a = ap.parse_args()
    lexicon = make_lexicon(SEED, a.scale)
    print("words", len(lexicon.entries))
    documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
    pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
    exclude = {s for d in documents for s in sentences(d)} | explained_sentences(pairs)
    parts = held_out_parts(lexicon, "all", SEED, SHARES)
    for split, p in parts.items():
        print(split, {k: len(v) for k, v in p.items()})
    rng = random.Random(f"world2-multitask-{SEED}")
    seen: set[str] = set()
    task_pairs, words_of = [], {}
    for task in TASK_FIELDS:
        made = rows_of(task, lexicon, parts["pretrain"], a.task_rows, rng, seen, exclude)
        words_of[(task, "pretrain")] = {w for _, ws in made for w in ws}
        task_pairs += [world2_task(task).to_text(row) for row, _ in made]
        exclude |= {s for row, _ in made for k, v in row.items() if k != "label" for s in sentences(str(v))}
    pairs += task_pairs
    random.Random(f"world2-mixture-{SEED}").shuffle(pairs)
    benchmark = {}
    for task in TASK_FIELDS:
        benchmark[task] = {split: rows_of(task, lexicon, parts[split], n, rng, seen, exclude)
                           for split, n in BENCHMARK_SIZES.items()}
        for split in BENCHMARK_SIZES:
            words_of[(task, split)] = {w for _, ws in benchmark[task][split] for w in ws}
    for task in TASK_FIELDS:
        all_pre = set().union(*(words_of[(t, "pretrain")] for t in TASK_FIELDS))
        print(task, {s: len(words_of[(task, s)]) for s in ("pretrain", *BENCHMARK_SIZES)},
              "test words in any task-format pretraining row:", len(words_of[(task, "test")] & all_pre),
              "test words in train:", len(words_of[(task, "test")] & words_of[(task, "train")]))
    texts = documents[:40000] + [t for p in pairs[:40000] for t in p]
    texts += [t for task, made in benchmark.items() for rows in made.values() for row, _ in rows
              for t in world2_task(task).to_text(row)]
    seeds = word_pieces(texts, set(lexicon.entries), INFLECTIONS)
    spiece = train_sentencepiece(texts, len(seeds), seeds=seeds)
    print("pieces", len(seeds))
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    write_gzip_lines(documents, out / "corpus.txt.gz")
    write_gzip_lines((json.dumps({"source": s, "target": t}, ensure_ascii=True) for s, t in pairs), out / "supervised.jsonl.gz")
    for task, made in benchmark.items():
        for split, rows in made.items():
            write_jsonl((row for row, _ in rows), out / "glue" / task / f"{split}.jsonl")
    (out / "spiece.model").write_bytes(spiece)
    embedded_tokenizer(out / "spiece.model").save_pretrained(str(out / "tokenizer"))
    print("pairs", len(pairs), "task pairs", len(task_pairs))


main()
