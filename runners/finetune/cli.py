"""Fine-tune a T5 with a recipe on a task, the paper's way; report test scores of the best epoch.

    python -m runners.finetune                          # compacter++ adapts world 2's pretrained T5 on world2-sst2, CPU
    python -m runners.finetune --random-init            # the same run from random weights: what pretraining is worth
    python -m runners.finetune --task embedded-glue --recipe all --seeds 1 2 3 --jobs 2   # miniature Table 1
    python -m runners.finetune --model t5-base --task rte --recipe compacter++ --data-dir data/rte
    python -m runners.finetune --task rte,cola --recipe compacter++,adapter --seeds 1 2 3
    python -m runners.finetune --task rte,mrpc,cola --recipe compacter++ --model t5-base --one-base   # one base, 3 adapters
    python -m runners.finetune --low-resource 500 --task mnli --model t5-base      # 5 seeds, 200 epochs
    torchrun --nproc_per_node 4 -m runners.finetune --model t5-base --task mnli   # DDP, same global batch
    python -m runners.finetune --resume runs/20250101-120000                      # continue exactly
    python -m runners.finetune --train-file train.csv --validation-file dev.csv --text-column review --label-column sentiment
    python -m runners.finetune --model t5-base --task rte --recipe compacter --sweep lr=3e-4,3e-3 options.n=4,8,12
    python -m runners.finetune --model t5-base --task rte --recipe compacter --set options.n=8 --train-output-layer
    python -m runners.finetune --task embedded-glue --recipe compacter++,peft-lora --seeds 1 2 3   # PEFT's LoRA beside it

Every distinct run (task × recipe × seed) gets a folder ``OUT/<task>/<recipe>/seed-<seed>/``
holding ``log.jsonl``, ``best/`` (adapter of the best validation epoch), ``last/`` (resumable
checkpoint) and ``result.json``; ``OUT/results.md`` and ``OUT/results.csv`` hold the table of
the invocation (mean ± std over seeds), which is also printed at the end. A recipe's name is
sanitised for the folder; two different recipes of one name get ``<name>-<hash>``; repeats in
--task, --recipe or --seeds run once (with a note). One process at a time trains into OUT.

A run whose loss or gradient norm becomes NaN/inf (a grid's highest rate, say) is listed as
diverged under the table, with diverged.json in its folder; the other runs go on.

Exit codes: 0 done (or stopped by --stop-after-steps), 2 a usage, data, recipe or checkpoint
error, OUT in use by another process, or a run that diverged (one line, no traceback; after the
other runs and the tables), 3 out of GPU memory, 130 interrupted (the resumable checkpoint is
written first when training).
"""

from __future__ import annotations

import argparse
import sys

from runners.command import interrupted

# Light imports only: --help and every usage error come back in well under a second. torch,
# transformers, datasets and the engine are imported in `run`, once the options are known good.
from .library_baselines import DEFAULT_LORA_RANK, INSTALL_HINT, PEFT_LORA
from .invocation import (DEFAULT_RECIPE, DEFAULT_TASK, EXIT_OUT_OF_MEMORY, EXIT_USAGE, Settings, UsageError, is_main_process,
                         resolve_settings, say)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runners.finetune",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Fine-tune a T5 model with a surgery recipe (Compacter, adapters, BitFit, ...) on a GLUE/SuperGLUE task\n"
            "or an embedded task, following the Compacter paper's protocol; report the test score of the\n"
            "checkpoint with the best validation score.\n\n"
            f"With no arguments: world 2's pretrained T5 (runners/embedded/world2/model) adapted with\n"
            f"{DEFAULT_RECIPE!r} on its sentiment task ({DEFAULT_TASK}), whose test words only its pretraining\n"
            "corpus explains; offline, on CPU. --random-init gives the same run on the same architecture with\n"
            "random weights: what pretraining is worth. World 1's five tasks (group embedded-glue, the T5 in\n"
            "runners/embedded/model) with --recipe all and several seeds give a miniature of the paper's Table 1."),
        epilog="examples:\n" + __doc__.split("\n\n")[1] + "\n\n" + "\n\n".join(__doc__.split("\n\n")[2:]),
    )
    add_what_to_train(parser)
    add_own_data(parser)
    add_training(parser)
    add_evaluation_and_output(parser)
    return parser


