"""The embedded language: a pretraining corpus, a tokenizer, a pretrained T5 and a GLUE-like
benchmark, all generated here and shipped, so that the project shows adaptation offline.

    language/     the seeded grammar: a world of people and things, facts, reviews, and the
                  documents, supervised pairs and benchmark rows made of them
    build.py      python -m runners.embedded.build [--check]: corpus, supervised mixture,
                  benchmark files and tokenizer, byte for byte
    tokenizer.py  sentencepiece training, and the transformers tokenizer (+ 100 sentinels)
    model/        the pretrained T5 (save_pretrained folder), made by python -m runners.pretrain

See README.md in this folder for what each file holds and how each was made.
"""

from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent
CORPUS_FILE = EMBEDDED_DIR / "corpus.txt.gz"
SUPERVISED_FILE = EMBEDDED_DIR / "supervised.jsonl.gz"
SPIECE_MODEL = EMBEDDED_DIR / "spiece.model"
BENCHMARK_DIR = EMBEDDED_DIR / "glue"
MODEL_DIR = EMBEDDED_DIR / "model"

# What build.py generates (changing any of these changes the shipped files: rebuild, then
# re-run python -m runners.pretrain to remake the model).
SEED = 20211206  # NeurIPS 2021
CORPUS_DOCUMENTS = 300_000
SUPERVISED_EXAMPLES = 200_000
TOKENIZER_SAMPLE = 60_000        # corpus documents and supervised pairs the tokenizer is trained on
SPIECE_VOCAB_SIZE = 420          # every word of the language is one piece
BENCHMARK_SIZES = {"train": 2000, "validation": 500, "test": 500}

# The embedded T5: d_model 384 keeps every bundled recipe applicable (bottleneck 384/32 = 12:
# Compacter's n = 4 and PHM-Adapter's n = 12 divide it and d_model), at ≤ 20 MB in fp32.
T5_ARCHITECTURE = {"d_model": 384, "d_kv": 32, "num_heads": 4, "d_ff": 640, "num_layers": 3,
                   "num_decoder_layers": 3, "feed_forward_proj": "relu", "dropout_rate": 0.0}

# `python -m runners.pretrain` with no arguments: how runners/embedded/model/ was made.
PRETRAINING = {
    "config": [f"{key}={value}" for key, value in T5_ARCHITECTURE.items()],
    "steps": 5000, "batch_size": 32, "supervised_batch_size": 96, "lr": 7e-4, "warmup_steps": 200,
    "chunk_length": 114, "precision": "bf16", "seed": 0, "eval_every": 500, "save_every": 250,
}
