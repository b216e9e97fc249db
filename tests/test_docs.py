"""The docs are a user's reference: no development diary, no paths of one machine.

Rules, for ``docs/*.md`` and ``README.md``:

* no "session <digit>" anywhere (development sessions are history: CHANGELOG.md);
* no ``/work/`` or ``/home/`` anywhere, fenced code included (no reader has those folders);
* no ``/tmp/`` outside fenced code blocks (an example command may write to a temp folder,
  but prose and measurement notes must not point at one machine's scratch files).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

SESSION = re.compile(r"\bsession[ -]?\d", re.IGNORECASE)
MACHINE_PATH = re.compile(r"(?<![\w.~$])/(?:work|home)/")
TMP_PATH = re.compile(r"(?<![\w.~$])/tmp/")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_and_code(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Split a Markdown page into (line number, line) outside and inside fenced blocks."""
    prose: list[tuple[int, str]] = []
    code: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append((number, line))
    return prose, code


def offending_lines(text: str) -> list[str]:
    """Every line of ``text`` that breaks one of the module's rules, as ``N: line``."""
    prose, code = prose_and_code(text)
    bad = [
        (n, line) for n, line in prose + code if SESSION.search(line) or MACHINE_PATH.search(line)
    ]
    bad += [(n, line) for n, line in prose if TMP_PATH.search(line)]
    return [f"{n}: {line.strip()}" for n, line in sorted(set(bad))]


def test_the_rules_catch_what_they_name() -> None:
    page = "\n".join(
        [
            "Measured in session 8 on a quiet machine.",
            "Data in /work/shared/data/mnist.",
            "Output in /tmp/run/results.",
            "```bash",
            "cipherfuse reproduce all --out /tmp/results",
            "ls /home/user",
            "```",
            "Paths like ~/tmp/x, $TMPDIR/tmp/x and a.b/tmp/x are not absolute.",
            "A session key and sessions of 3 are fine; so is /workspace.",
        ]
    )
    assert offending_lines(page) == [
        "1: Measured in session 8 on a quiet machine.",
        "2: Data in /work/shared/data/mnist.",
        "3: Output in /tmp/run/results.",
        "6: ls /home/user",
    ]


def test_an_unclosed_fence_keeps_its_lines_as_code() -> None:
    prose, code = prose_and_code("text\n```\ncipherfuse demo --workdir /tmp/x\n")
    assert prose == [(1, "text")]
    assert code == [(3, "cipherfuse demo --workdir /tmp/x")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_has_no_history_or_machine_paths(page: Path) -> None:
    bad = offending_lines(page.read_text(encoding="utf-8"))
    assert not bad, f"{page.relative_to(ROOT)}:\n" + "\n".join(bad)


def test_every_doc_page_is_checked() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "models.md", "deviations.md", "results.md"} <= names
