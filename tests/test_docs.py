"""Every page, section, file and module the code and its pages cite exists (docs/README.md).

The rules are written down in `docs/`; comments cite a page (`docs/payouts.md`), sometimes with a
section (`docs/payouts.md, "The cap"`). The contract the code was first built to is not in the
repository, so nothing outside `docs/` and `README.md` may cite its numbered sections.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED_SUFFIXES = {".py", ".toml", ".yaml", ".md"}
# Folders that are not the project's own text (environments, caches, build output); hidden
# folders are skipped too, but for the CI script.
SKIPPED_DIRS = {"__pycache__", "build", "dist"}
EXTRA_FILES = (".ci/run",)

DOCS_PAGE = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)")
DOCS_SECTION = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md),\s+\"([^\"]+)\"")
REPO_FILE = re.compile(
    r"(?<![\w./-])((?:coop_rules|schemas|flows|tests|docs)/[\w/.-]*\.(?:py|md|toml|yaml))\b"
)
MODULE_NAME = re.compile(r"(?<![\w./-])((?:coop_rules|schemas|flows)(?:\.[A-Za-z_]\w*)+)")
SPEC_SECTION = re.compile(
    r"\bSPEC(?:\.md)?,?\s+(?:sections?\s+)?\d|\bSPEC\s+section", re.IGNORECASE
)


def scanned_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if d not in SKIPPED_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        ]
        for name in files:
            if Path(name).suffix in SCANNED_SUFFIXES:
                yield Path(folder, name)
    for extra in EXTRA_FILES:
        if (ROOT / extra).is_file():
            yield ROOT / extra


def citations(pattern: re.Pattern[str]) -> dict[tuple[str, ...], list[str]]:
    """What `pattern` captures in every scanned file -> where (file:line) it does."""
    found: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            # A citation wrapped over two comment lines is one citation.
            groups = tuple(re.sub(r"\s*\n\s*#?\s*", " ", g) for g in match.groups())
            found[groups].append(f"{path.relative_to(ROOT)}:{line}")
    return dict(found)


def headings(page: Path) -> list[str]:
    return [
        line.lstrip("#").strip().lower()
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]


def defines(module_file: Path, name: str) -> bool:
    """`name` is a function, class, or assigned name (also a class attribute) in the module."""
    pattern = rf"^\s*(?:(?:async\s+)?def|class)\s+{name}\b|^\s*{name}\s*[:=]"
    return re.search(pattern, module_file.read_text(encoding="utf-8"), re.MULTILINE) is not None


def module_file(dotted: list[str]) -> Path | None:
    for ending in (".py", "/__init__.py"):
        candidate = ROOT / ("/".join(dotted) + ending)
        if candidate.is_file():
            return candidate
    return None


def resolves(dotted_name: str) -> bool:
    """`a.b.c` names a module of the repository, or a name defined in one."""
    parts = dotted_name.split(".")
    for size in range(len(parts), 0, -1):
        found = module_file(parts[:size])
        if found is not None:
            return size == len(parts) or defines(found, parts[size])
    return False


PAGES = citations(DOCS_PAGE)
SECTIONS = citations(DOCS_SECTION)
FILES = citations(REPO_FILE)
MODULES = citations(MODULE_NAME)


def test_the_scan_sees_the_code_and_its_citations() -> None:
    """Guards the scan itself: it must find the code's own citations, or every test passes."""
    scanned = {path.relative_to(ROOT).as_posix() for path in scanned_files()}
    assert {"flows/run.py", "coop_rules/rules.toml", "prefect.yaml", ".ci/run"} <= scanned
    assert ("payouts.md",) in PAGES and ("payouts.md", "The cap") in SECTIONS


@pytest.mark.parametrize(
    ("page", "where"), [pytest.param(p, w, id=p) for (p,), w in sorted(PAGES.items())]
)
def test_every_cited_docs_page_exists(page: str, where: list[str]) -> None:
    assert (ROOT / "docs" / page).is_file(), f"docs/{page} is cited but missing: {where}"


@pytest.mark.parametrize(
    ("page", "section", "where"),
    [pytest.param(p, s, w, id=f"{p}: {s}") for (p, s), w in sorted(SECTIONS.items())],
)
def test_every_cited_section_is_a_heading_of_its_page(
    page: str, section: str, where: list[str]
) -> None:
    page_file = ROOT / "docs" / page
    found = page_file.is_file() and any(section.lower() in h for h in headings(page_file))
    assert found, f'docs/{page} has no section "{section}", cited at {where}'


@pytest.mark.parametrize(
    ("path", "where"), [pytest.param(p, w, id=p) for (p,), w in sorted(FILES.items())]
)
def test_every_cited_repository_file_exists(path: str, where: list[str]) -> None:
    assert (ROOT / path).is_file(), f"{path} is cited but missing: {where}"


@pytest.mark.parametrize(
    ("name", "where"), [pytest.param(n, w, id=n) for (n,), w in sorted(MODULES.items())]
)
def test_every_cited_module_name_exists(name: str, where: list[str]) -> None:
    assert resolves(name), f"{name} is cited but no module defines it: {where}"


def test_nothing_outside_docs_and_the_readme_cites_spec_sections() -> None:
    allowed = (ROOT / "docs", ROOT / "README.md")
    cited = [
        where
        for (_,), places in citations(re.compile(f"({SPEC_SECTION.pattern})", re.I)).items()
        for where in places
        if not any((ROOT / where.split(":")[0]).is_relative_to(a) for a in allowed)
    ]
    assert cited == [], f"cite a docs page instead: {cited}"


# --- The README is a user's guide (docs/operations.md): short, and its commands are real -------

README = ROOT / "README.md"
README_COMMAND = re.compile(r"^\| `coop-payouts (\w+)([^`]*)` \|", re.MULTILINE)


def test_the_readme_is_a_guide_not_a_lab_notebook() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    assert not re.search(r"\bsessions?\b", text, re.IGNORECASE)
    hashes = re.findall(r"`((?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40})`", text)
    assert hashes == [], "no commit hashes in the README"


@pytest.mark.parametrize(
    ("command", "options"),
    [pytest.param(c, o, id=c) for c, o in README_COMMAND.findall(README.read_text("utf-8"))],
)
def test_every_option_the_readme_lists_is_one_the_command_takes(command: str, options: str) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in re.findall(r"--[a-z-]+", options):
        assert option in result.stdout, f"README lists {command} {option}; the command has none"
