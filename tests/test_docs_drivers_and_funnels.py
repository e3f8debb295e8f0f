"""docs/drivers-and-funnels.md runs as written: every Python block of the page, each on
its own (the blocks import what they use and assert their own results)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "drivers-and-funnels.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_a_funnel_and_a_drivers_example() -> None:
    assert len(BLOCKS) == 2
    assert "funnel(" in BLOCKS[0] and "cox_drivers(" in BLOCKS[1]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(BLOCKS[index], f"{PAGE.name}[block {index + 1}]", "exec"), namespace)
    assert capsys.readouterr().out  # each example prints what it shows
