"""The error raised for a daemon config that cannot be used."""

from __future__ import annotations

from d2common.errors import D2StreamError

#: ``EX_CONFIG`` from sysexits.h: the unit file's ``RestartPreventExitStatus`` names it, so a bad
#: config is reported once instead of being restarted in a loop.
EXIT_CONFIG = 78


class ConfigError(D2StreamError):
    """A daemon config file that is missing, malformed or names something that does not exist.

    The message is one line: ``<file>: <key path>: <problem>``.
    """

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        self.key = key
        self.file = file
        parts = [p for p in (file, key, message) if p]
        super().__init__(_one_line(": ".join(parts)))


def _one_line(text: str) -> str:
    """Line breaks and other control characters escaped: the message stays on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
