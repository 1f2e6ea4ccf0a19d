"""The Hugging Face Hub, tried once: when it cannot be reached, the runners go offline at once.

Without this, a run whose Hub is unreachable spends half a minute in the libraries' retries
(five tries, 1 + 2 + 4 + 8 + 8 s) before its clear message. Every place where a runner may
fetch from the Hub (a model or tokenizer by name, a GLUE task's data, a `datasets` corpus) calls
:func:`prepare_hub` with the name first:

* a local path, or ``HF_HUB_OFFLINE`` already set: nothing is done;
* otherwise the Hub's address (``HF_ENDPOINT``, or the proxy that ``HTTPS_PROXY`` names) is
  tried with one TCP connection, once per process; if that fails, one note is printed on stderr
  and the process goes offline (``HF_HUB_OFFLINE=1``): the libraries then use only the local
  cache, and a name that is not there fails at once with their "not found" error.

>>> prepare_hub(".")  # a local folder: the Hub is not needed
False
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT_S = 3.0
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")

_reachable: bool | None = None  # the verdict of this process's one attempt


def is_offline() -> bool:
    """Whether the user (or an earlier failure) asked for offline mode."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_address(endpoint: str | None = None) -> tuple[str, int]:
    """(host, port) a connection to the Hub goes to first: the endpoint's, or its proxy's.

    >>> hub_address("http://127.0.0.1:9")
    ('127.0.0.1', 9)
    >>> hub_address("https://huggingface.co")[1]
    443
    """
    url = urllib.parse.urlsplit(endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def prepare_hub(name: str | os.PathLike | None) -> bool:
    """Before `name` is fetched: go offline (with one note) if the Hub cannot be reached.

    Returns whether the Hub is being used for `name` (False for a local path or offline mode).
    """
    global _reachable
    if name is None or Path(name).exists() or is_offline():
        return False
    if _reachable is None:
        host, port = hub_address()
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
            _reachable = True
        except OSError as error:
            _reachable = False
            endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
            print(f"note: the Hugging Face Hub ({endpoint}) cannot be reached ({host}:{port}: "
                  f"{error.strerror or error}); working offline (HF_HUB_OFFLINE=1): only local folders and "
                  "the local cache are used", file=sys.stderr, flush=True)
            go_offline()
    return _reachable


def go_offline() -> None:
    """Offline mode for this process: the environment, and the libraries that read it at import."""
    for variable in OFFLINE_VARIABLES:
        os.environ[variable] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
        if hasattr(datasets.config, "HF_DATASETS_OFFLINE"):
            datasets.config.HF_DATASETS_OFFLINE = True
