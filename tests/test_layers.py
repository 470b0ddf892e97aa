"""Layers only point down (docs/README.md, "The layers"), and every package the code imports is
declared in pyproject.toml.

Each layer's modules are imported in a fresh interpreter, so what a module pulls in by the way
(a module imported by a module it imports) counts too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("coop_rules", "schemas", "flows", "tests")

# (layer, the top-level packages none of its modules may import, directly or not)
LAYER_CASES = [
    pytest.param("coop_rules", ("pandera", "prefect", "schemas", "flows"), id="coop_rules"),
    pytest.param("schemas", ("prefect", "flows"), id="schemas"),
]

STAGES = ("read", "validate", "route", "decide", "propose", "publish")
# What a stage may not pull in: Prefect, and the modules above the stages.
ABOVE_STAGES = ("prefect", "flows.run", "flows.orchestration", "flows.cli")


def modules_of(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported_modules(modules: list[str]) -> set[str]:
    """Every module loaded after importing `modules` in a fresh interpreter."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def imported_roots(modules: list[str]) -> set[str]:
    """The top-level packages loaded after importing `modules` in a fresh interpreter."""
    return {name.split(".")[0] for name in imported_modules(modules)}


@pytest.mark.parametrize(("layer", "forbidden"), LAYER_CASES)
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: tuple[str, ...]) -> None:
    modules = modules_of(layer)
    assert modules, f"no modules found in {layer}/"
    assert imported_roots(modules) & set(forbidden) == set()


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_no_other_stage_and_nothing_above_it(stage: str) -> None:
    """A stage is one module: what it tells the next is in `flows.stages.summaries`."""
    loaded = imported_modules([f"flows.stages.{stage}"])
    others = {f"flows.stages.{other}" for other in STAGES if other != stage}
    assert loaded & others == set()
    assert {name for name in loaded if name.startswith(ABOVE_STAGES)} == set()


def test_the_runner_calls_every_stage_module_in_order() -> None:
    from flows.run import STAGES as RUN_ORDER

    modules = [stage.run.__module__.removeprefix("flows.stages.") for stage in RUN_ORDER]
    assert modules == list(STAGES)
    on_disk = {path.stem for path in (ROOT / "flows" / "stages").glob("*.py")}
    assert on_disk - {"__init__", "summaries"} == set(STAGES)


def test_the_import_check_sees_an_import_above() -> None:
    """Guards the check itself: flows does import prefect, so the check must see it."""
    assert "prefect" in imported_roots(["flows.orchestration"])


def direct_imports() -> dict[str, list[str]]:
    """Top-level names each file of the project imports -> the files that do."""
    found: dict[str, list[str]] = {}
    for package in PROJECT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    roots = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    roots = [node.module.split(".")[0]]
                else:
                    continue
                for root in roots:
                    found.setdefault(root, []).append(str(path.relative_to(ROOT)))
    return found


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_imported_package_is_declared() -> None:
    distributions = packages_distributions()
    stdlib = sys.stdlib_module_names
    # The benchmark's scripts import each other as siblings in tests/bench (duckdb_core, ...).
    local = {*PROJECT_PACKAGES, *(path.stem for path in (ROOT / "tests" / "bench").glob("*.py"))}
    declared = declared_distributions()
    undeclared = {
        root: files
        for root, files in direct_imports().items()
        if root not in stdlib
        and root not in local
        and root != "__future__"
        and not {d.lower().replace("_", "-") for d in distributions.get(root, [root])} & declared
    }
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"
