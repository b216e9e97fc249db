"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = _bash_blocks(readme)
    test_commands = [b for b in blocks if b.endswith("pytest")]
    assert len(test_commands) == 1, f"README must hold exactly one test command, found {blocks}"
    assert test_commands[0] in ci.splitlines(), "CI must run the README's test command verbatim"


def test_readme_main_command_runs_a_cipherfuse_job() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    mains = [b for b in blocks if "cipherfuse " in b and not b.endswith("pytest")]
    assert mains, "README must hold the install-and-run command"
    assert mains[0].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install")


def test_ci_runs_the_readme_main_command_in_a_fresh_clone() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    mains = [b for b in blocks if "cipherfuse " in b and not b.endswith("pytest")]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert mains[0] in ci_lines, "CI must run the README's first command verbatim"


def _files(patterns: list[str]) -> set[str]:
    return {str(p.relative_to(ROOT)) for pattern in patterns for p in ROOT.glob(pattern)}


def test_readme_names_the_benchmarks_ci_smoke_runs() -> None:
    paragraph = next(p for p in (ROOT / "README.md").read_text().split("\n\n") if "smoke pass" in p)
    claimed = _files(re.findall(r"`(bench/[^`]+\.py)`", paragraph))
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    step = next(i for i, line in enumerate(lines) if line.startswith("step") and "smoke" in line)
    command = next(line for line in lines[step + 1 :] if line.startswith("pytest"))
    run = _files([arg for arg in command.split() if arg.startswith("bench/")])
    assert claimed, "README must name the benchmarks CI smoke-runs"
    assert claimed == run, f"README names {sorted(claimed)}, CI smoke-runs {sorted(run)}"


@pytest.mark.parametrize("name", ["CMakeLists.txt", "pyproject.toml", ".ci/run", "docs"])
def test_layout(name: str) -> None:
    assert (ROOT / name).exists()


def test_readme_python_example_runs() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README must hold an API example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def _result(experiment: str, name: str) -> tuple[float, float | None]:
    import json

    body = json.loads((ROOT / "results" / f"{experiment}.json").read_text())
    rows = [r for r in body["rows"] if r["name"] == name]
    assert len(rows) == 1, (experiment, name)
    return float(rows[0]["ours"]), rows[0]["paper"]


# Every result the README's status table quotes: (text in the README, experiment, row name,
# how the README rounds it).
README_RESULTS = [
    ("{ours:.2f} % plain", "case3", "MetaModel accuracy, strategy II, original, models {1,2,3}", 2),
    (
        "{ours:.2f} % at p = 2^7, paper {paper:.1f} %",
        "case3",
        "MetaModel accuracy, strategy II, first layer p=2^7 q=1000, models {1,2,3}",
        2,
    ),
    ("{ours:.1f}x IID", "case4", "iid: byte ratio, FedAvg to reach / one-shot", 1),
    ("{ours:.1f}x partial", "case4", "partial: byte ratio, FedAvg to reach / one-shot", 1),
]


@pytest.mark.parametrize(("template", "experiment", "name", "digits"), README_RESULTS)
def test_readme_results_match_the_committed_results(
    template: str, experiment: str, name: str, digits: int
) -> None:
    ours, paper = _result(experiment, name)
    text = template.format(ours=round(ours, digits), paper=paper)
    assert text in (ROOT / "README.md").read_text(), (
        f"README should say {text!r} (results/{experiment}.json)"
    )
