"""Integer-vector homomorphic encryption (Zhou & Wornell), as the paper uses it.

A ciphertext ``c`` of ``x`` in Z_t^m under the secret ``S = [I, T]`` satisfies
``S c = w x + e (mod 2^64)``; decryption is ``round(S c / w)`` (paper Eqs. 1-2,
17-18). Key switching goes through the digit decomposition ``c*`` and the
public matrix ``M = [S* - T A + E; A]`` (Eqs. 3-7). Supported operations:
addition, integer scaling, plaintext-weighted sums (Eq. 21), linear
transformations, key switching and (weighted) inner products of two
ciphertexts (Eq. 44).

Parameter sets: :data:`PAPER` reproduces the paper and is **insecure** (its
secret falls to least squares, see :mod:`cipherfuse.he.attack`); :data:`SECURE`
targets 128-bit security (docs/he.md). The arithmetic runs in the C++ core;
:mod:`cipherfuse.he.reference` is the numpy reference of the same kernels.

Example::

    from cipherfuse import he
    sk = he.keygen(he.SECURE, m=4, seed=bytes(32))
    pk = he.public_keygen(sk)
    ct = he.encrypt(pk, [1, -2, 3, 4])
    he.decrypt(sk, he.mul_scalar(ct, 3))   # array([ 3, -6,  9, 12])
"""

from __future__ import annotations

from cipherfuse.he.backend import CppKernels, Kernels, get_kernels, use_kernels
from cipherfuse.he.ciphertext import Ciphertext
from cipherfuse.he.errors import (
    HEError,
    KeyMismatchError,
    NoiseBudgetExceeded,
    ParameterError,
    PlaintextOverflow,
    ResourceLimitExceeded,
    SerializationError,
)
from cipherfuse.he.keys import (
    KeySwitchKey,
    PublicKey,
    SecretKey,
    identity_switch_key,
    keygen,
    public_keygen,
    switch_key,
)
from cipherfuse.he.params import PAPER, SECURE, HEParams, get_params
from cipherfuse.he.products import (
    inner_product,
    inner_product_key,
    linear_transform,
    linear_transform_key,
)
from cipherfuse.he.reference import ReferenceKernels
from cipherfuse.he.scheme import (
    add,
    decrypt,
    encrypt,
    encrypt_paper,
    encrypt_symmetric,
    keyswitch,
    linear_combination,
    mul_scalar,
    noise,
    stack,
    sub,
)
from cipherfuse.he.serialize import dumps, load, loads, save

__all__ = [
    "PAPER",
    "SECURE",
    "Ciphertext",
    "CppKernels",
    "HEError",
    "HEParams",
    "Kernels",
    "KeyMismatchError",
    "KeySwitchKey",
    "NoiseBudgetExceeded",
    "ParameterError",
    "PlaintextOverflow",
    "PublicKey",
    "ReferenceKernels",
    "ResourceLimitExceeded",
    "SecretKey",
    "SerializationError",
    "add",
    "decrypt",
    "dumps",
    "encrypt",
    "encrypt_paper",
    "encrypt_symmetric",
    "get_kernels",
    "get_params",
    "identity_switch_key",
    "inner_product",
    "inner_product_key",
    "keygen",
    "keyswitch",
    "linear_combination",
    "linear_transform",
    "linear_transform_key",
    "load",
    "loads",
    "mul_scalar",
    "noise",
    "public_keygen",
    "save",
    "stack",
    "sub",
    "switch_key",
    "use_kernels",
]
