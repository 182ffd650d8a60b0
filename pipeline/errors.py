"""Typed errors with messages a user can act on. Each names the file and the problem."""

from __future__ import annotations


class FormRescueError(Exception):
    """Base of every error the pipeline raises on purpose; ``code`` is a stable machine-readable tag."""

    code = "error"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class InputError(FormRescueError):
    """The input file cannot be read as any supported kind (empty, corrupt, encrypted, too large …)."""

    code = "bad_input"


class NotAFormError(FormRescueError):
    """The file was read but holds no 绩效自评表."""

    code = "not_a_form"


class ConfigError(FormRescueError):
    """A setting (command-line option or ``FORMRESCUE_*`` variable) has an invalid value."""

    code = "bad_config"


class LimitExceeded(InputError):
    """A configured safety limit was hit (pixels, pages, bytes unpacked, time)."""

    code = "limit_exceeded"


class QueueFileError(FormRescueError):
    """A review queue file is malformed; ``problems`` lists one message per bad row."""

    code = "bad_queue"

    def __init__(self, message: str, problems: list[str], *, source: str | None = None) -> None:
        self.problems = problems
        super().__init__(message + "".join(f"\n  - {p}" for p in problems), source=source)
