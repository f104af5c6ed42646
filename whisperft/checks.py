"""Usage checks that the stage requests share. Light to import: the language tables load only when a
language is named.
"""

from __future__ import annotations

from whisperft.errors import UsageError


def language_problems(lang: str | None, auto: bool = True) -> list[str]:
    """The one error line for ``lang`` when it names no language ``languages.get_language`` knows, else [].
    None (the model's own) passes, and so does ``auto`` (detect) where ``auto`` is allowed."""
    if lang is None or (auto and lang == "auto"):
        return []
    from whisperft.languages import get_language  # deferred: langcodes' tables take 0.1 s to load

    try:
        get_language(lang)
    except UsageError as exc:
        return [str(exc)]
    return []
