"""The approver's name (docs/payments.md, "The approver's name"): a name that shows nothing is
refused by `release` (exit 2, before anything else) and by the approval form; a real name in
any script is accepted, invisible characters inside it included."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.errors import UsageError
from flows.release import check_approver, is_blank_name

BLANK_NAMES = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="ASCII-spaces"),
    pytest.param("\t\n\r", id="tab-and-line-ends"),
    pytest.param("\u00a0", id="no-break-space-Zs"),
    pytest.param("\u3000", id="ideographic-space-Zs"),
    pytest.param("\u2003\u2009\u202f", id="em-thin-narrow-spaces-Zs"),
    pytest.param("\u2028", id="line-separator-Zl"),
    pytest.param("\u2029", id="paragraph-separator-Zp"),
    pytest.param("\u200b", id="zero-width-space-Cf"),
    pytest.param("\u200d\u200c", id="zero-width-joiner-and-non-joiner-Cf"),
    pytest.param("\u2060\ufeff", id="word-joiner-and-BOM-Cf"),
    pytest.param("\u202e\u2066", id="bidi-controls-Cf"),
    pytest.param("\u00ad", id="soft-hyphen-Cf"),
    pytest.param("\x00\x1b\x7f", id="controls-Cc"),
    pytest.param("\x85", id="next-line-Cc"),
    pytest.param("\ue000", id="private-use-Co"),
    pytest.param("\U000e0001\U000e0020", id="tag-characters-Cf"),
    pytest.param("\u0378", id="unassigned-Cn"),
    pytest.param("\udc80", id="lone-surrogate-Cs"),
    pytest.param("\u3164", id="HANGUL-FILLER"),
    pytest.param("\u115f\u1160", id="Hangul-choseong-and-jungseong-fillers"),
    pytest.param("\uffa0", id="HALFWIDTH-HANGUL-FILLER"),
    pytest.param("\u2800", id="BRAILLE-PATTERN-BLANK"),
    pytest.param(" \u3164\u200b\u2800\u00a0", id="blanks-of-every-kind-together"),
]

REAL_NAMES = [
    pytest.param("Megan Bowen", "Megan Bowen", id="Latin"),
    pytest.param("Zoë", "Zoë", id="Latin-with-diaeresis"),
    pytest.param("李雷", "李雷", id="Han"),
    pytest.param("محمد", "محمد", id="Arabic"),
    pytest.param("Ærøskøbing Ólafsdóttir", "Ærøskøbing Ólafsdóttir", id="Nordic"),
    pytest.param("Дмитрий", "Дмитрий", id="Cyrillic"),
    pytest.param("김민준", "김민준", id="Hangul-syllables"),
    pytest.param("Ng\u200dozi", "Ng\u200dozi", id="inner-zero-width-joiner"),
    pytest.param("علی\u200cرضا", "علی\u200cرضا", id="Persian-with-inner-zero-width-non-joiner"),
    pytest.param("Megan\u00a0Bowen", "Megan\u00a0Bowen", id="inner-no-break-space"),
    pytest.param("  Megan Bowen\u200b\u3164 ", "Megan Bowen", id="blanks-around-are-dropped"),
    pytest.param("A", "A", id="one-letter"),
    pytest.param("\u3164X", "X", id="a-filler-before-a-letter"),
]


@pytest.mark.parametrize("name", BLANK_NAMES)
def test_a_blank_name_is_refused(name: str) -> None:
    assert is_blank_name(name)
    with pytest.raises(UsageError, match="--approved-by: give the name of the person"):
        check_approver(name)


@pytest.mark.parametrize(("name", "kept"), REAL_NAMES)
def test_a_real_name_is_accepted(name: str, kept: str) -> None:
    assert not is_blank_name(name)
    assert check_approver(name) == kept


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Megan\nBowen", id="line-break"),
        pytest.param("Megan\x1b[31mBowen", id="terminal-escape"),
    ],
)
def test_a_control_character_inside_a_name_is_refused(name: str) -> None:
    assert not is_blank_name(name)
    with pytest.raises(UsageError, match="--approved-by: .*control character"):
        check_approver(name)


@pytest.mark.parametrize("name", ["\u3164", "\u2800", "\u200b\u00a0", "\uffa0"])
def test_release_refuses_a_blank_name_before_anything_else(name: str, tmp_path: Path) -> None:
    """Judged first: the month is not even published here."""
    args = ["release", "--month", "2026-04", "--run", "x", "--approved-by", name]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "--approved-by: give the name of the person who approves the batch" in result.stderr
    assert not (tmp_path / "out").exists()
