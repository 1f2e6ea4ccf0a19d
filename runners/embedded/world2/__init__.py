"""World 2 of the embedded language: tasks that need what only the pretraining corpus teaches.

World 1 (``runners/embedded/language``) has a small lexicon that every task's training split
covers. World 2 invents thousands of words (``lexicon``) whose properties — the polarity of an
evaluative word, the meaning and opposites of a descriptive one, whether a verb takes an object, a
noun's category and synonym, a person's profession and town — are stated or implied only in its
corpus (``corpus``, ``supervised``). Its five GLUE-shaped tasks (``benchmark``) draw the words of
their validation and test examples from parts of the lexicon that their training split never
uses, so only pretraining can teach them.

Its pretrained T5 is ``model/`` (``MODEL_DIR``). The tasks have the model write a rationale before
the label (what the corpus says of the deciding words); full fine-tuning from the checkpoint beats
random init on all five tasks at one seed, compacter++ its twin on world2-sst2 and world2-cola, so
world 2 lives beside world 1: its files are under this folder, its tasks
are ``world2-sst2`` … (in the runners' registry; a run of them without ``--model`` trains
``model/``), the runner's main job is compacter++ on ``world2-sst2``, and world 1 keeps the other
embedded tasks (README.md says where it stands).

    python -m runners.embedded.world2.build [--check]    # corpus, mixture, benchmark, tokenizer
    python -m runners.embedded.world2.baselines          # bag-of-words baselines per task
"""

from pathlib import Path

WORLD2_DIR = Path(__file__).resolve().parent
CORPUS_FILE = WORLD2_DIR / "corpus.txt.gz"
SUPERVISED_FILE = WORLD2_DIR / "supervised.jsonl.gz"
SPIECE_MODEL = WORLD2_DIR / "spiece.model"
TOKENIZER_DIR = WORLD2_DIR / "tokenizer"     # save_pretrained folder: --tokenizer of python -m runners.pretrain
BENCHMARK_DIR = WORLD2_DIR / "glue"
MODEL_DIR = WORLD2_DIR / "model"         # the pretrained T5 (save_pretrained folder, with the tokenizer)

SEED = 20211206
# lexicon.COUNTS times this: 990 words. The full lexicon (1.0: 3,960 words, 4,377 ids) is over both budgets of
# issue 29: 6.1 M parameters (24.4 MB) at the shapes below, and a quarter of the exposures per word in the hour.
LEXICON_SCALE = 0.25
DEFINITIONS_PER_WORD = 6             # documents that state each word's property (at least)
CORPUS_DOCUMENTS = 60_000            # definitions first, then stories of the words in use
SUPERVISED_EXAMPLES = 40_000           # define: / opposite: / synonym: pairs
EXPLAIN_EXAMPLES = 60_000              # explain: pairs (words in a plain sentence)
# The tokenizer: every word one piece, an inflected invented word its stem's piece and the suffix's
# (tokenizer.word_pieces), so how a word is cut says nothing the corpus teaches.
INFLECTIONS = ("ed", "s")
BENCHMARK_SIZES = {"train": 2000, "validation": 500, "test": 500}
HELD_OUT_SHARE = {"train": 0.7, "validation": 0.15, "test": 0.15}   # of each word class, per task

# The embedded T5 for world 2 (item 2 of issue 29): world 1's shapes with d_ff 576 so that the
# larger vocabulary (1,406 ids) still fits in 20 MB: 4,970,368 parameters, 19.9 MB of fp32.
T5_ARCHITECTURE = {"d_model": 384, "d_kv": 32, "num_heads": 4, "d_ff": 576, "num_layers": 3,
                   "num_decoder_layers": 3, "feed_forward_proj": "relu", "dropout_rate": 0.0}
# Its pretraining (model/ is this schedule's run, 2026-12-03): 25.8 minutes with 2 threads alone on 2 cores (1.0 s a step in
# fp32; 1.4 s with one thread; bf16 autocast took 2.3 times as long a step on this CPU); see README.md.
#   python -m runners.pretrain --corpus CORPUS_FILE --supervised SUPERVISED_FILE --tokenizer TOKENIZER_DIR \
#       --config <T5_ARCHITECTURE as key=value> --<key> <value> for each of PRETRAINING
PRETRAINING = {"steps": 1500, "batch_size": 16, "supervised_batch_size": 96, "lr": 7e-4, "warmup_steps": 100,
               "chunk_length": 114, "precision": "no", "seed": 0, "eval_every": 500, "save_every": 100}
