"""Sharing a quantized model among the three committee members, and what each receives.

The contributor flattens every weight and bias of its :class:`QuantizedModel` into one
int64 vector ``W`` (layer order, weight before bias) and splits it as
``W_0 = PRG(s_0)``, ``W_1 = PRG(s_1)``, ``W_2 = W - W_0 - W_1 (mod 2^64)``. Member ``i``
holds shares ``i`` and ``i + 1``:

* member 0 receives the two seeds ``s_0, s_1`` (64 bytes);
* member 1 receives ``s_1`` and the words of ``W_2``;
* member 2 receives the words of ``W_2`` and ``s_0``;

so the upload is the model's size once per copy of ``W_2`` (the same bytes for members
1 and 2: a content-addressed store keeps them once). The commitments
``c_j = SHA-256(tag || layout digest || j || W_j)`` (public, in the claim) bind the
shares to the public architecture: each member checks its two shares against them
(:meth:`MemberBundle.verify`) and the three compare their commitment triples before
computing (:func:`cipherfuse.mpc.runtime.check_consistency`), so a contributor that hands
out inconsistent shares is caught (:class:`ShareInconsistency`). :func:`reconstruct_model`
is the documented threshold: any two bundles give the model back.

Bundle bytes (:meth:`MemberBundle.to_bytes`): ``MAGIC`` (8 bytes, version in the last),
a little-endian u32 header length, a UTF-8 JSON header (at most
:data:`MAX_HEADER_BYTES`), then the explicit share words (little-endian uint64).
:meth:`MemberBundle.from_bytes` bounds every size and raises :class:`EncodingError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from cipherfuse.errors import SerializationError
from cipherfuse.mpc.errors import EncodingError, ShareInconsistency
from cipherfuse.mpc.plan import evaluation_plan
from cipherfuse.mpc.randomness import KEY_BYTES, derive_key, prg_words
from cipherfuse.mpc.shares import RSS
from cipherfuse.mpc.transport import PARTIES
from cipherfuse.nn.config import ModelConfig
from cipherfuse.nn.errors import ModelConfigError, QuantizationError
from cipherfuse.nn.quantize import (
    QuantizedConv,
    QuantizedDense,
    QuantizedFlatten,
    QuantizedLayer,
    QuantizedModel,
    QuantizedPool,
    integer_forward,
)
from cipherfuse.untrusted import parse_json
from cipherfuse.validation import strict_int

U64Array = npt.NDArray[np.uint64]

MAGIC = b"CFMPCSB\x01"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
#: Largest bundle accepted by default (2^31 bytes: 268 M parameters).
MAX_BUNDLE_BYTES = 1 << 31
#: The shares expanded from seeds; share 2 travels as words.
SEEDED_SHARES = (0, 1)
_SHARE_NONCE = b"cfmpc-share\0"
_COMMIT_TAG = b"cipherfuse.mpc.share-commitment\0"


def held_shares(party: int) -> tuple[int, int]:
    """The share indices member ``party`` holds: ``(party, party + 1)``."""
    return party, (party + 1) % PARTIES


def parameter_shapes(model: QuantizedModel) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the secret parameters, in the canonical order of ``W``."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, QuantizedConv | QuantizedDense):
            out.append((f"layer{i}.weight", tuple(layer.weight.shape)))
            out.append((f"layer{i}.bias", tuple(layer.bias.shape)))
    return out


def flatten_parameters(model: QuantizedModel) -> U64Array:
    """``W``: every weight and bias as ring words, in canonical order."""
    parts = []
    for layer in model.layers:
        if isinstance(layer, QuantizedConv | QuantizedDense):
            parts.append(np.asarray(layer.weight, np.int64).reshape(-1))
            parts.append(np.asarray(layer.bias, np.int64).reshape(-1))
    if not parts:
        raise EncodingError("the model has no secret parameters")
    return np.ascontiguousarray(np.concatenate(parts)).view(np.uint64)


def _layer_layout(layer: QuantizedLayer) -> dict[str, Any]:
    common = {"input_scale": layer.input_scale, "output_scale": layer.output_scale}
    if isinstance(layer, QuantizedConv):
        return {
            "kind": "conv",
            **common,
            "weight_shape": list(layer.weight.shape),
            "weight_scale": layer.weight_scale,
            "stride": list(layer.stride),
            "padding": layer.padding,
            "activation": layer.activation,
        }
    if isinstance(layer, QuantizedDense):
        return {
            "kind": "dense",
            **common,
            "weight_shape": list(layer.weight.shape),
            "weight_scale": layer.weight_scale,
            "activation": layer.activation,
        }
    if isinstance(layer, QuantizedPool):
        return {
            "kind": "pool",
            **common,
            "pool": layer.pool,
            "window": list(layer.window),
            "stride": list(layer.stride),
        }
    return {"kind": "flatten", **common}


def model_layout(model: QuantizedModel) -> dict[str, Any]:
    """The public part of ``model`` (architecture, scales), JSON-able; no weights."""
    return {
        "input_shape": list(model.input_shape),
        "input_scale": model.input_scale,
        "weight_scale": model.weight_scale,
        "output_scale": model.output_scale,
        "resume_layer": model.resume_layer,
        "source": model.source.to_dict(),
        "layers": [_layer_layout(layer) for layer in model.layers],
    }


def layout_digest(layout: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical JSON of a layout."""
    text = json.dumps(layout, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


_MAX_DIMS = 8
_MAX_LAYERS = 256


def _int(v: Any, what: str, lo: int = 0, hi: int = 2**62) -> int:
    return strict_int(v, what, minimum=lo, maximum=hi, error=EncodingError)


def _ints(v: Any, what: str, lo: int = 1, hi: int = 1 << 24) -> tuple[int, ...]:
    if not isinstance(v, list) or not 1 <= len(v) <= _MAX_DIMS:
        raise EncodingError(f"{what} must be a list of 1..{_MAX_DIMS} integers")
    return tuple(_int(e, what, lo, hi) for e in v)


def _choice(v: Any, options: tuple[str, ...], what: str) -> str:
    if v not in options:
        raise EncodingError(f"{what} must be one of {options}, got {v!r:.60}")
    return cast(str, v)


def skeleton_from_layout(layout: Any, *, max_words: int = MAX_BUNDLE_BYTES // 8) -> QuantizedModel:
    """A :class:`QuantizedModel` with the layout's geometry and zero weights (typed errors).

    ``max_words`` bounds the parameters the layout may declare, checked before anything
    is allocated (a caller that knows how many share words were actually sent passes
    that count).
    """
    if not isinstance(layout, dict):
        raise EncodingError("layout must be an object")
    keys = {"input_shape", "input_scale", "weight_scale", "output_scale", "resume_layer"}
    if set(layout) != keys | {"source", "layers"}:
        raise EncodingError(f"layout has fields {sorted(layout)!r:.200}")
    raw_layers = layout["layers"]
    if not isinstance(raw_layers, list) or not 1 <= len(raw_layers) <= _MAX_LAYERS:
        raise EncodingError(f"layout needs 1..{_MAX_LAYERS} layers")
    try:
        source = ModelConfig.from_dict(layout["source"])
    except (ModelConfigError, RecursionError) as exc:
        raise EncodingError(f"layout source config: {exc}") from exc
    layers: list[QuantizedLayer] = []
    total = 0
    for i, e in enumerate(raw_layers):
        w = f"layers[{i}]"
        if not isinstance(e, dict):
            raise EncodingError(f"{w} must be an object")
        kind = e.get("kind")
        fields = {
            "conv": {"weight_shape", "weight_scale", "stride", "padding", "activation"},
            "dense": {"weight_shape", "weight_scale", "activation"},
            "pool": {"pool", "window", "stride"},
            "flatten": set(),
        }
        if kind not in fields or set(e) != fields[kind] | {"kind", "input_scale", "output_scale"}:
            raise EncodingError(f"{w} has unknown kind or fields")
        s_in = _int(e["input_scale"], f"{w}.input_scale", 1)
        s_out = _int(e["output_scale"], f"{w}.output_scale", 1)
        if kind in ("conv", "dense"):
            shape = _ints(e["weight_shape"], f"{w}.weight_shape")
            total += int(np.prod(shape)) + shape[-1]
            if total > min(max_words, MAX_BUNDLE_BYTES // 8):
                raise EncodingError(
                    f"layout declares more than {min(max_words, MAX_BUNDLE_BYTES // 8)} parameters"
                )
            act = _choice(e["activation"], ("relu", "taylor_sigmoid", "none"), f"{w}.activation")
            weight = np.zeros(shape, np.int64)
            bias = np.zeros(shape[-1], np.int64)
            ws = _int(e["weight_scale"], f"{w}.weight_scale", 1)
            activation = cast(Literal["relu", "taylor_sigmoid", "none"], act)
            if kind == "conv":
                if len(shape) not in (3, 4):
                    raise EncodingError(f"{w}: only 1-D and 2-D convolutions")
                stride = _ints(e["stride"], f"{w}.stride")
                if len(stride) != len(shape) - 2:
                    raise EncodingError(f"{w}: stride needs {len(shape) - 2} entries")
                padding = cast(
                    Literal["SAME", "VALID"], _choice(e["padding"], ("SAME", "VALID"), w)
                )
                layers.append(
                    QuantizedConv(weight, bias, ws, s_in, s_out, stride, padding, activation)
                )
            else:
                if len(shape) != 2:
                    raise EncodingError(f"{w}: a dense weight is 2-D")
                layers.append(QuantizedDense(weight, bias, ws, s_in, s_out, activation))
        elif kind == "pool":
            pool = cast(Literal["sum", "max"], _choice(e["pool"], ("sum", "max"), f"{w}.pool"))
            window = _ints(e["window"], f"{w}.window")
            stride = _ints(e["stride"], f"{w}.stride")
            if len(window) != len(stride):
                raise EncodingError(f"{w}: window and stride differ in length")
            layers.append(QuantizedPool(pool, window, stride, s_in, s_out))
        else:
            layers.append(QuantizedFlatten(s_in, s_out))
    model = QuantizedModel(
        input_shape=_ints(layout["input_shape"], "input_shape"),
        input_scale=_int(layout["input_scale"], "input_scale", 1),
        weight_scale=_int(layout["weight_scale"], "weight_scale", 1),
        layers=tuple(layers),
        output_scale=_int(layout["output_scale"], "output_scale", 1),
        resume_layer=_int(layout["resume_layer"], "resume_layer"),
        source=source,
    )
    _check_geometry(model)
    return model


def _check_geometry(model: QuantizedModel) -> None:
    """Run the layout on one zero input: shapes must chain (else :class:`EncodingError`)."""

    shape = model.input_shape
    if int(np.prod(shape)) > 1 << 24:
        raise EncodingError("input shape too large")

    try:
        evaluation_plan(model)
        integer_forward(model, np.zeros((1, *shape), np.int64))
    except (QuantizationError, ValueError, IndexError) as exc:
        raise EncodingError(f"the layout's shapes do not chain: {exc}") from exc


def expand_seed(seed: bytes, count: int) -> U64Array:
    """A seeded share: ``count`` words of ChaCha20 keyed by ``seed``."""
    return prg_words(seed, _SHARE_NONCE, count)


def share_commitment(layout_hash: bytes, index: int, words: U64Array) -> bytes:
    """``c_j = SHA-256(tag || layout digest || j || W_j)``."""
    h = hashlib.sha256(_COMMIT_TAG)
    h.update(layout_hash)
    h.update(bytes([index]))
    h.update(np.ascontiguousarray(words, dtype="<u8").tobytes())
    return h.digest()


@dataclass(frozen=True)
class MemberBundle:
    """What member ``party`` receives: public layout, the commitments, its two shares.

    ``seeds`` maps a held seeded share index to its 32-byte seed; ``words`` maps a held
    explicit share index to its words.
    """

    party: int
    layout: dict[str, Any]
    commitments: tuple[bytes, bytes, bytes]
    seeds: dict[int, bytes]
    words: dict[int, U64Array]

    def share_words(self, index: int, count: int) -> U64Array:
        """The words of held share ``index`` (expanded from its seed if seeded)."""
        if index in self.seeds:
            return expand_seed(self.seeds[index], count)
        if index in self.words:
            return self.words[index]
        raise EncodingError(f"member {self.party} does not hold share {index}")

    def skeleton(self) -> QuantizedModel:
        """The model's public geometry (zero weights)."""
        return skeleton_from_layout(self.layout)

    def parameter_shares(self) -> tuple[QuantizedModel, dict[str, RSS]]:
        """The skeleton and this member's replicated shares of every parameter.

        Raises:
            ShareInconsistency: a held share does not match its commitment.
        """
        skeleton = self.skeleton()
        shapes = parameter_shapes(skeleton)
        count = sum(int(np.prod(s)) for _, s in shapes)
        first_i, second_i = held_shares(self.party)
        first = self.share_words(first_i, count)
        second = self.share_words(second_i, count)
        if first.size != count or second.size != count:
            raise EncodingError(f"bundle shares hold {first.size}/{second.size} of {count} words")
        lh = layout_digest(self.layout)
        for idx, words in ((first_i, first), (second_i, second)):
            if share_commitment(lh, idx, words) != self.commitments[idx]:
                raise ShareInconsistency(
                    f"member {self.party}: share {idx} does not match its commitment "
                    "(the contributor handed out an inconsistent share)",
                    blamed=None,
                )
        params: dict[str, RSS] = {}
        offset = 0
        for name, shape in shapes:
            size = int(np.prod(shape))
            params[name] = RSS(
                first[offset : offset + size].reshape(shape),
                second[offset : offset + size].reshape(shape),
            )
            offset += size
        return skeleton, params

    def to_bytes(self) -> bytes:
        """The versioned bundle encoding (see the module docstring)."""
        explicit = sorted(self.words)
        header = {
            "format": FORMAT_VERSION,
            "party": self.party,
            "layout": self.layout,
            "commitments": [c.hex() for c in self.commitments],
            "seeds": {str(k): v.hex() for k, v in sorted(self.seeds.items())},
            "explicit": explicit,
            "words": int(self.words[explicit[0]].size) if explicit else 0,
        }
        text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        if len(text) > MAX_HEADER_BYTES:
            raise EncodingError(f"bundle header of {len(text)} bytes exceeds {MAX_HEADER_BYTES}")
        body = b"".join(
            np.ascontiguousarray(self.words[k], dtype="<u8").tobytes() for k in explicit
        )
        return MAGIC + struct.pack("<I", len(text)) + text + body

    @classmethod
    def from_bytes(cls, data: bytes, *, max_bytes: int = MAX_BUNDLE_BYTES) -> MemberBundle:
        """Decode untrusted bundle bytes; :class:`EncodingError` on anything malformed."""
        if len(data) > max_bytes:
            raise EncodingError(f"bundle of {len(data)} bytes exceeds {max_bytes}")
        if len(data) < len(MAGIC) + 4 or data[: len(MAGIC) - 1] != MAGIC[:-1]:
            raise EncodingError("not a cipherfuse MPC share bundle")
        if data[len(MAGIC) - 1] != FORMAT_VERSION:
            raise EncodingError(f"unsupported bundle version {data[len(MAGIC) - 1]}")
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        if hlen > MAX_HEADER_BYTES or start + hlen > len(data):
            raise EncodingError(f"bundle header length {hlen} is out of bounds")
        try:
            # Nesting is bounded before parsing: with web3 imported the recursion limit is
            # 100,000 and a deep header would overflow the C stack inside json.loads.
            header = parse_json(
                data[start : start + hlen], what="bundle header", max_bytes=MAX_HEADER_BYTES
            )
        except SerializationError as exc:
            raise EncodingError(f"bundle header is not JSON: {exc}") from exc
        if not isinstance(header, dict) or set(header) != {
            "format",
            "party",
            "layout",
            "commitments",
            "seeds",
            "explicit",
            "words",
        }:
            raise EncodingError("bundle header has the wrong fields")
        if header["format"] != FORMAT_VERSION:
            raise EncodingError(f"bundle header format {header['format']!r:.20}")
        party = _int(header["party"], "party", 0, PARTIES - 1)
        held = set(held_shares(party))
        commits = header["commitments"]
        if not isinstance(commits, list) or len(commits) != PARTIES:
            raise EncodingError("commitments must be three hex digests")
        commitments = tuple(_hex(c, 32, "commitment") for c in commits)
        raw_seeds = header["seeds"]
        if not isinstance(raw_seeds, dict):
            raise EncodingError("seeds must be an object")
        seeds: dict[int, bytes] = {}
        for k, v in raw_seeds.items():
            if k not in ("0", "1") or int(k) not in held:
                raise EncodingError(f"member {party} cannot hold a seed for share {k!r:.10}")
            seeds[int(k)] = _hex(v, KEY_BYTES, "seed")
        explicit = header["explicit"]
        if not isinstance(explicit, list) or any(
            isinstance(e, bool) or e not in held or e in seeds for e in explicit
        ):
            raise EncodingError("explicit shares must be held, unseeded share indices")
        if set(explicit) | set(seeds) != held or len(set(explicit)) != len(explicit):
            raise EncodingError(f"member {party} must carry exactly shares {sorted(held)}")
        count = _int(header["words"], "words", 0, max_bytes // 8)
        body = data[start + hlen :]
        if len(body) != 8 * count * len(explicit):
            raise EncodingError(
                f"bundle body has {len(body)} bytes, expected {8 * count * len(explicit)}"
            )
        words = {
            e: np.frombuffer(body, dtype="<u8", count=count, offset=8 * count * t).astype(np.uint64)
            for t, e in enumerate(sorted(explicit))
        }
        layout = header["layout"]
        skeleton_from_layout(layout)  # validates
        return cls(party, layout, cast(tuple[bytes, bytes, bytes], commitments), seeds, words)


def _hex(v: Any, size: int, what: str) -> bytes:
    if not isinstance(v, str) or len(v) != 2 * size:
        raise EncodingError(f"{what} must be {size} bytes of hex")
    try:
        return bytes.fromhex(v)
    except ValueError as exc:
        raise EncodingError(f"{what} is not hex") from exc


@dataclass(frozen=True)
class SharedModel:
    """The contributor's output: the three bundles and the public commitments."""

    bundles: tuple[MemberBundle, MemberBundle, MemberBundle]
    commitments: tuple[bytes, bytes, bytes]
    layout: dict[str, Any]

    @property
    def model_commitment(self) -> bytes:
        """One digest binding all three share commitments (for the claim)."""
        return hashlib.sha256(b"".join(self.commitments)).digest()


def share_model(model: QuantizedModel, *, seed: bytes | None = None) -> SharedModel:
    """Split ``model`` into the three members' bundles (see the module docstring).

    ``seed`` (tests, benchmarks) derives ``s_0, s_1`` reproducibly; by default they are
    fresh random bytes.
    """
    layout = model_layout(model)
    skeleton_from_layout(layout)
    w = flatten_parameters(model)
    s = [
        derive_key(seed, f"share-seed-{j}") if seed is not None else secrets.token_bytes(KEY_BYTES)
        for j in SEEDED_SHARES
    ]
    w0, w1 = expand_seed(s[0], w.size), expand_seed(s[1], w.size)
    with np.errstate(over="ignore"):
        w2 = w - w0 - w1
    lh = layout_digest(layout)
    commitments = (
        share_commitment(lh, 0, w0),
        share_commitment(lh, 1, w1),
        share_commitment(lh, 2, w2),
    )
    bundles = (
        MemberBundle(0, layout, commitments, {0: s[0], 1: s[1]}, {}),
        MemberBundle(1, layout, commitments, {1: s[1]}, {2: w2}),
        MemberBundle(2, layout, commitments, {0: s[0]}, {2: w2}),
    )
    return SharedModel(bundles, commitments, layout)


def reconstruct_model(a: MemberBundle, b: MemberBundle) -> QuantizedModel:
    """The model from two members' bundles: the documented threshold (two of three)."""
    if a.party == b.party:
        raise EncodingError("reconstruction needs two different members")
    if layout_digest(a.layout) != layout_digest(b.layout) or a.commitments != b.commitments:
        raise ShareInconsistency("the two bundles belong to different shared models")
    skeleton = a.skeleton()
    shapes = parameter_shapes(skeleton)
    count = sum(int(np.prod(s)) for _, s in shapes)
    shares: dict[int, U64Array] = {}
    for bundle in (a, b):
        for j in held_shares(bundle.party):
            shares[j] = bundle.share_words(j, count)
    with np.errstate(over="ignore"):
        w = (shares[0] + shares[1] + shares[2]).view(np.int64)
    return _fill(skeleton, w)


def _fill(skeleton: QuantizedModel, w: npt.NDArray[np.int64]) -> QuantizedModel:

    layers: list[QuantizedLayer] = []
    offset = 0
    for layer in skeleton.layers:
        if isinstance(layer, QuantizedConv | QuantizedDense):
            ws, bs = int(np.prod(layer.weight.shape)), int(layer.bias.shape[0])
            weight = w[offset : offset + ws].reshape(layer.weight.shape).copy()
            bias = w[offset + ws : offset + ws + bs].copy()
            offset += ws + bs
            layers.append(dataclasses.replace(layer, weight=weight, bias=bias))
        else:
            layers.append(layer)
    return dataclasses.replace(skeleton, layers=tuple(layers))


def verify_model(
    model: QuantizedModel, seeds: tuple[bytes, bytes], commitments: tuple[bytes, bytes, bytes]
) -> bool:
    """Whether ``model`` with seeds ``(s_0, s_1)`` opens ``commitments`` (the model judged)."""
    layout = model_layout(model)
    w = flatten_parameters(model)
    w0, w1 = expand_seed(seeds[0], w.size), expand_seed(seeds[1], w.size)
    with np.errstate(over="ignore"):
        w2 = w - w0 - w1
    lh = layout_digest(layout)
    return (
        share_commitment(lh, 0, w0),
        share_commitment(lh, 1, w1),
        share_commitment(lh, 2, w2),
    ) == commitments
