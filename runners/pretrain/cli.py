"""``python -m runners.pretrain``: pretrain a T5 with its own objective (span corruption).

    python -m runners.pretrain                                  # rebuild the shipped embedded model (CPU)
    python -m runners.pretrain --corpus texts/ --tokenizer google-t5/t5-small --config d_model=256 num_layers=4
    python -m runners.pretrain --dataset allenai/c4:en --max-documents 100000 --model google-t5/t5-small
    python -m runners.pretrain --resume runs/pretrain-20250101-120000          # continue exactly
    torchrun --nproc_per_node 4 -m runners.pretrain --corpus texts/            # DDP, same global batch

With no corpus option it pretrains the embedded model from the files shipped in
``runners/embedded/`` (corpus, supervised mixture, tokenizer, architecture, schedule), which is
how ``runners/embedded/model/`` was made. Output: ``OUT/model/`` (save_pretrained weights and
tokenizer: ``T5ForConditionalGeneration.from_pretrained`` and ``--model`` of the finetune
runner load it), ``OUT/last/`` (resumable), ``OUT/log.jsonl``, ``OUT/summary.json``.

One process at a time writes into OUT (a second, e.g. a ``--resume`` of a run still training, is
refused); a folder holding an earlier run is continued with ``--resume`` or replaced with
``--overwrite``, never mixed.

Exit codes: 0 done (or stopped by --stop-after-steps), 2 a usage, corpus, model or tokenizer error,
or OUT in use by another process (a message, no traceback), 130 interrupted (the resumable
checkpoint is written first).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .invocation import EXIT_INTERRUPTED, EXIT_USAGE, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runners.pretrain", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[2],
        epilog="examples:\n" + __doc__.split("\n\n")[1])
    data = parser.add_argument_group("corpus (default: the embedded one)")
    data.add_argument("--corpus", nargs="+", metavar="PATH", help="text files or folders: .txt[.gz] (a document a line) "
                                                                  "or .jsonl[.gz] with a 'text' field")
    data.add_argument("--dataset", metavar="NAME[:CONFIG]", help="a `datasets` corpus from the Hub instead")
    data.add_argument("--dataset-split", default="train")
    data.add_argument("--text-column", default="text")
    data.add_argument("--max-documents", type=int, metavar="N", help="use the first N documents")
    data.add_argument("--supervised", nargs="+", metavar="PATH", help="JSON lines {source, target} mixed into every "
                                                                      "step (T5 v1.0 style)")
    model = parser.add_argument_group("model (default: the embedded architecture)")
    model.add_argument("--tokenizer", help="tokenizer name or folder (needs the 100 sentinels <extra_id_*>)")
    model.add_argument("--model", help="continue pretraining this model (name or folder) instead of a new one")
    model.add_argument("--config", nargs="+", metavar="KEY=VALUE", help="T5Config fields of the new model")
    how = parser.add_argument_group("training")
    how.add_argument("--steps", type=int)
    how.add_argument("--batch-size", type=int, help="span-corruption chunks per step, all processes together")
    how.add_argument("--supervised-batch-size", type=int, help="supervised pairs per step")
    how.add_argument("--lr", type=float)
    how.add_argument("--warmup-steps", type=int)
    how.add_argument("--chunk-length", type=int, help="tokens per packed chunk before corruption")
    how.add_argument("--noise-density", type=float, help="share of tokens dropped (T5: 0.15)")
    how.add_argument("--mean-span-length", type=float, help="mean dropped span length (T5: 3)")
    how.add_argument("--held-out", type=float, help="share of documents held out for the eval loss (default 0.02)")
    how.add_argument("--seed", type=int)
    how.add_argument("--precision", choices=("auto", "no", "bf16", "fp16"),
                     help="autocast; bf16 also on CPU (default: the embedded schedule's, else auto)")
    how.add_argument("--cpu", action="store_true", default=None)
    how.add_argument("--threads", type=int, help="intra-op CPU threads")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", help="default runs/pretrain-<date-time>")
    out.add_argument("--resume", metavar="DIR", help="continue the run whose --output-dir was DIR")
    out.add_argument("--overwrite", action="store_true", default=None,
                     help="replace an earlier run in --output-dir (without it such a folder is refused)")
    out.add_argument("--eval-every", type=int)
    out.add_argument("--save-every", type=int)
    out.add_argument("--log-every", type=int)
    out.add_argument("--stop-after-steps", type=int, metavar="K")
    out.add_argument("--no-progress", action="store_true", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .invocation import prepare_run

        run = prepare_run(args)
    except UsageError as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return EXIT_USAGE
    from .invocation import is_main_process
    from .loop import pretrain

    main_process = is_main_process()
    try:
        if main_process:
            print(run.describe(), flush=True)
        try:
            outcome = pretrain(run.model, run.tokenizer, run.data, run.config)
        except (ValueError, FloatingPointError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        return _finish(run, outcome, main_process)
    finally:
        run.release()  # the output folder's lock (held from prepare_run on, by the main process)


def _finish(run, outcome, main_process: bool) -> int:
    """summary.json, the closing line, and the exit code of a pretraining that ran."""
    from runners.output_folder import write_json

    summary = {"completed": outcome.completed, "step": outcome.step, "seconds": round(outcome.seconds, 1),
               "held_out_loss": outcome.eval_history, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not main_process:
        return 0 if outcome.completed or (outcome.stop_reason or "").startswith("--stop-after-steps") else EXIT_INTERRUPTED
    write_json(Path(run.config.output_dir) / "summary.json", summary)
    if not outcome.completed:
        print(f"stopped ({outcome.stop_reason}) at step {outcome.step}. Continue exactly with:\n"
              f"  python -m runners.pretrain --resume {run.config.output_dir}")
        return 0 if outcome.stop_reason and outcome.stop_reason.startswith("--stop-after-steps") else EXIT_INTERRUPTED
    final = outcome.eval_history[-1]["held_out_loss"] if outcome.eval_history else float("nan")
    print(f"done: {outcome.step} steps in {outcome.seconds / 60:.1f} min, held-out loss {final:.4f}; "
          f"model in {outcome.model_dir}")
    return 0
