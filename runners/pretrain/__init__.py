"""``python -m runners.pretrain``: T5's own pretraining objective (span corruption) on a text corpus.

    cli              the command line (--help)
    invocation       arguments checked, corpus read, model and data built
    corpus           local text files or a `datasets` corpus; supervised pairs
    span_corruption  noise masks, sentinels, (input, target) pairs
    data             packing into chunks, the batch of each step (a pure function of seed and step)
    loop             AdamW + schedule, DDP, held-out loss, resumable checkpoints, the saved model
"""

from .cli import build_parser, main

__all__ = ["build_parser", "main"]
