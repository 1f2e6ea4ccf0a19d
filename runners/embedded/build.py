"""Regenerate the shipped embedded language files, byte for byte.

    python -m runners.embedded.build            # rewrite the files next to this script
    python -m runners.embedded.build --check    # rebuild in a temp folder, compare, exit 1 on a difference

What it writes (all seeded; see runners/embedded/README.md):

* ``corpus.txt.gz`` — the pretraining corpus, one document a line (`language.corpus`);
* ``supervised.jsonl.gz`` — the supervised pairs mixed into pretraining (`language.supervised`);
* ``glue/<task>/{train,validation,test}.jsonl`` — the embedded benchmark (`language.benchmark`),
  with no one-sentence input that is also a corpus sentence;
* ``spiece.model`` — the sentencepiece tokenizer, trained on corpus, supervised and benchmark
  texts (pad 0, eos 1, unk 2; the tokenizer adds T5's 100 sentinels ``<extra_id_*>``).

The pretrained model ``model/`` is not made here: ``python -m runners.pretrain`` makes it from
these files (training is not bit-reproducible across machines; it reproduces the metrics).
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import io
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make `runners` importable
    sys.path.insert(0, str(HERE.parents[1]))

from runners.embedded import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, SEED, SPIECE_VOCAB_SIZE,  # noqa: E402
                              SUPERVISED_EXAMPLES, TOKENIZER_SAMPLE)
from runners.embedded.language.benchmark import TASK_FIELDS, make_rows, sentences  # noqa: E402
from runners.embedded.language.corpus import make_corpus  # noqa: E402
from runners.embedded.language.supervised import supervised_examples  # noqa: E402
from runners.embedded.tokenizer import train_sentencepiece  # noqa: E402


def write_gzip_lines(lines, path: Path) -> None:
    """Lines to a .gz file that is the same bytes on every machine (no time stamp, no file name)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as file:
        for line in lines:
            file.write((line + "\n").encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def write_jsonl(rows, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=True) + "\n")


def benchmark_texts(task: str, row: dict) -> str:
    """The source text the finetune runner will build (so the tokenizer learns its pieces too)."""
    prefix, columns = TASK_FIELDS[task]
    return " ".join([prefix] + [f"{column}: {row[column]}" for column in columns])


def build(out_dir: Path, progress=print) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    progress(f"corpus: {CORPUS_DOCUMENTS:,} documents")
    documents = make_corpus(SEED, CORPUS_DOCUMENTS)
    write_gzip_lines(documents, out_dir / "corpus.txt.gz")
    written.append(out_dir / "corpus.txt.gz")
    progress(f"supervised mixture: {SUPERVISED_EXAMPLES:,} pairs")
    pairs = supervised_examples(SEED, SUPERVISED_EXAMPLES)
    write_gzip_lines((json.dumps({"source": s, "target": t}, ensure_ascii=True) for s, t in pairs),
                     out_dir / "supervised.jsonl.gz")
    written.append(out_dir / "supervised.jsonl.gz")
    corpus_sentences = {s for document in documents for s in sentences(document)}
    benchmark = {}
    for task in TASK_FIELDS:
        rows = make_rows(task, SEED, sum(BENCHMARK_SIZES.values()), exclude=corpus_sentences)
        start = 0
        for split, size in BENCHMARK_SIZES.items():
            path = out_dir / "glue" / task / f"{split}.jsonl"
            write_jsonl(rows[start:start + size], path)
            written.append(path)
            start += size
        benchmark[task] = rows
    progress(f"benchmark: {', '.join(TASK_FIELDS)} ({' / '.join(map(str, BENCHMARK_SIZES.values()))} rows each)")
    texts = documents[:TOKENIZER_SAMPLE] + [text for pair in pairs[:TOKENIZER_SAMPLE] for text in pair]
    texts += [benchmark_texts(task, row) for task, rows in benchmark.items() for row in rows]
    (out_dir / "spiece.model").write_bytes(train_sentencepiece(texts, SPIECE_VOCAB_SIZE))
    written.append(out_dir / "spiece.model")
    progress(f"tokenizer: {SPIECE_VOCAB_SIZE} pieces + 100 sentinels")
    return written


def check(shipped_dir: Path = HERE) -> list[str]:
    """Paths (relative) of shipped files that differ from a fresh build (empty when all match)."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = build(Path(scratch), progress=lambda message: None)
        return [str(path.relative_to(scratch)) for path in fresh
                if not (shipped_dir / path.relative_to(scratch)).is_file()
                or not filecmp.cmp(path, shipped_dir / path.relative_to(scratch), shallow=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.embedded.build", description=__doc__.split("\n\n")[0])
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
    sys.exit(main())
