"""Folders from the Hugging Face Hub: a repo id becomes a local snapshot through `huggingface_hub`.

`resolve_folder` is how `surgery.load_adapter` and `surgery.from_pretrained` accept either a local
folder or a Hub repo id (``"user/my-compacter"``, optionally a `revision`). Downloading goes
through `huggingface_hub.snapshot_download`, so the usual cache, token and offline settings
(``HF_HUB_OFFLINE=1``, ``HF_TOKEN``) apply.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> resolve_folder(folder) == Path(folder)
True
>>> looks_like_repo_id("google-t5/t5-base"), looks_like_repo_id("./runs/best"), looks_like_repo_id("a/b/c")
(True, False, False)
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import CheckpointError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def looks_like_repo_id(name: str) -> bool:
    """``name`` or ``owner/name`` with Hub-legal characters, not a relative path like ``./x``."""
    return bool(_REPO_ID.match(name)) and ".." not in name and not name.endswith((".json", ".safetensors"))


def resolve_folder(name_or_path: str | Path, revision: str | None = None, token: str | bool | None = None,
                   allow_patterns: list[str] | None = None) -> Path:
    """A local folder for `name_or_path`: the folder itself, or a snapshot of the Hub repo it names."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists() or not looks_like_repo_id(name):
        raise CheckpointError(f"{name!r} is not a folder, and not a Hub repo id (owner/name) either")
    import huggingface_hub

    try:
        return Path(huggingface_hub.snapshot_download(name, revision=revision, token=token, allow_patterns=allow_patterns))
    except Exception as error:  # offline, unknown repo, gated, no such revision: one clear message
        raise CheckpointError(
            f"{name!r} is not a local folder, and downloading it from the Hugging Face Hub failed "
            f"({type(error).__name__}: {error}); check the repo id and revision, your network or HF_HUB_OFFLINE"
        ) from None
