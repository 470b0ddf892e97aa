"""How the command line shows a table (docs/operations.md, "Reading the output"): every amount,
status and name whole, whatever the terminal's width.

On a terminal, a table that fits is drawn as a table; one that does not is shown as one record
per line (its key columns, then `name value` pairs, wrapped between pairs, never inside a
value). Into a file or a pipe, a table is plain ASCII, one line per row, as wide as its longest
row and no wider.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text

from flows.manifest import Table

INDENT = "  "


def plain(text: str) -> Text:
    """Text from inputs or options, shown as it is: no markup, no terminal escape sequences."""
    cleaned = "".join(c if c.isprintable() or c == "\n" else f"\\x{ord(c):02x}" for c in text)
    return Text(cleaned)


def drawn(shown: Table, terminal: bool) -> RichTable:
    """The table as rich draws it, cells never cut nor wrapped."""
    table = RichTable(
        title=plain(shown.title),
        box=box.SIMPLE_HEAD if terminal else box.ASCII,
        title_justify="left",
    )
    for name in shown.columns:
        table.add_column(
            name,
            justify="right" if name in shown.numeric else "left",
            no_wrap=True,
        )
    for row in shown.rows:
        table.add_row(*(plain(value) for value in row))
    return table


def fits(table: RichTable, console: Console) -> bool:
    """Whether the table's natural width (measured without the terminal's limit) fits."""
    unbounded = console.options.update_width(1_000_000)
    return Measurement.get(console, unbounded, table).maximum <= console.width


def records(shown: Table, width: int) -> Iterator[str]:
    """The table as one record per line: the leading text columns, then `name value` pairs,
    wrapped onto indented lines between pairs when the line would pass `width`."""
    if shown.heading:
        leading = [shown.columns.index(name) for name in shown.heading]
    else:
        keys = [i for i, name in enumerate(shown.columns) if name not in shown.numeric]
        leading = keys[: next((n for n, i in enumerate(keys) if i != n), len(keys))]
    yield shown.title
    for row in shown.rows:
        line = INDENT + " ".join(row[i] for i in leading if row[i])
        for i, name in enumerate(shown.columns):
            if i in leading:
                continue
            pair = f"{name} {row[i]}" if row[i] else ""
            if not pair:
                continue
            if len(line) + 2 + len(pair) > width and line.strip():
                yield line
                line = INDENT * 2 + pair
            else:
                line += ("  " if line.strip() else "") + pair
        yield line


def show(console: Console, shown: Table) -> None:
    """Print `shown` on `console` whole: a table if it fits, else one record per line."""
    terminal = console.is_terminal
    table = drawn(shown, terminal)
    if not terminal or fits(table, console):
        console.print(table, crop=False)
        return
    for line in records(shown, console.width):
        console.print(plain(line), soft_wrap=True)
