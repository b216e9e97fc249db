"""Progress bars show on a terminal only."""

from __future__ import annotations

import pytest

from cipherfuse.nn.progress import progress


def test_silent_when_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(5), desc="x", total=5, enabled=None)) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def test_forced_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), desc="epochs", total=3, enabled=True)) == [0, 1, 2]
    assert "epochs" in capsys.readouterr().err
