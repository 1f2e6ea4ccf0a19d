"""The training core both runners share: one optimizer step, one checkpoint folder, one stop signal.

`runners.finetune` (adapters on a task) and `runners.pretrain` (span corruption) differ in their
data and their evaluation; what a step *is* and how a run is saved live here, once::

    runner (its batches, its loss)                 core
    ──────────────────────────────                 ────
    token_loss = summed loss of a micro-batch
    backward_token_loss(accelerator, token_loss,   step.py   × processes / tokens of the GLOBAL batch
                        global_tokens)
    finish_step(accelerator, loss_sum, ...)        step.py   ├─ all-reduce [loss sum, stop flag]
                                                             ├─ clip the gradient norm
                                                             ├─ non-finite loss or norm → NonFiniteLoss,
                                                             │  raised BEFORE the optimizer step
                                                             └─ optimizer, scheduler, zero_grad
    CheckpointFolder(last/).write(...)             checkpoint.py  partial → state file last → swap in
    StopSignal()                                   signals.py     SIGINT/SIGTERM end at a step boundary
    make_optimizer / make_scheduler / make_accelerator   optim.py  the paper's AdamW and schedule

Why the loss is normalised by the global batch's token count: a step's objective is then the mean
token loss over the whole global batch, whatever the number of processes or accumulation steps, so
2 processes × batch 2 compute the update of 1 process × batch 4 (up to summation order).

This package imports nothing itself (a command line's `--help` stays cheap): import what you need
from its modules, `runners.training.step`, `.checkpoint`, `.optim`, `.signals` and `.errors`.
"""
