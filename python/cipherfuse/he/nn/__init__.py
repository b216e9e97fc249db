"""Encrypted neural-network layers on the IVHE scheme (paper Sec. V-B2, Figs. 5-6).

The agreed interface::

    from cipherfuse.he.nn import (
        EncryptedModel, encrypt_model, decrypt_model, cipherspace_features, EncryptionStrategy,
    )

A contributor encrypts its model's first layer with the initiator's public key
(:func:`encrypt_model`), ships the bytes (:meth:`EncryptedModel.to_bytes`), a
verifier evaluates it without any secret key (:func:`cipherspace_features`),
and the initiator decrypts after acceptance (:func:`decrypt_model`).

The building blocks (one GEMM per layer on the C++ kernels): encrypted
dense/conv layers (:mod:`.layers`), ReLU on ciphertext components
(:mod:`.activations`), sum pooling, and the two encryption strategies
(:mod:`.strategies`). See docs/he-nn.md for what is exact when, and what the
paper's scheme does and does not protect.
"""

from __future__ import annotations

from cipherfuse.geometry import im2col
from cipherfuse.he.nn.activations import ReluReport, relu_components, taylor_sigmoid
from cipherfuse.he.nn.block import first_block
from cipherfuse.he.nn.errors import CipherspaceError
from cipherfuse.he.nn.layers import (
    conv_on_encrypted,
    dense_on_encrypted,
    encrypted_conv,
    encrypted_conv2d,
    encrypted_dense,
    sum_pool,
)
from cipherfuse.he.nn.model import (
    EncryptedModel,
    cipherspace_features,
    decrypt_model,
    encrypt_model,
    evaluate_first_block,
)
from cipherfuse.he.nn.strategies import (
    EncryptedWeights,
    EncryptionStrategy,
    decrypt_weights,
    encrypt_weights,
)
from cipherfuse.he.nn.tensor import (
    CipherTensor,
    decrypt_tensor,
    leading_is_plaintext,
    scale_down,
)

__all__ = [
    "CipherTensor",
    "CipherspaceError",
    "EncryptedModel",
    "EncryptedWeights",
    "EncryptionStrategy",
    "ReluReport",
    "cipherspace_features",
    "conv_on_encrypted",
    "decrypt_model",
    "decrypt_tensor",
    "decrypt_weights",
    "dense_on_encrypted",
    "encrypt_model",
    "encrypt_weights",
    "encrypted_conv",
    "encrypted_conv2d",
    "encrypted_dense",
    "evaluate_first_block",
    "first_block",
    "im2col",
    "leading_is_plaintext",
    "relu_components",
    "scale_down",
    "sum_pool",
    "taylor_sigmoid",
]
