"""``python -m runners.pretrain`` (and ``torchrun -m runners.pretrain``): see `runners.pretrain.cli`.

Nothing heavy is imported before the command line is read (`runners.command`).
"""

from runners.command import run_command

if __name__ == "__main__":
    run_command("runners.pretrain.cli")
