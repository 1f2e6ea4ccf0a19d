"""The table commands (`python -m runners.finetune.results` / `.sweep`) refuse a folder that is not
there, a --write path that cannot become a folder, and a result.json that is no run record, in one
line naming the path, before writing anything."""

from __future__ import annotations

import importlib

import pytest

from runners.finetune.results import RunResult

COMMANDS = ["results", "sweep"]


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs" / "sst2" / "compacter++" / "seed-42"
    folder.mkdir(parents=True)
    RunResult("sst2", "compacter++", 42, {"accuracy": 90.0}, validation={"accuracy": 91.0},
              output_dir=str(folder)).save(folder)
    (tmp_path / "notes.txt").write_text("a file", encoding="utf-8")
    return tmp_path


def _refused(command, arguments, capsys) -> str:
    main = importlib.import_module(f"runners.finetune.{command}").main
    with pytest.raises(SystemExit) as exit_:
        main([str(argument) for argument in arguments])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("arguments, message", [
    (["{tmp}/absent"], "error: {tmp}/absent: no such folder; give output folders of runners.finetune"),
    (["{tmp}/notes.txt"], "error: {tmp}/notes.txt: not a folder; give output folders of runners.finetune"),
    (["{tmp}/runs", "--write", "{tmp}/notes.txt"], "error: --write {tmp}/notes.txt is a file; give a folder, new or not, for results.md and results.csv"),
    (["{tmp}/runs", "--write", "{tmp}/notes.txt/tables"],
     "error: --write {tmp}/notes.txt/tables: {tmp}/notes.txt is a file, so no folder can be made there"),
])
def test_missing_folders_and_unwritable_write_paths_are_one_line(command, arguments, message, runs, capsys):
    error = _refused(command, [argument.format(tmp=runs) for argument in arguments], capsys)
    assert error.startswith(message.format(tmp=runs)), error
    assert not list(runs.rglob("results.*"))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("content, why", [
    ('{"task": ', "Expecting value"),
    ("[1, 2]", "a JSON object expected, found a list"),
    ('{"task": "sst2"}', "missing 3 required positional arguments: 'recipe', 'seed', and 'test'"),
    ('{"task": "sst2", "recipe": "x", "seed": 1, "test": {}, "colour": "red"}', "unexpected keyword argument 'colour'"),
])
def test_a_result_file_that_is_no_run_record_is_named_not_a_traceback(command, content, why, runs, capsys):
    broken = runs / "runs" / "sst2" / "adapter" / "seed-42" / "result.json"
    broken.parent.mkdir(parents=True)
    broken.write_text(content, encoding="utf-8")
    error = _refused(command, [runs / "runs", "--write", runs / "tables"], capsys)
    assert error.startswith(f"error: {broken}: not a readable result.json of runners.finetune (") and why in error
    assert not (runs / "tables").exists()
