"""Run folders that never clash: one per distinct (task, recipe content, setting, seed).

Used by `runners.finetune.jobs` when it lays out an invocation's runs:

* `unique` — duplicates merged, with a note: ``--task rte,RTE``, ``--recipe adapter,adapter.yaml``, ``--seeds 1 1``;
* `safe_name` — a recipe's name is text, not a path: ``'../x'`` → ``'x'``;
* `labels` — two different recipes of one name get ``<name>-<hash of each one's content>``.

A run's folder is ``OUT/<task>/<label>[/<setting>]/seed-<seed>/``, and its label is also its row
in the results table, so two different recipes never share a folder or a row, and nothing is
written outside ``OUT``.

>>> safe_name("../../escaped"), safe_name("compacter++"), safe_name("my recipe/v2")
('escaped', 'compacter++', 'my-recipe-v2')
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import surgery

MAX_LABEL = 64


def safe_name(name: str) -> str:
    """`name` as one path component: letters, digits and ._+- only, no leading dots, at most 64 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", name)
    cleaned = re.sub(r"^[.-]+|-+$", "", re.sub(r"\.{2,}", "-", cleaned))[:MAX_LABEL].strip("-.")
    return cleaned or "recipe"


def content_hash(recipe: surgery.Recipe) -> str:
    """8 hex digits of the recipe's content (everything but its description)."""
    content = {k: v for k, v in recipe.to_dict().items() if k != "description"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:8]


def unique(items: list[tuple[str, Any]], key, what: str, notes: list[str]) -> list[Any]:
    """The values of (as given, value) pairs without repeats (by `key(value)`), first kept; a note per repeat."""
    kept: dict[Any, tuple[str, Any]] = {}
    for shown, value in items:
        k = key(value)
        if k in kept:
            first = kept[k][0]
            notes.append(f"{what} {first!r} and {shown!r} are the same; running it once" if first != shown
                         else f"{what} {shown!r} is given twice; running it once")
            continue
        kept[k] = (shown, value)
    return [value for _, value in kept.values()]


def labels(recipes: list[tuple[str, surgery.Recipe]], notes: list[str]) -> dict[str, str]:
    """content hash → label: the sanitised name, plus the content hash where different recipes share it."""
    by_name: dict[str, dict[str, tuple[str, surgery.Recipe]]] = {}
    for given_as, recipe in recipes:
        by_name.setdefault(safe_name(recipe.name).lower(), {})[content_hash(recipe)] = (given_as, recipe)
    result = {}
    for variants in by_name.values():
        for digest, (given_as, recipe) in variants.items():
            label = safe_name(recipe.name)
            if len(variants) > 1:
                label = f"{label[:MAX_LABEL - 9]}-{digest}"
            elif label != recipe.name:
                notes.append(f"recipe name {recipe.name!r} is written as the folder name {label!r}")
            result[digest] = label
        if len(variants) > 1:
            shown = ", ".join(f"{given!r} → {result[d]}" for d, (given, _) in variants.items())
            notes.append(f"different recipes share the name {next(iter(variants.values()))[1].name!r}; "
                         f"each gets its own folder and row: {shown}")
    return result
