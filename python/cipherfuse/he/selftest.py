"""End-to-end self-test of the HE core: C++ kernels against the numpy reference.

Runs every operation under both kernel sets with the same seeds, checks the
ciphertexts are bit-identical and the decryptions correct, and reports timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cipherfuse.he import scheme
from cipherfuse.he.backend import use_kernels
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.keys import (
    KeySwitchKey,
    PublicKey,
    identity_switch_key,
    keygen,
    public_keygen,
    switch_key,
)
from cipherfuse.he.params import HEParams


@dataclass(frozen=True)
class SelftestRow:
    """One operation of the self-test."""

    params: str
    operation: str
    correct: bool
    bit_identical: bool
    cpp_seconds: float
    reference_seconds: float


def _seed(i: int) -> bytes:
    return bytes([i]) * 32


def _operations(
    x: np.ndarray,
    g: np.ndarray,
    pk: PublicKey,
    ksk: KeySwitchKey,
    ident: KeySwitchKey,
    ct: Ciphertext,
) -> dict[str, Callable[[], Ciphertext]]:
    return {
        "encrypt": lambda: scheme.encrypt(pk, x, seed=_seed(6)),
        "encrypt_paper": lambda: scheme.encrypt_paper(ident, x[0]),
        "add": lambda: scheme.add(ct, ct),
        "linear_combination": lambda: scheme.linear_combination(g, ct),
        "keyswitch": lambda: scheme.keyswitch(ksk, ct),
        "keyswitch_single": lambda: scheme.keyswitch(ksk, ct[0]),
    }


def run_selftest(params_list: list[HEParams], m: int = 32, batch: int = 16) -> list[SelftestRow]:
    """Runs the self-test; every row must have ``correct`` and ``bit_identical`` true."""
    rows: list[SelftestRow] = []
    for params in params_list:
        rng = np.random.default_rng(0)
        x = rng.integers(-1000, 1000, size=(batch, m))
        g = rng.integers(-50, 50, size=(4, batch))
        results: dict[str, dict[str, tuple[Ciphertext, float]]] = {}
        for kernels in ("cpp", "reference"):
            with use_kernels(kernels):
                sk = keygen(params, m, seed=_seed(1))
                sk2 = keygen(params, m, seed=_seed(2))
                pk = public_keygen(sk, seed=_seed(3))
                ksk = switch_key(sk, sk2, seed=_seed(4))
                ident = identity_switch_key(sk, seed=_seed(5))
                ct = scheme.encrypt(pk, x, seed=_seed(6))
                ops = _operations(x, g, pk, ksk, ident, ct)
                out: dict[str, tuple[Ciphertext, float]] = {}
                for name, op in ops.items():
                    start = time.perf_counter()
                    res = op()
                    out[name] = (res, time.perf_counter() - start)
                results[kernels] = out
        expected = {
            "encrypt": x,
            "encrypt_paper": x[0],
            "add": 2 * x,
            "linear_combination": g @ x,
            "keyswitch": x,
            "keyswitch_single": x[0],
        }
        with use_kernels("cpp"):
            sk = keygen(params, m, seed=_seed(1))
            sk2 = keygen(params, m, seed=_seed(2))
            for name, (ct_cpp, t_cpp) in results["cpp"].items():
                ct_ref, t_ref = results["reference"][name]
                key = sk2 if name.startswith("keyswitch") else sk
                correct = bool(np.array_equal(scheme.decrypt(key, ct_cpp), expected[name]))
                rows.append(
                    SelftestRow(
                        params.name,
                        name,
                        correct,
                        bool(np.array_equal(ct_cpp.data, ct_ref.data)),
                        t_cpp,
                        t_ref,
                    )
                )
    return rows
