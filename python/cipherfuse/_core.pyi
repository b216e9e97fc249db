"""Type stub of the C++ extension cipherfuse._core (cpp/bindings/register_*.cpp).

Checked against the built module by mypy's stubtest (.ci/run) and, parameter by
parameter, against the signatures pybind11 records (tests/test_core_stub.py).
"""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

class KernelArgumentError(ValueError): ...

def digit_count(base_bits: int) -> int: ...
def decompose(c: npt.NDArray[np.uint64], base_bits: int) -> npt.NDArray[np.uint64]: ...
def gemm_wide_small(
    w: npt.NDArray[np.uint64], s: npt.NDArray[np.int64], *, isa: str = "auto", threads: int = 0
) -> npt.NDArray[np.uint64]: ...
def gemm_small_wide(
    s: npt.NDArray[np.int64], w: npt.NDArray[np.uint64], *, isa: str = "auto", threads: int = 0
) -> npt.NDArray[np.uint64]: ...
def keyswitch(
    m: npt.NDArray[np.uint64],
    c: npt.NDArray[np.uint64],
    base_bits: int,
    *,
    isa: str = "auto",
    threads: int = 0,
    skip_low_digits: int = 0,
) -> npt.NDArray[np.uint64]: ...
def tensor_round(
    a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64], shift: int, *, threads: int = 0
) -> npt.NDArray[np.uint64]: ...
def chacha20(
    key: bytes, nonce: bytes, counter: int, nblocks: int, *, threads: int = 0
) -> npt.NDArray[np.uint8]: ...
def seeded_conv(
    x: npt.NDArray[np.int64],
    kern: npt.NDArray[np.uint64],
    bias: npt.NDArray[np.uint64] | None = None,
    *,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_left: int = 0,
    out_h: int = 0,
    out_w: int = 0,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.uint64]: ...
def decrypt_finish(
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    tau: int,
    *,
    activation: str = "none",
    pool_h: int = 1,
    pool_w: int = 1,
    pool_sh: int = 1,
    pool_sw: int = 1,
    threads: int = 0,
) -> npt.NDArray[np.int64]: ...
def seeded_conv_finish(
    x: npt.NDArray[np.int64],
    kern: npt.NDArray[np.uint64],
    bias: npt.NDArray[np.uint64] | None,
    b: npt.NDArray[np.uint64],
    tau: int,
    *,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_left: int = 0,
    activation: str = "none",
    pool_h: int = 1,
    pool_w: int = 1,
    pool_sh: int = 1,
    pool_sw: int = 1,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.int64]: ...
def limb_block(
    x: npt.NDArray[np.int64],
    kern: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    bias: npt.NDArray[np.int64],
    *,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_bottom: int = 0,
    pad_left: int = 0,
    pad_right: int = 0,
    pool_h: int = 1,
    pool_w: int = 1,
    pool_sh: int = 1,
    pool_sw: int = 1,
    isa: str = "auto",
    threads: int = 0,
    out: npt.NDArray[np.int64] | npt.NDArray[np.float32] | None = None,
    scale: int = 0,
    tails: bool = True,
) -> tuple[npt.NDArray[np.int64] | npt.NDArray[np.float32] | None, int, int, int, int]: ...
def conv2d_direct(
    x: npt.NDArray[np.int64],
    kern: npt.NDArray[np.uint64],
    bias: npt.NDArray[np.uint64] | None = None,
    *,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_left: int = 0,
    out_h: int = 0,
    out_w: int = 0,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.uint64]: ...
def conv2d_patch_l1_max(
    x: npt.NDArray[np.int64],
    kh: int,
    kw: int,
    *,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_left: int = 0,
    out_h: int = 0,
    out_w: int = 0,
    threads: int = 0,
) -> int: ...
def stream_sum(a: npt.NDArray[np.uint64], *, threads: int = 0) -> int: ...
def gather_bytes(parts: Iterable[bytes | bytearray | memoryview], size: int) -> bytes: ...
def isa_available(name: str) -> bool: ...
def best_isa() -> str: ...
def default_threads() -> int: ...

# 3PC share kernels (cpp/mpc/, bindings in cpp/bindings/register_mpc.cpp)
def ring_gemm(
    a: npt.NDArray[np.uint64],
    b: npt.NDArray[np.uint64],
    *,
    isa: str = "auto",
    threads: int = 0,
    variant: str = "default",
) -> npt.NDArray[np.uint64]: ...
def ring_conv2d(
    x: npt.NDArray[np.uint64],
    kern: npt.NDArray[np.uint64],
    *,
    out_h: int,
    out_w: int,
    stride_h: int = 1,
    stride_w: int = 1,
    pad_top: int = 0,
    pad_left: int = 0,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.uint64]: ...
def rss_and_rows(
    x0: npt.NDArray[np.uint64],
    x1: npt.NDArray[np.uint64],
    y0: npt.NDArray[np.uint64],
    y1: npt.NDArray[np.uint64],
    mask: npt.NDArray[np.uint64],
    out: npt.NDArray[np.uint64],
    *,
    isa: str = "auto",
    threads: int = 0,
) -> None: ...
def rss_mul_local(
    x0: npt.NDArray[np.uint64],
    x1: npt.NDArray[np.uint64],
    y0: npt.NDArray[np.uint64],
    y1: npt.NDArray[np.uint64],
    mask: npt.NDArray[np.uint64],
    *,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.uint64]: ...
def rss_and_local(
    x0: npt.NDArray[np.uint64],
    x1: npt.NDArray[np.uint64],
    y0: npt.NDArray[np.uint64],
    y1: npt.NDArray[np.uint64],
    mask: npt.NDArray[np.uint64],
    *,
    isa: str = "auto",
    threads: int = 0,
) -> npt.NDArray[np.uint64]: ...
def bitslice(
    x: npt.NDArray[np.uint64], *, bits: int = 64, isa: str = "auto", threads: int = 0
) -> npt.NDArray[np.uint64]: ...
def unbitslice(
    planes: npt.NDArray[np.uint64], n: int, *, isa: str = "auto", threads: int = 0
) -> npt.NDArray[np.uint64]: ...
