"""``python -m runners.finetune`` (and ``torchrun -m runners.finetune``): see `runners.finetune.cli`.

Nothing heavy is imported before the command line is read (`runners.command`).
"""

from runners.command import run_command

if __name__ == "__main__":
    run_command("runners.finetune.cli")
