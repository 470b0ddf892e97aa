"""The rules file of a run: shipped in coop_rules/, or `--rules FILE` (docs/operations.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from coop_rules.settings import DEFAULT_RULES_NAME, RulesError, RuleSettings, parse_rules
from flows.errors import UsageError


@dataclass(frozen=True)
class RulesFile:
    """The settings of a run, and the file they came from with its sha256."""

    settings: RuleSettings
    path: Path
    sha256: str


def default_rules_path() -> Path:
    """The rules file shipped in coop_rules/."""
    return Path(str(files("coop_rules").joinpath(DEFAULT_RULES_NAME)))


@cache
def shipped_rules_text() -> str:
    """The text of the rules file shipped in coop_rules/ (package data, read once): the one
    place the shipped values are written down, and the values of every setting a `--rules`
    file leaves out."""
    return files("coop_rules").joinpath(DEFAULT_RULES_NAME).read_text(encoding="utf-8")


def load_rules(rules_path: Path | None) -> RulesFile:
    """Read and parse the rules file, or a usage error naming `--rules` and the setting."""
    path = rules_path or default_rules_path()
    if not path.is_file():
        raise UsageError(f"--rules {path}: no such file")
    data = path.read_bytes()
    try:
        settings = parse_rules(data.decode("utf-8"), shipped_rules_text(), source=path.name)
    except (RulesError, UnicodeDecodeError) as exc:
        raise UsageError(f"--rules {path}: {exc}") from None
    return RulesFile(settings, path, hashlib.sha256(data).hexdigest())
