"""The stages of one month, one module each, in the order the runner (`flows/run.py`) calls
them: read, validate, route, decide, propose (payments), publish (docs/README.md, "The
layers").

A stage module holds the stage's pure functions (frames in, frames out, over the rules of
`coop_rules/` and the models of `schemas/`) and the function the runner calls, which loads and
saves what it declares by name through `flows/catalog.py`. Stages import no other stage: what
one tells the next is a summary in `flows/stages/summaries.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flows.catalog import Name

T = TypeVar("T")


@dataclass(frozen=True)
class Stage(Generic[T]):
    """One named stage: the function the runner calls, the datasets it reads and writes (the
    runner checks both), and the options of its Prefect task (none caches: a corrected file at
    the same path is read afresh)."""

    name: str
    run: Callable[..., T]
    reads: tuple[Name, ...] = ()
    writes: tuple[Name, ...] = ()
    task_options: Mapping[str, Any] = field(default_factory=dict)
