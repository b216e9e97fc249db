"""Encrypted models: the agreed interface (``encrypt_model``, ``cipherspace_features``,
``decrypt_model``) on top of the encrypted layers.

Only the first weight layer (and its bias) is encrypted, as in the paper
(Sec. V-B2: "it is reasonable to focus on encrypting Weight Matrix 1 only");
the remaining layers travel in plaintext. The first *block* (the first
conv/dense layer, its activation and the pooling right after it, exactly
:func:`cipherfuse.nn.quantize.first_block_end`) is evaluated in cipherspace by
the verifier; see docs/he-nn.md for what that means for each parameter set.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from cipherfuse.errors import SerializationError
from cipherfuse.fusion.features import FeatureExtractor, PrefixFeatures, descale
from cipherfuse.he.backend import CppKernels, get_kernels, use_kernels
from cipherfuse.he.errors import HEError, KeyMismatchError, ParameterError
from cipherfuse.he.keys import KeySwitchKey, PublicKey, SecretKey
from cipherfuse.he.nn.activations import ReluReport, relu_components
from cipherfuse.he.nn.block import FirstBlock, first_block
from cipherfuse.he.nn.errors import CipherspaceError
from cipherfuse.he.nn.layers import encrypted_conv, encrypted_dense, sum_pool
from cipherfuse.he.nn.limbs import LimbPlan, limb_plan
from cipherfuse.he.nn.serialize import (
    EncryptedModelParts,
    encrypted_model_from_bytes,
    encrypted_model_to_bytes,
)
from cipherfuse.he.nn.strategies import (
    EncryptedWeights,
    EncryptionStrategy,
    check_strategy,
    decrypt_weights,
    encrypt_weights,
)
from cipherfuse.he.nn.tensor import (
    CipherTensor,
    all_leading_plaintext,
    leading_is_plaintext,
    scale_down,
)
from cipherfuse.he.params import HEParams
from cipherfuse.nn.config import ConvSpec, ModelConfig
from cipherfuse.nn.model import TrainedModel
from cipherfuse.nn.quantize import (
    QuantizedConv,
    QuantizedDense,
    quantize_inputs,
    quantize_model,
)

FloatArray = npt.NDArray[np.float32]
I64Array = npt.NDArray[np.int64]

#: Largest encrypted first-layer output materialized at once (bytes) in cipherspace_features.
FEATURE_BLOCK_BYTES = 32 << 20
#: Images per block on the limb path (:mod:`cipherfuse.he.nn.limbs`), and its padding unit.
LIMB_BLOCK = 256
LIMB_PAD = 32


@dataclass(frozen=True, eq=False)
class EncryptedModel:
    """A contributor's model with its first weight layer encrypted.

    Attributes:
        config: the architecture (public).
        labels: the labels the model was trained on.
        strategy: ``"element-wise"`` or ``"matrix-pair-wise"``.
        weight_scale: ``p``; input_scale: ``q``.
        weights: the encrypted integer first-layer weights and bias
            (``round(p w)``, ``round(p q b)``).
        plain_params: every other layer's float parameters (Flax state dict of
            float32 numpy arrays; the first layer's entry is absent).
    """

    config: ModelConfig
    labels: tuple[int, ...]
    strategy: EncryptionStrategy
    weight_scale: int
    input_scale: int
    weights: EncryptedWeights
    plain_params: dict[str, Any] = field(repr=False)

    def __post_init__(self) -> None:
        check_strategy(self.strategy)
        if self.weights.strategy != self.strategy:
            raise ParameterError("weights were encrypted with a different strategy")
        block = self.block
        name = f"layer_{block.layer_index}"
        if name in self.plain_params:
            raise ParameterError(f"plain_params must not contain the encrypted layer {name}")

    @property
    def params(self) -> HEParams:
        """The HE parameter set."""
        return self.weights.params

    @property
    def params_name(self) -> str:
        """``"paper"`` or ``"secure"`` (the parameter set's name)."""
        return self.weights.params.name

    @property
    def key_fingerprint(self) -> str:
        """Id of the secret key the model was encrypted under."""
        return self.weights.key_id

    @property
    def block(self) -> FirstBlock:
        """The public structure of the block evaluated in cipherspace."""
        return first_block(self.config, self.weight_scale, self.input_scale)

    def to_bytes(self) -> bytes:
        """Versioned, checksummed, schema-checked bytes (see :mod:`cipherfuse.he.nn.serialize`)."""
        return encrypted_model_to_bytes(
            EncryptedModelParts(
                config=self.config,
                labels=self.labels,
                strategy=self.strategy,
                weight_scale=self.weight_scale,
                input_scale=self.input_scale,
                weights=self.weights,
                plain_params=self.plain_params,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedModel:
        """Parse :meth:`to_bytes` output; raises :class:`cipherfuse.errors.SerializationError`."""
        parts = encrypted_model_from_bytes(data)
        try:
            return cls(
                config=parts.config,
                labels=parts.labels,
                strategy=parts.strategy,
                weight_scale=parts.weight_scale,
                input_scale=parts.input_scale,
                weights=parts.weights,
                plain_params=parts.plain_params,
            )
        except (HEError, TypeError, ValueError, ArithmeticError, KeyError, IndexError) as exc:
            raise SerializationError(f"invalid encrypted model: {exc}") from None


def _state_dict(params: Any) -> dict[str, Any]:
    def conv(node: Any) -> Any:
        if isinstance(node, dict) or hasattr(node, "items"):
            return {str(k): conv(v) for k, v in node.items()}
        return np.asarray(node, dtype=np.float32)

    out = conv(params)
    assert isinstance(out, dict)
    return out


def encrypt_model(
    model: TrainedModel,
    key: KeySwitchKey | PublicKey,
    *,
    weight_scale: int = 2**7,
    input_scale: int = 1000,
    strategy: EncryptionStrategy = "element-wise",
    seed: bytes | None = None,
) -> EncryptedModel:
    """Quantize the model's first block and encrypt its first layer's weights and bias.

    ``key``: the paper's ``M`` (a :class:`KeySwitchKey` from
    :func:`cipherfuse.he.identity_switch_key`, deterministic encryption) for
    ``paper`` parameters, or a :class:`PublicKey` (randomized) for ``secure``.
    Its plaintext length must be 1 (element-wise) or the first layer's number
    of outputs (matrix-pair-wise). ``seed``: 32 bytes of encryption
    randomness (``None``: fresh from the OS).

    Raises:
        ParameterError: bad scales, strategy, key length or seed.
        CipherspaceError: the first block cannot run in cipherspace (max pooling).
        PlaintextOverflow: the quantized weights do not fit the plaintext space.
    """
    strat = check_strategy(strategy)
    if not isinstance(key, KeySwitchKey | PublicKey):
        raise ParameterError(
            f"key must be the initiator's KeySwitchKey (paper) or PublicKey, got {type(key)}"
        )
    block = first_block(model.config, int(weight_scale), int(input_scale))
    quantized = quantize_model(
        model, weight_scale=weight_scale, input_scale=input_scale, n_layers=block.resume_layer
    )
    layer = next(x for x in quantized.layers if isinstance(x, QuantizedConv | QuantizedDense))
    weights = encrypt_weights(layer.weight, layer.bias, key, strategy=strat, seed=seed)
    plain = _state_dict(model.params)
    plain.pop(f"layer_{block.layer_index}", None)
    return EncryptedModel(
        config=model.config,
        labels=tuple(int(v) for v in model.labels),
        strategy=strat,
        weight_scale=int(weight_scale),
        input_scale=int(input_scale),
        weights=weights,
        plain_params=plain,
    )


def decrypt_model(enc: EncryptedModel, sk: SecretKey) -> TrainedModel:
    """Decrypt the first layer and return a plaintext TrainedModel.

    First-layer weights become ``decrypted integers / p`` and the bias
    ``decrypted integers / (p q)``: exactly the quantized model.
    """
    if sk.key_id != enc.key_fingerprint or sk.params != enc.params:
        raise KeyMismatchError(
            f"the model is encrypted under key {enc.key_fingerprint} ({enc.params_name}); this "
            f"secret key is {sk.key_id} ({sk.params.name})"
        )
    w, b = decrypt_weights(sk, enc.weights)
    p, q = enc.weight_scale, enc.input_scale
    params: dict[str, Any] = {k: v for k, v in enc.plain_params.items()}
    params[f"layer_{enc.block.layer_index}"] = {
        "kernel": (w.astype(np.float64) / p).astype(np.float32),
        "bias": (b.astype(np.float64) / (p * q)).astype(np.float32),
    }
    tree = _to_jax(params)
    return TrainedModel(config=enc.config, params=tree, labels=enc.labels)


def _to_jax(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _to_jax(v) for k, v in node.items()}
    return jnp.asarray(node)


def evaluate_first_block(
    enc: EncryptedModel, x_int: npt.ArrayLike, *, strict: bool = True
) -> tuple[CipherTensor, ReluReport | None]:
    """The verifier's cipherspace evaluation of the first block on quantized inputs.

    Encrypted conv/dense (one GEMM) -> activation on components -> sum pooling.
    Every step checks its noise bound (Eqs. 26, 34, 42) before computing.

    Raises:
        NoiseBudgetExceeded: a bound fails (``strict``: also when ReLU is not
            guaranteed exact).
        CipherspaceError: the Taylor-sigmoid first layer (needs ct x ct
            products; see :mod:`cipherfuse.he.nn.activations`).
    """
    block = enc.block
    x = np.asarray(x_int)
    spec = block.weight
    if isinstance(spec, ConvSpec):
        ct = encrypted_conv(
            x, enc.weights, stride=spec.strides, padding=spec.padding, layer="layer_0 (conv)"
        )
    else:
        ct = encrypted_dense(x.reshape(x.shape[0], -1), enc.weights, layer="dense")
    report: ReluReport | None = None
    if spec.activation == "relu":
        ct, report = relu_components(ct, layer=f"layer_{block.layer_index} relu", strict=strict)
    elif spec.activation == "taylor_sigmoid":
        raise CipherspaceError(
            "a Taylor-sigmoid first layer needs ciphertext x ciphertext products per "
            "output (paper Eq. 44); cipherspace_features supports ReLU and linear first layers"
        )
    if block.pool is not None:
        ct = sum_pool(
            ct, block.pool.window, block.pool.strides, layer=f"layer_{block.resume_layer - 1} pool"
        )
    return ct, report


def _generic_block(enc: EncryptedModel, x_int: I64Array) -> I64Array:
    """Scaled-down first block on whole 64-bit words (C++ GEMM): the reference path."""
    ct, _ = evaluate_first_block(enc, x_int, strict=True)
    if not all_leading_plaintext(ct):
        ok = leading_is_plaintext(ct)
        raise CipherspaceError(
            f"scaling down the leading ciphertext components is not guaranteed exact "
            f"for {int((~ok).sum())} of {ok.size} outputs (|e| + |T c_1| may reach "
            "w/2); lower q or p"
        )
    return scale_down(ct)


def _limb_block(
    plan: LimbPlan, x_int: I64Array, out: npt.NDArray[Any] | None, scale: int
) -> npt.NDArray[Any] | None:
    """:meth:`LimbPlan.run` on ``x_int`` (into ``out`` when given and the C++ kernel runs).

    The XLA function gets the block padded to a multiple of LIMB_PAD images (few
    distinct shapes: few compilations); the C++ kernel takes any count as it is.
    """
    if isinstance(get_kernels(), CppKernels):
        return plan.run(x_int, out=out, scale=scale)
    n = x_int.shape[0]
    padded = -(-n // LIMB_PAD) * LIMB_PAD
    if padded != n:
        x_int = np.concatenate([x_int, np.zeros((padded - n, *x_int.shape[1:]), np.int64)])
    result = plan.run(x_int, scale=scale)
    return None if result is None else result[:n]


@dataclass
class _Prefix:
    """The cipherspace first block of ``enc`` over a batch, as integers or descaled floats.

    ``integers(x)`` returns the scaled-down features and their scale (the
    :class:`PrefixFeatures` contract); ``descaled(x)`` returns them already divided
    by that scale in float32, which the limb kernel does as it stores (one pass
    and a float32 array instead of an int64 one plus a conversion; bit-identical
    to :func:`cipherfuse.fusion.features.descale` of the integers).
    """

    enc: EncryptedModel
    plan: LimbPlan | None
    verified: bool = False  # the limb path agreed with the 64-bit one on a first block

    def integers(self, x: FloatArray) -> tuple[I64Array, int]:
        out: I64Array = self._gather(x, 0)
        return out, self.enc.block.output_scale

    def descaled(self, x: FloatArray) -> FloatArray:
        scale = self.enc.block.output_scale
        if not 1 <= scale < 1 << 24:
            ints, _ = self.integers(x)
            return descale(ints, scale)
        out: FloatArray = self._gather(x, scale)
        return out

    def descaled_overlapped(self, x: FloatArray) -> FloatArray:
        """:meth:`descaled` while XLA runs the previous block: C++ kernels on half the cores.

        The two then share the machine instead of both forking onto every core (on
        two cores: one each). Same values; kernels other than the all-threads C++
        ones are used as they are.
        """
        kernels = get_kernels()
        if not isinstance(kernels, CppKernels) or kernels.threads != 0:
            return self.descaled(x)
        with use_kernels(CppKernels(isa=kernels.isa, threads=_overlapped_threads())):
            return self.descaled(x)

    def _generic(self, chunk: I64Array, scale: int) -> npt.NDArray[Any]:
        ints = _generic_block(self.enc, chunk)
        return descale(ints, scale) if scale else ints

    def _gather(self, x: FloatArray, scale: int) -> npt.NDArray[Any]:
        enc = self.enc
        x_int = quantize_inputs(x, enc.input_scale)
        step = LIMB_BLOCK
        if self.plan is None:
            step = max(1, FEATURE_BLOCK_BYTES // _block_bytes(enc, x_int.shape[1:]))
        n = x_int.shape[0]
        gathered: npt.NDArray[Any] | None = None  # allocated once the first block is known
        for start in range(0, n, step):
            chunk = x_int[start : start + step]
            target = None if gathered is None else gathered[start : start + chunk.shape[0]]
            fast = None if self.plan is None else _limb_block(self.plan, chunk, target, scale)
            if fast is not None and not self.verified:
                # Once per model, a cross-check against the 64-bit path guards the
                # float32 exactness argument against an inexact convolution algorithm.
                if np.array_equal(fast[:2], self._generic(chunk[:2], scale)):
                    self.verified = True
                else:
                    warnings.warn(
                        "the limb evaluation of the first block disagrees with the 64-bit "
                        "path on this machine; using the 64-bit path",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                    self.plan, fast = None, None
            features = fast if fast is not None else self._generic(chunk, scale)
            if gathered is None:
                gathered = _aligned_empty((n, *features.shape[1:]), features.dtype)
            if features is not target:  # the C++ limb kernel wrote into place already
                gathered[start : start + chunk.shape[0]] = features
        if gathered is None:  # no images
            gathered = self._generic(x_int, scale)
        return gathered


def _overlapped_threads() -> int:
    """C++ kernel threads for a first block that overlaps XLA's layers: half the cores."""
    return max(1, (os.cpu_count() or 1) // 2)


def _aligned_empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """``np.empty`` starting on a 64-byte boundary (XLA on CPU then reads it without a copy)."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out: npt.NDArray[Any] = raw[start : start + nbytes].view(dt).reshape(shape)
    return out


def _prefix(enc: EncryptedModel, limbs: bool) -> _Prefix:
    block = enc.block
    plan = (
        limb_plan(enc.weights, block.weight, block.pool)
        if limbs and isinstance(block.weight, ConvSpec)
        else None
    )
    return _Prefix(enc, plan)


def _block_bytes(enc: EncryptedModel, sample_shape: tuple[int, ...]) -> int:
    n = enc.weights.m + enc.params.lwe_dim
    cols = enc.weights.filters * n if not enc.weights.packed else n
    positions = int(np.prod(sample_shape[:-1])) if isinstance(enc.block.weight, ConvSpec) else 1
    return max(1, positions * cols * 8)


def cipherspace_features(enc: EncryptedModel, *, limbs: bool = True) -> FeatureExtractor:
    """The verifier's feature extractor: no secret key involved.

    The first block runs in cipherspace (:func:`evaluate_first_block`); the
    verifier then scales the leading ciphertext components down by ``w``
    (:func:`cipherfuse.he.nn.tensor.scale_down`, the paper's Fig. 5b
    "scaling-down") and runs the remaining plaintext layers in float.

    That is exact, and the features equal the quantized plaintext model's,
    only for the ``paper`` parameters: there ``|T c_1|`` is tiny, which is
    also precisely why those parameters hide nothing (docs/he-nn.md). Each
    call verifies the exactness condition from public data and raises rather
    than return wrong features.

    Args:
        limbs: evaluate the ciphertext words as small float32 limbs in XLA
            (:mod:`cipherfuse.he.nn.limbs`) wherever that is provably exact, with
            the 64-bit word path as fall-back; ``False`` always uses the 64-bit
            path (same results; for comparisons).

    Raises:
        CipherspaceError: ``secure`` parameters (the leading components are
            uniformly random without the secret key: no keyless features
            exist), or a first block that cannot run in cipherspace.
    """
    if not enc.params.insecure:
        raise CipherspaceError(
            f"parameter set {enc.params_name!r}: the leading ciphertext components are "
            "pseudo-random without the secret key, so a verifier cannot compute features of a "
            "securely encrypted model (the paper's keyless verification works only because its "
            "parameters leak the plaintext; see docs/he-nn.md)"
        )
    block = enc.block
    partial = TrainedModel(config=enc.config, params=_to_jax(enc.plain_params), labels=enc.labels)
    first_block = _prefix(enc, limbs)
    return PrefixFeatures(
        model=partial,
        prefix=first_block.integers,
        resume_layer=block.resume_layer,
        descaled_prefix=first_block.descaled,
        overlapped_prefix=first_block.descaled_overlapped,
    )
