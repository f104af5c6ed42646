"""The two kinds of failure a user sees, and their exit codes."""

from __future__ import annotations


class WhisperftError(Exception):
    """A runtime failure (exit code 1): bad data, a missing checkpoint, a failed export."""

    exit_code = 1


class UsageError(WhisperftError):
    """A usage or configuration error (exit code 2): the user must change the command."""

    exit_code = 2


class ConfigError(UsageError):
    """One or more problems in a config, each naming its dotted key."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = f"{where}{self.problems[0]}"
        else:
            msg = f"{where}{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(msg)
