"""The names the pipeline is built from, in one place.

Every name here ends up in a file path, a Snakemake wildcard and a shell command line, so
the schema, the wildcard constraints, the command-line choices and the renderers all read
them from this module rather than repeating them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Subject, sample and dataset names become folder and file names and reach shell commands:
# letters, digits, underscore, dot and hyphen only, and no leading dot (no hidden files, no
# "." or ".." path parts).
SAFE_NAME_CHARACTERS = "A-Za-z0-9_.-"
SAFE_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)


def is_safe_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name))


def unsafe_names(names: Iterable[str]) -> list[str]:
    """The names of ``names`` that are not safe, each once, in first-seen order."""
    return list(dict.fromkeys(name for name in names if not is_safe_name(name)))


def describe_unsafe(names: Iterable[str]) -> str:
    """How an error lists unsafe names: every one, quoted so that spaces and control characters show."""
    return ", ".join(repr(name) for name in names)


SAFE_NAME_RULE = f"only the characters [{SAFE_NAME_CHARACTERS}] and no leading dot"
