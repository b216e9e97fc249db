"""Kernel back ends: the C++ core (default) and the numpy reference.

The scheme code in :mod:`cipherfuse.he` is written once against the
:class:`Kernels` protocol; :func:`use_kernels` switches the implementation,
which is how the C++ kernels are tested against the numpy reference.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import numpy.typing as npt

import cipherfuse._core as _core
from cipherfuse.geometry import Conv2dGeometry as Conv2dGeometry
from cipherfuse.geometry import conv2d_geometry as conv2d_geometry
from cipherfuse.he.errors import ParameterError

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


class Kernels(Protocol):
    """The arithmetic the scheme needs; all results are exact modulo 2^64."""

    name: str

    def decompose(self, c: U64Array, base_bits: int) -> U64Array:
        """Digits of every word of 1-D ``c``, most significant first."""
        ...

    def gemm_wide_small(self, w: U64Array, s: I64Array) -> U64Array:
        """``w @ s`` mod 2^64 for uint64 ``w`` and small signed ``s``."""
        ...

    def gemm_small_wide(self, s: I64Array, w: U64Array) -> U64Array:
        """``s @ w`` mod 2^64 for small signed ``s`` and uint64 ``w``."""
        ...

    def keyswitch(
        self, m: U64Array, c: U64Array, base_bits: int, skip_low_digits: int = 0
    ) -> U64Array:
        """``m @ decompose(c)`` mod 2^64 for one ciphertext ``c``.

        ``skip_low_digits``: that many least significant digits of every word
        are zero (an error otherwise), so their columns of ``m`` need not be read.
        """
        ...

    def tensor_round(self, a: U64Array, b: U64Array, shift: int) -> U64Array:
        """``round(vec(a b^T) / 2^shift)`` mod 2^64 over signed 128-bit products."""
        ...

    def conv2d(
        self,
        x: I64Array,
        kern: U64Array,
        bias: U64Array,
        stride: tuple[int, int],
        padding: str,
    ) -> U64Array:
        """``bias + conv(x, kern)`` mod 2^64, ``(n, h', w', cols)``.

        ``x``: int64 images ``(n, h, w, c)`` with ``|x| < 2^40``; ``kern``: uint64 words
        ``(kh, kw, c, cols)``; ``bias``: ``(cols,)`` words; geometry as
        :func:`conv2d_geometry` (taps in the zero padding contribute nothing).
        """
        ...

    def conv2d_patch_l1_max(
        self, x: I64Array, kernel_hw: tuple[int, int], stride: tuple[int, int], padding: str
    ) -> int:
        """The largest l1 norm of a patch of :meth:`conv2d` (all channels), for ``|x| < 2^40``."""
        ...


def _conv_keywords(
    stride: tuple[int, int], pads: tuple[int, int], out_hw: tuple[int, int] | None = None
) -> dict[str, int]:
    """The geometry keywords of the ``_core`` convolutions: strides, (top, left) pads, size."""
    words = {"stride_h": stride[0], "stride_w": stride[1], "pad_top": pads[0], "pad_left": pads[1]}
    if out_hw is not None:
        words.update(out_h=out_hw[0], out_w=out_hw[1])
    return words


def _pool_keywords(window: tuple[int, int], stride: tuple[int, int]) -> dict[str, int]:
    """The sum-pooling keywords of the fused ``_core`` kernels: window and stride."""
    return {"pool_h": window[0], "pool_w": window[1], "pool_sh": stride[0], "pool_sw": stride[1]}


class CppKernels:
    """The C++ core (``cipherfuse._core``): SIMD-dispatched, multi-threaded, GIL released.

    Besides the :class:`Kernels` protocol, the kernels that exist in C++ only (the
    seeded convolution and its fused decryption finish, the fused limb block, the
    ChaCha20 keystream) are methods here, so every call into ``_core`` from
    :mod:`cipherfuse.he` goes through this one object, with its ``isa`` and ``threads``.
    """

    def __init__(self, isa: str = "auto", threads: int = 0) -> None:
        self.isa = isa
        self.threads = threads
        self.name = f"cpp-{_core.best_isa() if isa == 'auto' else isa}"

    def decompose(self, c: U64Array, base_bits: int) -> U64Array:
        return _core.decompose(np.ascontiguousarray(c), base_bits)

    def gemm_wide_small(self, w: U64Array, s: I64Array) -> U64Array:
        return _core.gemm_wide_small(w, s, isa=self.isa, threads=self.threads)

    def gemm_small_wide(self, s: I64Array, w: U64Array) -> U64Array:
        return _core.gemm_small_wide(s, w, isa=self.isa, threads=self.threads)

    def keyswitch(
        self, m: U64Array, c: U64Array, base_bits: int, skip_low_digits: int = 0
    ) -> U64Array:
        return _core.keyswitch(
            np.ascontiguousarray(m),
            np.ascontiguousarray(c),
            base_bits,
            isa=self.isa,
            threads=self.threads,
            skip_low_digits=skip_low_digits,
        )

    def tensor_round(self, a: U64Array, b: U64Array, shift: int) -> U64Array:
        return _core.tensor_round(
            np.ascontiguousarray(a), np.ascontiguousarray(b), shift, threads=self.threads
        )

    def conv2d(
        self,
        x: I64Array,
        kern: U64Array,
        bias: U64Array,
        stride: tuple[int, int],
        padding: str,
    ) -> U64Array:
        """One pass of the direct (implicit-im2col) C++ kernel; output in its final layout."""
        geo = conv2d_geometry(x.shape[1:3], kern.shape[:2], stride, padding)
        return _core.conv2d_direct(
            np.ascontiguousarray(x),
            np.ascontiguousarray(kern),
            np.ascontiguousarray(bias),
            **_conv_keywords(stride, geo.pads, geo.out),
            isa=self.isa,
            threads=self.threads,
        )

    def conv2d_patch_l1_max(
        self, x: I64Array, kernel_hw: tuple[int, int], stride: tuple[int, int], padding: str
    ) -> int:
        geo = conv2d_geometry(x.shape[1:3], kernel_hw, stride, padding)
        return _core.conv2d_patch_l1_max(
            np.ascontiguousarray(x),
            kernel_hw[0],
            kernel_hw[1],
            **_conv_keywords(stride, geo.pads, geo.out),
            threads=self.threads,
        )

    # ---------------------------------------------------------------- C++ only
    def seeded_conv(
        self,
        x: I64Array,
        kern: U64Array,
        bias: U64Array | None,
        *,
        stride: tuple[int, int],
        pads: tuple[int, int],
        out_hw: tuple[int, int],
    ) -> U64Array:
        """Seeded b-parts ``bias + conv(x, kern)`` mod 2^64 (``cpp/he/seeded.hpp``).

        ``x``: C-contiguous int64 NHWC images with ``|x| < 2^31``; ``kern``: uint64
        ``(kh, kw, C, F)``; ``pads``: ``(top, left)``; ``out_hw``: the output size.
        """
        return _core.seeded_conv(
            x,
            kern,
            bias,
            **_conv_keywords(stride, pads, out_hw),
            isa=self.isa,
            threads=self.threads,
        )

    def seeded_conv_finish(
        self,
        x: I64Array,
        kern: U64Array,
        bias: U64Array | None,
        b_parts: U64Array,
        *,
        plaintext_bits: int,
        stride: tuple[int, int],
        pads: tuple[int, int],
        activation: str,
        pool_window: tuple[int, int],
        pool_stride: tuple[int, int],
    ) -> I64Array:
        """Decryption finish of the seeded convolution fused with its a-term (int64 features)."""
        return _core.seeded_conv_finish(
            x,
            kern,
            bias,
            b_parts,
            plaintext_bits,
            **_conv_keywords(stride, pads),
            activation=activation,
            **_pool_keywords(pool_window, pool_stride),
            isa=self.isa,
            threads=self.threads,
        )

    def limb_block(
        self,
        x: I64Array,
        kern: I64Array,
        offsets: I64Array,
        bias: I64Array,
        *,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        pool_window: tuple[int, int],
        pool_stride: tuple[int, int],
        out: npt.NDArray[np.int64] | npt.NDArray[np.float32] | None = None,
        scale: int = 0,
        tails: bool = True,
    ) -> tuple[npt.NDArray[np.int64] | npt.NDArray[np.float32] | None, int, int, int, int]:
        """The fused limb first block (``cpp/he/limb_kernel.hpp``).

        ``pads``: ``(top, bottom, left, right)``. Returns ``(features, l1, tail_min,
        tail_max, pooled_tail_max)`` with ``features`` ``None`` when an exactness
        bound fails. ``tails=False`` skips the tail family (a third of the
        convolutions): the same features and ``l1``, the three tail statistics 0
        (not measured), for a caller that bounds them a priori.
        """
        return _core.limb_block(
            x,
            kern,
            offsets,
            bias,
            stride_h=stride[0],
            stride_w=stride[1],
            pad_top=pads[0],
            pad_bottom=pads[1],
            pad_left=pads[2],
            pad_right=pads[3],
            **_pool_keywords(pool_window, pool_stride),
            isa=self.isa,
            threads=self.threads,
            out=out,
            scale=scale,
            tails=tails,
        )

    def chacha20(
        self, key: bytes, nonce: bytes, counter: int, nblocks: int
    ) -> npt.NDArray[np.uint8]:
        """ChaCha20 (RFC 8439) keystream: ``nblocks`` 64-byte blocks from block ``counter``."""
        return _core.chacha20(key, nonce, counter, nblocks, threads=self.threads)


_DEFAULT_KERNELS = CppKernels()
_current: contextvars.ContextVar[Kernels | None] = contextvars.ContextVar(
    "cipherfuse_he_kernels", default=None
)


def get_kernels() -> Kernels:
    """The kernels used by the scheme functions in this thread/task right now."""
    chosen = _current.get()
    return _DEFAULT_KERNELS if chosen is None else chosen


@contextlib.contextmanager
def use_kernels(kernels: Kernels | str) -> Iterator[Kernels]:
    """Temporarily switch kernels, per thread / asyncio task.

    ``kernels`` is a :class:`Kernels` object, ``"cpp"``, ``"reference"``, or
    ``"cpp-scalar"`` / ``"cpp-avx2"`` / ``"cpp-avx512"`` / ``"cpp-neon"`` for one ISA of the
    C++ core.
    """
    if isinstance(kernels, str):
        kernels = kernels_by_name(kernels)
    token = _current.set(kernels)
    try:
        yield kernels
    finally:
        _current.reset(token)


def kernels_by_name(name: str) -> Kernels:
    """Builds kernels from a name (see :func:`use_kernels`)."""
    from cipherfuse.he.reference import ReferenceKernels

    if name == "reference":
        return ReferenceKernels()
    if name == "cpp":
        return CppKernels()
    if name.startswith("cpp-"):
        isa = name[4:]
        if isa not in ("scalar", "avx2", "avx512", "neon"):
            raise ParameterError(f"unknown ISA {isa!r}; expected scalar, avx2, avx512 or neon")
        if not _core.isa_available(isa):
            raise ParameterError(f"ISA {isa!r} is not available on this CPU or build")
        return CppKernels(isa=isa)
    raise ParameterError(
        f"unknown kernels {name!r}; expected 'cpp', 'reference', 'cpp-scalar', 'cpp-avx2', "
        "'cpp-avx512', 'cpp-neon'"
    )
