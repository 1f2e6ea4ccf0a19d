"""The README's Python example runs as written (in a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path
from surgery.checkpoint import WEIGHTS_FILE

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "my-adapter" / WEIGHTS_FILE).is_file()
    assert namespace["report"].trainable == sum(p.numel() for p in namespace["model"].parameters() if p.requires_grad)


def test_every_other_readme_python_block_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[1:]
    monkeypatch.chdir(tmp_path)
    for index, block in enumerate(blocks, start=2):
        exec(compile(block, f"README.md python block {index}", "exec"), {})  # noqa: S102


def test_readme_starts_with_the_two_setup_commands():
    lines = [line for line in README.read_text().splitlines() if line.startswith("bash setup.sh")]
    assert lines[0].split("#")[0].strip() == "bash setup.sh && python3 -m runners.finetune"
    assert lines[1].split("#")[0].strip() == "bash setup.sh && python3 -m pytest"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest" in ci and "bash setup.sh" in ci
