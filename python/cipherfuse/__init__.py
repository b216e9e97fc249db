"""cipherfuse: decentralized, verifiable, privacy-preserving model building.

A reproduction-grade implementation of Mendis et al., "A Blockchain-Powered
Decentralized and Secure Computing Paradigm" (arXiv:1807.02515): integer-vector
homomorphic encryption (:mod:`cipherfuse.he`), smart-contract coordination
(:mod:`cipherfuse.chain`), content-addressed storage (:mod:`cipherfuse.storage`),
models and fusion (:mod:`cipherfuse.nn`, :mod:`cipherfuse.fusion`) and the roles
that tie them together (:mod:`cipherfuse.roles`).

The one-call entry point is :func:`run_demo` (the ``cipherfuse demo`` command)::

    import cipherfuse
    result = cipherfuse.run_demo(quick=True, log=print)
    print(result.final_accuracy, result.accepted_models)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cipherfuse.errors import CipherfuseError

if TYPE_CHECKING:
    from cipherfuse.api import run_demo
    from cipherfuse.roles.demo_summary import DemoResult

__version__ = "0.1.0"

__all__ = ["CipherfuseError", "DemoResult", "__version__", "run_demo"]


def __getattr__(name: str) -> Any:
    # run_demo pulls in JAX and web3; import it only when asked for.
    if name == "run_demo":
        from cipherfuse.api import run_demo

        return run_demo
    if name == "DemoResult":
        from cipherfuse.roles.demo_summary import DemoResult

        return DemoResult
    raise AttributeError(f"module 'cipherfuse' has no attribute {name!r}")