def add_what_to_train(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to train")
    what.add_argument("--task", help="task name or group (embedded-glue, world2-glue), or several comma-separated "
                                     f"(default: {DEFAULT_TASK})")
    what.add_argument("--recipe", help="bundled recipe name or YAML path, or several comma-separated, or 'all' "
                                       f"(every bundled recipe; default: {DEFAULT_RECIPE})")
    what.add_argument("--lora-rank", type=int, metavar="R",
                      help=f"the rank of --recipe {PEFT_LORA}: Hugging Face PEFT's own LoRA, trained side by side with the "
                           "recipes (PEFT's default targets, on T5 every attention's q and v; alpha 2·R; default "
                           f"{DEFAULT_LORA_RANK}: 110,592 parameters on T5-base, Compacter++ 104,704). Needs PEFT: "
                           f"{INSTALL_HINT}")
    what.add_argument("--model", help="Hugging Face model name or local folder (default: the shipped pretrained T5 "
                                      "the tasks are written for: runners/embedded/world2/model for world2-*, "
                                      "else runners/embedded/model)")
    what.add_argument("--random-init", action="store_true", default=None,
                      help="the model's architecture with weights drawn at random (the no-pretraining baseline)")
    what.add_argument("--init-config", nargs="+", metavar="KEY=VALUE",
                      help="T5Config fields of the random-init model, e.g. d_model=64 num_layers=1")
    what.add_argument("--data-dir", help="folder with the task's split files (train + validation; csv, tsv, json, "
                                         "jsonl or parquet with the original column names); default: the Hub")
    what.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                      help="a recipe key for every run, as written in the recipe file: options.n=8, sites=[after_ffn], "
                           "layers.encoder.skip_first=5, train=[layer_norms,output_layer]; or lr=3e-3. Checked like "
                           "the file (the same errors)")
    what.add_argument("--sweep", nargs="+", action="extend", metavar="KEY=V1,V2",
                      help="train every combination of these values (recipe keys as for --set, or lr), e.g. "
                           "--sweep lr=3e-4,3e-3 options.n=4,8,12; per task and recipe the setting with the best "
                           "validation score is chosen and its test score reported; the whole grid goes in "
                           "results.md/csv")
    what.add_argument("--paper-search", action="store_true", default=None,
                      help="sweep the paper's grid for each recipe: lr 3e-5,3e-4,3e-3,3e-2,3e-1; adapters' "
                           "options.bottleneck 96,48,24 (T5-small 16,32,64); PHM/Compacter options.n 4,8,12 "
                           "(T5-small 4,8,16). Keys given by --sweep, --set or --lr replace the paper's")
    what.add_argument("--one-base", action="store_true", default=None,
                      help="train every --task into ONE base model, one named adapter per task (named after it), "
                           "each trained with the others frozen; then score every adapter on the shared base, switched "
                           "on alone and in mixed batches, in a table saying which adapter scored what "
                           "(runners.finetune.multitask)")
    what.add_argument("--train-output-layer", action="store_true", default=None,
                      help="the paper's Table 7 variant of every recipe: also train the output layer (with a tied "
                           "embedding, T5 v1.0, that is the embedding matrix), with the learning rates of Table 5")


def add_own_data(parser: argparse.ArgumentParser) -> None:
    own = parser.add_argument_group("your own data (instead of --task's registry; --task NAME names it, default 'own')")
    own.add_argument("--train-file", help="training rows: csv, tsv, json, jsonl or parquet")
    own.add_argument("--validation-file", help="validation rows (without --test-file: the test set, and a "
                                               "validation set is drawn from the training file)")
    own.add_argument("--test-file", help="test rows, scored and written to test_predictions.jsonl")
    own.add_argument("--text-column", metavar="A[,B]", help="one or two columns written into the model's input")
    own.add_argument("--label-column", metavar="L", help="the column the model learns to write")
    own.add_argument("--task-type", choices=("classification", "regression", "generation"),
                     help="default: regression for numeric labels with fractions, else classification")


