"""``python -m runners.finetune``: fine-tune a T5 with a recipe on a task, the paper's way.

The package, in call order (each module's docstring draws its part of the tree)::

    cli          the command line: build_parser, main (exit codes)
    invocation   options resolved: a resumed run's saved ones merged back, seeds, output folder
    run          every (task × recipe × seed) run, then the results table
      settings     the paper's defaults per task, the demo's for the embedded task
      model        the model and tokenizer: a checkpoint, or a small random-init T5
      training     the loop: AdamW + linear warm-up/decay, DDP, exact resume
        batches      tokenized examples, the (seed, epoch) order, shards, padding
        evaluation   greedy generate() on a split, scored with the task's metrics
        state        resumable checkpoints (adapter, optimizer, scheduler, RNG, position)
      results      result.json, log.jsonl, results.md / results.csv (mean ± std over seeds)

Tasks, data readers and metrics are shared with other runners: `runners.tasks`.
"""

from .cli import build_parser, main

__all__ = ["build_parser", "main"]
