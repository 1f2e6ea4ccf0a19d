"""Regenerate world 2's shipped files, byte for byte.

    python -m runners.embedded.world2.build            # rewrite the files next to this script
    python -m runners.embedded.world2.build --check    # rebuild in a temp folder, compare, exit 1 on a difference
    python -m runners.embedded.world2.build --out DIR --scale 0.05 --documents 2000   # a small world elsewhere

What it writes (all seeded; see runners/embedded/world2/README.md):

* ``corpus.txt.gz`` — the pretraining corpus, one document a line (`corpus`);
* ``supervised.jsonl.gz`` — the supervised pairs mixed into pretraining (`supervised`);
* ``glue/<task>/{train,validation,test}.jsonl`` — the benchmark (`benchmark`), no sentence of it a
  corpus sentence;
* ``spiece.model`` and ``tokenizer/`` — the sentencepiece tokenizer and its transformers folder
  (100 sentinels added), the ``--tokenizer`` of ``python -m runners.pretrain``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make `runners` importable
    sys.path.insert(0, str(HERE.parents[2]))

from runners.embedded.build import write_gzip_lines, write_jsonl  # noqa: E402
from runners.embedded.tokenizer import embedded_tokenizer, train_sentencepiece, word_pieces  # noqa: E402
from runners.embedded.world2 import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, EXPLAIN_EXAMPLES,  # noqa: E402
                                     HELD_OUT_SHARE, INFLECTIONS, LEXICON_SCALE, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2.benchmark import TASK_FIELDS, make_rows, sentences  # noqa: E402
from runners.embedded.world2.corpus import make_corpus  # noqa: E402
from runners.embedded.world2.lexicon import make_lexicon  # noqa: E402
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples  # noqa: E402

TOKENIZER_SAMPLE = 40_000  # corpus documents and supervised pairs the tokenizer is trained on


@dataclass(frozen=True)
class Sizes:
    """How big a world to build (the defaults are the shipped one; tests build small ones)."""

    scale: float = LEXICON_SCALE
    documents: int = CORPUS_DOCUMENTS
    definitions: int = DEFINITIONS_PER_WORD
    supervised: int = SUPERVISED_EXAMPLES
    explain: int = EXPLAIN_EXAMPLES
    benchmark: tuple[tuple[str, int], ...] = tuple(BENCHMARK_SIZES.items())


def task_texts(task: str, row: dict) -> tuple[str, str]:
    """The source and the label's text the finetune runner builds from a row (the tokenizer learns their
    pieces too; a row's rationale is not among them: its words are the corpus's, and the shipped
    tokenizer was made before the tasks wrote one)."""
    from runners.embedded.world2.tasks import world2_task

    runner_task = world2_task(task)
    return runner_task.format_source(runner_task, row), runner_task.format_target(runner_task, row)


def build(out_dir: Path, sizes: Sizes = Sizes(), seed: int = SEED, progress=print) -> list[Path]:
    """Make everything in memory first, then write it: an error (sizes too small) leaves nothing behind."""
    lexicon = make_lexicon(seed, sizes.scale)
    progress(f"lexicon: {len(lexicon.entries):,} words; corpus: {sizes.documents:,} documents")
    documents = make_corpus(lexicon, seed, sizes.documents, sizes.definitions)
    pairs = supervised_examples(lexicon, seed, sizes.supervised) + explain_examples(lexicon, seed, sizes.explain)
    random.Random(f"world2-mixture-{seed}").shuffle(pairs)  # the two kinds of pair mixed in every step
    pretraining_sentences = {s for document in documents for s in sentences(document)} | explained_sentences(pairs)
    benchmark = {task: make_rows(task, lexicon, seed, dict(sizes.benchmark), exclude=pretraining_sentences,
                                 shares=HELD_OUT_SHARE) for task in TASK_FIELDS}
    progress(f"benchmark: {', '.join(TASK_FIELDS)} ({' / '.join(str(n) for _, n in sizes.benchmark)} rows each)")
    texts = documents[:TOKENIZER_SAMPLE] + [text for pair in pairs[:TOKENIZER_SAMPLE] for text in pair]
    texts += [text for task, made in benchmark.items() for rows in made.values() for row, _ in rows
              for text in task_texts(task, row)]
    seeds = word_pieces(texts, set(lexicon.entries), INFLECTIONS)
    spiece = train_sentencepiece(texts, len(seeds), seeds=seeds)
    progress(f"tokenizer: {len(seeds):,} pieces (a word each) + 100 sentinels")

    out_dir.mkdir(parents=True, exist_ok=True)
    write_gzip_lines(documents, out_dir / "corpus.txt.gz")
    write_gzip_lines((json.dumps({"source": s, "target": t}, ensure_ascii=True) for s, t in pairs),
                     out_dir / "supervised.jsonl.gz")
    written = [out_dir / "corpus.txt.gz", out_dir / "supervised.jsonl.gz"]
    for task, made in benchmark.items():
        for split, rows in made.items():
            written.append(out_dir / "glue" / task / f"{split}.jsonl")
            write_jsonl((row for row, _ in rows), written[-1])
    (out_dir / "spiece.model").write_bytes(spiece)
    embedded_tokenizer(out_dir / "spiece.model").save_pretrained(str(out_dir / "tokenizer"))
    return written + [out_dir / "spiece.model", *sorted((out_dir / "tokenizer").iterdir())]


def check(shipped_dir: Path = HERE, sizes: Sizes = Sizes(), seed: int = SEED) -> list[str]:
    """Paths (relative) of shipped files that differ from a fresh build (empty when all match)."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = build(Path(scratch), sizes, seed, progress=lambda message: None)
        return [str(path.relative_to(scratch)) for path in fresh
                if not (shipped_dir / path.relative_to(scratch)).is_file()
                or not filecmp.cmp(path, shipped_dir / path.relative_to(scratch), shallow=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.embedded.world2.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the files in --out")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: next to this script)")
    parser.add_argument("--scale", type=float, default=LEXICON_SCALE, help="lexicon size, times lexicon.COUNTS")
    parser.add_argument("--documents", type=int, default=CORPUS_DOCUMENTS, help="corpus documents")
    args = parser.parse_args(argv)
    sizes = Sizes(scale=args.scale, documents=args.documents)
    if not 0 < args.scale <= 10:
        parser.exit(2, f"error: --scale must be in (0, 10], got {args.scale}\n")
    try:
        if args.check:
            different = check(args.out, sizes)
            print("all files match" if not different else "differ: " + ", ".join(different))
            return 1 if different else 0
        for path in build(args.out, sizes):
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    except ValueError as error:  # e.g. a corpus too small for the definitions it must hold
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
