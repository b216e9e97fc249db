"""Coverage-guided fuzzing of one decoder with atheris (libFuzzer), for long runs.

Usage (needs ``pip install atheris``)::

    python -m tests.fuzz.atheris_main --list
    python -m tests.fuzz.atheris_main he.loads -max_total_time=3600 corpus_dir/

Any exception other than a :class:`~cipherfuse.errors.CipherfuseError` (and any accepted
input that does not re-encode to itself) is reported by libFuzzer as a crash, with the
input saved. The valid samples and the hostile corpus of :mod:`tests.fuzz.targets` seed
the run when no corpus directory is given.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> None:
    """Parse the target name, seed a corpus, hand the rest of argv to libFuzzer."""
    import atheris

    with atheris.instrument_imports():
        from tests.fuzz.targets import TARGETS, hostile_corpus
        from tests.fuzz.test_fuzz_decoders import check

    if len(sys.argv) < 2 or sys.argv[1] == "--list":
        print("\n".join(sorted(TARGETS)))
        return
    name = sys.argv[1]
    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        check(target, data)

    args = [sys.argv[0], *sys.argv[2:]]
    if not any(not a.startswith("-") for a in sys.argv[2:]):
        seeds = Path(tempfile.mkdtemp(prefix="cipherfuse-fuzz-"))
        for i, sample in enumerate([*target.samples(), *hostile_corpus().get(name, [])]):
            (seeds / f"seed-{i}").write_bytes(sample)
        args.append(str(seeds))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
