"""The plot runners refuse unreadable inputs and unwritable figure paths before any work, with one
line naming the option, the path and what is valid; and a figure file is written whole or not at all."""

from __future__ import annotations

import pytest

from runners import plot, plot_low_resource
from runners.figure_file import write_figure
from runners.finetune.results import RunResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def inputs(tmp_path):
    """An efficiency CSV, a scores CSV, a low-resource run folder, a plain file and a binary file."""
    efficiency = tmp_path / "efficiency.csv"
    efficiency.write_text("recipe,trainable_percent,peak_memory_mib,error\ncompacter++,0.05,100,\n", encoding="utf-8")
    scores = tmp_path / "scores.csv"
    scores.write_text("recipe,score\ncompacter++,80\n", encoding="utf-8")
    runs = tmp_path / "runs"
    folder = runs / "a" / "compacter++" / "seed-1"
    folder.mkdir(parents=True)
    RunResult("a", "compacter++", 1, {"accuracy": 60.0}, train_examples=100, output_dir=str(folder)).save(folder)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder", encoding="utf-8")
    (tmp_path / "cut.csv").write_text("recipe,score\ncompacter++,80\nadapter", encoding="utf-8")
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    return {"efficiency": efficiency, "scores": scores, "runs": runs, "notes": notes, "binary": binary, "tmp": tmp_path}


def _refused(main, arguments, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([str(argument) for argument in arguments])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in error
    return error


def _files(folder):
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("change, message", [
    ({"--efficiency": "missing.csv"}, "--efficiency {tmp}/missing.csv: no such file; give the efficiency.csv that "
                                     "python -m runners.efficiency writes"),
    ({"--efficiency": "{tmp}"}, "--efficiency {tmp}: is a folder; give the efficiency.csv"),
    ({"--efficiency": "model.bin"}, "--efficiency {tmp}/model.bin: not a text file (not UTF-8)"),
    ({"--efficiency": "scores.csv"}, "--efficiency {tmp}/scores.csv: missing column(s) ['peak_memory_mib', "
                                     "'trainable_percent']; found ['recipe', 'score']"),
    ({"--scores": "efficiency.csv"}, "--scores {tmp}/efficiency.csv: missing column(s) ['score']"),
    ({"--scores": "cut.csv"}, "--scores {tmp}/cut.csv, line 3: 1 field(s) where the header has 2 (a truncated file?)"),
    ({"--output": "{tmp}"}, "--output {tmp} is a folder; give a file path, e.g. {tmp}/figure.png"),
    ({"--output": "notes.txt/figure.png"}, "--output {tmp}/notes.txt/figure.png: {tmp}/notes.txt is a file"),
    ({"--output": "figure"}, "--output {tmp}/figure: no format suffix; give one that matplotlib writes ("),
    ({"--output": "figure.xyz"}, "--output {tmp}/figure.xyz: format '.xyz' is not one that matplotlib writes ("),
])
def test_the_tradeoff_plot_refuses_bad_inputs_and_outputs_in_one_line(inputs, change, message, capsys):
    tmp = inputs["tmp"]
    options = {"--efficiency": "efficiency.csv", "--scores": "scores.csv", "--output": "figure.png", **change}
    arguments = [part for option, value in options.items()
                 for part in (option, value.format(tmp=tmp) if "{tmp}" in value else tmp / value)]
    before = _files(tmp)
    error = _refused(plot.main, arguments, capsys)
    assert message.format(tmp=tmp) in error, error
    assert _files(tmp) == before  # nothing written


def test_a_figure_value_that_is_not_a_number_is_refused_naming_its_line(inputs, capsys):
    bad = inputs["tmp"] / "bad.csv"
    bad.write_text("recipe,trainable_percent,peak_memory_mib,error\ncompacter++,0.05,100,\nadapter,lots,90,\n",
                   encoding="utf-8")
    error = _refused(plot.main, ["--efficiency", bad, "--scores", inputs["scores"],
                                 "--output", inputs["tmp"] / "f.png"], capsys)
    assert f"--efficiency {bad}, line 3: trainable_percent 'lots' and peak_memory_mib '90' must be numbers" in error


@pytest.mark.parametrize("arguments, message", [
    (["{tmp}/absent"], "{tmp}/absent: no such folder; give output folders of runners.finetune"),
    (["{tmp}/notes.txt"], "{tmp}/notes.txt: not a folder"),
    (["{runs}", "--output", "{tmp}/figure4"], "--output {tmp}/figure4: no format suffix"),
    (["{runs}", "--output", "{tmp}/notes.txt/figure4.png"], "{tmp}/notes.txt is a file, so no folder can be made"),
    (["{runs}", "--output", "{tmp}/f.png", "--table", "{tmp}"], "--table {tmp} is a folder; give a file path"),
    (["{runs}", "--output", "{tmp}/f.png", "--table", "{tmp}/f.png"], "--table {tmp}/f.png is also the --output"),
])
def test_the_low_resource_plot_refuses_missing_folders_and_bad_outputs_before_reading(inputs, arguments, message,
                                                                                      capsys):
    tmp, runs = inputs["tmp"], inputs["runs"]
    before = _files(tmp)
    error = _refused(plot_low_resource.main, [a.format(tmp=tmp, runs=runs) for a in arguments], capsys)
    assert message.format(tmp=tmp) in error, error
    assert _files(tmp) == before


def test_missing_folders_of_the_outputs_are_made(inputs):
    figure, table = inputs["tmp"] / "new" / "figure4.png", inputs["tmp"] / "other" / "deep" / "figure4.md"
    assert plot_low_resource.main([str(inputs["runs"]), "--output", str(figure), "--table", str(table)]) == 0
    assert figure.read_bytes()[:8] == PNG_SIGNATURE and table.read_text(encoding="utf-8").startswith("| training")
    plot.main(["--efficiency", str(inputs["efficiency"]), "--scores", str(inputs["scores"]),
               "--output", str(inputs["tmp"] / "new2" / "figure1.PDF")])
    assert (inputs["tmp"] / "new2" / "figure1.PDF").read_bytes()[:5] == b"%PDF-"  # format from the suffix, any case


def test_a_figure_whose_writing_fails_leaves_the_earlier_file_whole_and_no_temporary(tmp_path):
    from matplotlib.figure import Figure

    path = tmp_path / "figure.png"
    path.write_bytes(b"the earlier figure")

    class FailingFigure(Figure):
        def savefig(self, target, **kwargs):
            with open(target, "wb") as file:
                file.write(PNG_SIGNATURE)  # half a file, then the disk is full
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_figure(FailingFigure(), path)
    assert path.read_bytes() == b"the earlier figure"
    assert _files(tmp_path) == ["figure.png"]
    write_figure(Figure(), path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE and _files(tmp_path) == ["figure.png"]