def add_training(parser: argparse.ArgumentParser) -> None:
    how = parser.add_argument_group("training (defaults: the paper's protocol; runners.finetune.protocol.EMBEDDED for the embedded tasks)")
    how.add_argument("--epochs", type=int)
    how.add_argument("--batch-size", type=int, help="GLOBAL batch: examples per optimizer step over all processes "
                                                    "and accumulation steps (paper: 100 GLUE, 32 SuperGLUE, "
                                                    "16 ReCoRD, 40 low-resource)")
    how.add_argument("--grad-accum", type=int, help="micro-batches per process and step (default 1); the global "
                                                    "batch stays --batch-size")
    how.add_argument("--lr", type=float, help="learning rate (default: the paper's for the method, model size, "
                                              "benchmark and output layer: appendix Tables 4, 5, 10, 11, e.g. 3e-3 "
                                              "Compacter, 3e-4 Adapter on T5-base GLUE, 3e-3 on T5-small)")
    how.add_argument("--warmup-steps", type=int, help="linear warm-up steps (paper: 500 for T5-base on GLUE, "
                                                      "0 on SuperGLUE and for T5-small)")
    how.add_argument("--dropout", type=float, metavar="P", help="every dropout of the model during training "
                                                                "(default: the model's own, 0.1 for T5; 0 on the embedded tasks)")
    how.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=None,
                     help="batches of similar input length, less padding (default: on for the embedded tasks, "
                          "off for the paper's)")
    how.add_argument("--max-source-length", type=int)
    how.add_argument("--max-target-length", type=int)
    how.add_argument("--seed", type=int, help="one seed (default 42)")
    how.add_argument("--seeds", type=int, nargs="+", help="several seeds: mean ± std in the table")
    how.add_argument("--low-resource", type=int, metavar="N", help="train on N examples (100/500/1000/2000/4000 "
                                                                   "train 1000/200/100/50/25 epochs), 5 seeds by default")
    how.add_argument("--max-train", type=int, metavar="N", help="keep N training examples (sampled with the seed)")
    how.add_argument("--split-seed", type=int, help="seed of the paper's validation/test split (default 42)")
    how.add_argument("--precision", choices=("auto", "no", "bf16", "fp16"),
                     help="autocast on GPU (default auto: bf16 where supported, else fp32)")
    how.add_argument("--cpu", action="store_true", default=None, help="train on CPU even if a GPU is present")
    how.add_argument("--gradient-checkpointing", action="store_true", default=None,
                     help="recompute each block's activations in the backward pass instead of keeping them "
                          "(less memory, about a third more compute; the trained result is the same)")
    how.add_argument("--jobs", type=int, metavar="N", help="train N runs side by side in worker processes, one CPU "
                                                          "thread each unless --threads says more (a grid of small runs on a CPU)")
    how.add_argument("--threads", type=int, help="intra-op CPU threads (default on CPU: for the embedded model one per core "
                                                 "free at the start, at most 2; 1 for an --init-config model, which is "
                                                 "fastest for their small matrices; else PyTorch's default)")


def add_evaluation_and_output(parser: argparse.ArgumentParser) -> None:
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--eval-every", type=int, metavar="EPOCHS", help="validate every N epochs (default 1)")
    evaluation.add_argument("--eval-batch-size", type=int)
    evaluation.add_argument("--generation-max-length", type=int,
                            help="max generated tokens (default: longest training target + 2)")
    run = parser.add_argument_group("output and resuming")
    run.add_argument("--output-dir", help="where runs and tables go (default: runs/<date-time>)")
    run.add_argument("--overwrite", action="store_true", default=None, help="replace an existing --output-dir")
    run.add_argument("--resume", metavar="DIR", help="continue the interrupted invocation whose --output-dir was DIR")
    run.add_argument("--stop-after-steps", type=int, metavar="K",
                     help="debugging: stop after K optimizer steps, leaving a resumable checkpoint")
    run.add_argument("--save-every-steps", type=int, metavar="N", help="also write the resumable checkpoint every N steps")
    run.add_argument("--log-every", type=int, metavar="STEPS", help="steps between JSON-lines records (default 10)")
    run.add_argument("--no-progress", action="store_true", default=None, help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(resolve_settings(args))
    except UsageError as error:
        if is_main_process():
            print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C: nothing half-written to clean up
        return interrupted("interrupted; continue a started invocation with --resume OUT (its last complete checkpoint)"
                           if is_main_process() else None)


def run(settings: Settings) -> int:
    """The invocation's runs (the heavy imports happen here); out of GPU memory is exit 3 with advice.
    The output folder's lock is released however they end."""
    import torch

    try:
        if settings.options.get("one_base"):
            from .multitask import run_one_base

            return run_one_base(settings, say)
        from .run import run_all

        return run_all(settings, say)
    except torch.cuda.OutOfMemoryError:
        options = settings.options
        print("error: out of GPU memory. Lower the memory per step: raise --grad-accum (same global batch, "
              "smaller micro-batches, same results), or lower --batch-size, --max-source-length or "
              f"--eval-batch-size (now: --batch-size {options.get('batch_size') or 'default'}, "
              f"--grad-accum {options.get('grad_accum') or 1})", file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    finally:
        settings.release_lock()
