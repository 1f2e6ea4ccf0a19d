"""``python -m runners.finetune``: fine-tune a T5 with a recipe on a task, the paper's way.

The package, in call order (each module's docstring draws its part of the tree)::

    cli          the command line: build_parser, main (exit codes)
    invocation   options resolved: a resumed run's saved ones merged back, seeds, output folder
      arguments    every option checked (type, range) before any work starts
      lock         one process at a time per output folder
    run          every job (task × recipe × setting × seed), then the results table
      task_data    the tasks (the registry's or --train-file's own data), their rows; task.json, test_predictions.jsonl
      used_arguments  arguments.json: every option with the value the runs used
      jobs         the jobs: recipes × --set/--sweep/--paper-search settings × seeds, each checked first
        runs         one folder per distinct (task, recipe content, setting, seed); safe, clash-free names
        overrides    --set KEY=VALUE and --sweep KEY=V1,V2 parsed and written into a recipe
      protocol     the defaults: the paper's (appendix: batch, epochs, warm-up, lengths) and the embedded
                   tasks' own; every learning rate (Tables 4/5/10/11 and each world's search) in one table
      model        the model and tokenizer: a checkpoint, or a small random-init T5 (--init-config checked)
      training     the loop: AdamW + linear warm-up/decay, DDP, exact resume, stop on a non-finite loss
                   (the run ends as diverged: diverged.json; the invocation's other runs go on)
        jsonl_log    log.jsonl: a line per logging step and per evaluation, cut back on resume
        batches      tokenized examples, the (seed, epoch) order, shards, padding
        evaluation   greedy generate() on a split, scored with the task's metrics
        state        resumable checkpoints (adapter, optimizer, scheduler, RNG, position) and their crash recovery
        resume       a checkpoint loaded back into a run, the log cut back to what it had seen
      parallel     --jobs: runs side by side in worker processes
      outcomes     the invocation's end: the tables (cells with invalid outputs and diverged runs listed
                   under them), printed; the exit code
      results      result.json, diverged.json, results.md / results.csv (mean ± std over seeds)
      sweep        a sweep's choice per task and recipe, on validation only, and the grid's tables
    multitask    --one-base: every task into one base, one named adapter each; the table of which scored what
      atomic       files written whole or not at all
    errors       UsageError and the other errors reported on one line (exit 2)

Tasks, data readers and metrics are shared with other runners: `runners.tasks`; `runners.predict`
predicts with a run's adapter.
"""

from .cli import build_parser, main

__all__ = ["build_parser", "main"]
