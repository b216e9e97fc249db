"""cipherfuse: decentralized, verifiable, privacy-preserving model building.

A reproduction-grade implementation of Mendis et al., "A Blockchain-Powered
Decentralized and Secure Computing Paradigm" (arXiv:1807.02515): integer-vector
homomorphic encryption (:mod:`cipherfuse.he`), smart-contract coordination
(:mod:`cipherfuse.chain`), content-addressed storage (:mod:`cipherfuse.storage`),
models and fusion (:mod:`cipherfuse.nn`, :mod:`cipherfuse.fusion`) and the roles
that tie them together (:mod:`cipherfuse.roles`).
"""

from cipherfuse.errors import CipherfuseError

__version__ = "0.1.0"

__all__ = ["CipherfuseError", "__version__"]
