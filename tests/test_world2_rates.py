"""World 2's learning rates (runners.finetune.protocol.LEARNING_RATES["world2"]) are what the recorded
search chose: for every recipe, the rate of the paper's grid with the best validation accuracy on
world2-sst2 in benchmarks/results/world2-lr-2026-12-04 (read here straight from its result.json
files; a tie goes to the smaller rate, as in the runner's own choice)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from runners.finetune.library_baselines import baseline_mapping, is_library_baseline
from runners.finetune.protocol import LEARNING_RATES, SEARCH_LEARNING_RATES, learning_rate_row, paper_defaults
from runners.tasks import get_task

SEARCH = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "world2-lr-2026-12-04"


def searched() -> dict[str, dict[float, float]]:
    """recipe (its run folder's name) → {rate: validation accuracy}, from the search's run folders."""
    grid: dict[str, dict[float, float]] = defaultdict(dict)
    for path in SEARCH.glob("sst2-*/world2-sst2/*/lr=*/seed-1/result.json"):
        result, recipe = json.loads(path.read_text()), path.parents[2].name
        rate = float(result["setting"].removeprefix("lr="))
        assert rate not in grid[recipe], f"{path}: one rate twice"
        grid[recipe][rate] = result["validation"]["accuracy"]
    return grid


def as_the_runner_passes_it(recipe: str):
    """A bundled recipe's name, or a library baseline's mapping (as a job carries it)."""
    return baseline_mapping(recipe, {}, version="any") if is_library_baseline(recipe) else recipe


def test_the_search_covers_every_recipe_over_the_whole_grid():
    grid = searched()
    assert len(grid) == 13  # the paper's Table 1 rows and PEFT's LoRA
    for recipe, scores in grid.items():
        assert sorted(scores) == sorted(SEARCH_LEARNING_RATES), recipe


def test_world2_rates_are_the_searched_best_on_validation():
    for recipe, scores in searched().items():
        best = max(sorted(scores), key=lambda rate: scores[rate])  # max keeps the first (smallest) of a tie
        _, method, _ = learning_rate_row(as_the_runner_passes_it(recipe))
        assert LEARNING_RATES["world2"][method] == best, (recipe, scores)
        assert paper_defaults(get_task("world2-cola"), as_the_runner_passes_it(recipe))["learning_rate"] == best


def test_world1_tasks_keep_their_own_column():
    assert paper_defaults(get_task("embedded-cola"), "bitfit")["learning_rate"] == LEARNING_RATES["embedded"]["BitFit"] == 3e-3
    assert paper_defaults(get_task("world2-cola"), "bitfit")["learning_rate"] == 3e-2
