"""README.md and docs/*.md: every ```python block runs as written, links resolve, the first lines stay.

Each file's blocks run in order in one fresh namespace, in a temporary folder. A block that cannot
run here (a GPU, the Hub) is preceded by ``<!-- not-run: the reason -->``; a marker without a
reason, or one that precedes no python block, is an error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import surgery
from surgery.checkpoint import WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
NOT_RUN = re.compile(r"<!--\s*not-run(?P<colon>:?)(?P<reason>[^>]*?)-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


def python_blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, reason it is not run or None) for every ```python block of `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if opening.group(1) == "python":
            previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = NOT_RUN.search(previous)
            reason = marker.group("reason").strip() if marker else None
            blocks.append((index + 1, "\n".join(lines[index + 1:end]) + "\n", reason))
        index = end + 1
    return blocks


def markers(path: Path) -> list[tuple[int, str]]:
    return [(number, line) for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if "not-run" in line]


def run_blocks(page: Path) -> dict:
    """Run the page's python blocks (not the not-run ones) in order in one fresh namespace; returns it."""
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, code, reason in python_blocks(page):
        if reason is None:
            exec(compile(code, f"{page.name} line {line}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_python_block_of_docs_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_blocks(page)


def test_every_skipped_block_says_why():
    for page in PAGES:
        blocks = {line: reason for line, _, reason in python_blocks(page)}
        skipped_lines = [line for line, reason in blocks.items() if reason is not None]
        for number, text in markers(page):
            match = NOT_RUN.search(text)
            assert match and match.group("colon") and match.group("reason").strip(), \
                f"{page.name}:{number}: a not-run marker needs a reason: <!-- not-run: why -->"
            assert any(line > number for line in skipped_lines), f"{page.name}:{number}: the marker precedes no python block"
        for line, reason in blocks.items():
            assert reason is None or reason, f"{page.name}:{line}: skipped without a reason"


def test_the_readmes_python_blocks_run_and_the_quickstart_trains_and_saves_what_it_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (_, quickstart, reason), *_ = python_blocks(README)
    assert reason is None and "optimizer.step()" in quickstart
    namespace = run_blocks(README)
    model = namespace["model"]
    assert (tmp_path / "my-adapter" / WEIGHTS_FILE).is_file()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert surgery.report(model).trainable == trainable == 13_720  # the count the README's comment gives
    losses = [float(text) for text in re.findall(r"^\d+ ([\d.]+)$", capsys.readouterr().out, flags=re.M)]
    assert len(losses) == 8 and losses[-1] < losses[0] - 2  # it learns (README: about 6.8 → about 1.9)
    llama = namespace["llama"]  # Beyond T5: the Llama example trains only what compacter++ trains
    assert surgery.report(llama).trainable == sum(p.numel() for p in llama.parameters() if p.requires_grad) > 0
    assert not any(p.requires_grad for n, p in llama.named_parameters() if n.startswith("model.layers.0.mlp."))
    # the saved adapter is the trained one: loaded into a fresh copy of the base, it computes the same
    fresh = type(model).from_pretrained(namespace["MODEL_DIR"])
    surgery.load_adapter(fresh, tmp_path / "my-adapter")
    ids = torch.tensor([[5, 6, 7, 1]])
    with torch.no_grad():
        assert torch.equal(fresh.eval()(input_ids=ids, labels=ids).logits, model.eval()(input_ids=ids, labels=ids).logits)


def test_readme_starts_with_the_two_setup_commands():
    lines = [line for line in README.read_text().splitlines() if line.startswith("bash setup.sh")]
    assert lines[0].split("#")[0].strip() == "bash setup.sh && python3 -m runners.finetune"
    assert lines[1].split("#")[0].strip() == "bash setup.sh && python3 -m pytest"
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest" in ci and "bash setup.sh" in ci


def test_readme_is_short_with_contents_and_the_own_data_section():
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    assert "**Contents:**" in text and "<!-- own-data -->" in text and "## Your own data" in text


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_internal_links_resolve():
    broken = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif fragment and file.suffix == ".md":
                headings = {anchor(h) for h in re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), flags=re.M)}
                if fragment not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
