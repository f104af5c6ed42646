"""Is the Hugging Face Hub reachable? One short probe per process, asked before the first Hub call.

Without a network, huggingface_hub retries a failed request five times, sleeping 1, 2, 4, 8 and 8 s
(``_http_backoff_base`` in ``huggingface_hub/utils/_http.py``, version 2.4), and prints a
"Retrying in Ns" line each time: about 23 s of noise before the error. One HEAD request with a
``PROBE_TIMEOUT_S`` timeout answers first, so a command that needs the Hub fails in seconds with one
line, or, when the model is already in the local cache, goes on offline as ``HF_HUB_OFFLINE=1`` would.
Nothing is probed in offline mode: the libraries then read only their caches.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request

import huggingface_hub
from huggingface_hub import constants as hub_constants

from whisperft.errors import WhisperftError

logger = logging.getLogger("whisperft")

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # a reachable Hub answers a HEAD request in well under a second
PROBE_PATH = "/api/models/openai/whisper-tiny"  # any answer, even an HTTP error, means the Hub is there
OFFLINE_HINT = "set HF_HUB_OFFLINE=1 to use the cache, pass a local folder, or use bundled:NAME"
TRUE_VALUES = ("1", "ON", "YES", "TRUE")  # huggingface_hub.constants.ENV_VARS_TRUE_VALUES

_probed: dict[str, str | None] = {}  # endpoint -> why it is unreachable (None: it answered), per process


def offline_mode() -> bool:
    """Whether offline mode is set, read from the environment as huggingface_hub reads it at import."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in TRUE_VALUES


def endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT`` (a mirror), else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def probe(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """One HEAD request to the Hub: why it cannot be reached (one line), or None when it answers.

    Takes at most ``timeout`` seconds; a refused connection or an unknown host answers at once.
    """
    request = urllib.request.Request(endpoint() + PROBE_PATH, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # the Hub answered
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason).strip().splitlines()[0] if str(reason).strip() else type(exc).__name__


def unreachable() -> str | None:
    """Why the Hub cannot be reached, probed once per process (and endpoint); None when it answered,
    or in offline mode, where nothing is requested."""
    if offline_mode():
        return None
    where = endpoint()
    if where not in _probed:
        _probed[where] = probe()
    return _probed[where]


def require_hub(what: str, hint: str = OFFLINE_HINT) -> None:
    """Raise a one-line ``WhisperftError`` (exit 1) naming ``what`` when the Hub is unreachable."""
    reason = unreachable()
    if reason is not None:
        raise WhisperftError(f"{what} needs the Hugging Face Hub, and {endpoint()} is unreachable ({reason}): {hint}")


def is_cached(repo_id: str) -> bool:
    """Whether the local HF cache holds ``repo_id`` (its config.json, at the revision ``main`` points to)."""
    return isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json"), str)


def go_offline() -> None:
    """Offline mode for the rest of this process and the processes it starts, as if ``HF_HUB_OFFLINE=1``
    had been set: huggingface_hub read the variable at import, so its copy (which transformers asks) is set too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True


def hub_or_cache(repo_id: str, what: str) -> None:
    """Before loading ``repo_id`` from the Hub: nothing when the Hub answers (or offline mode is set);
    when it does not, offline mode if a copy is cached, else a one-line ``WhisperftError`` naming ``what``."""
    reason = unreachable()
    if reason is None:
        return
    if is_cached(repo_id):
        logger.info("%s is unreachable (%s): using the cached copy of %s", endpoint(), reason, repo_id)
        go_offline()
        return
    require_hub(what)
