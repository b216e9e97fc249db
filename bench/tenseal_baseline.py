"""TenSEAL (SEAL CKKS) baseline of ``bench/bench_he_seeded.py``: encrypted-weight layers.

Not library code: the comparison the seeded secure layers are benchmarked against.
``tenseal`` is optional (``pip install cipherfuse[bench]``); it is imported only when
:class:`CkksLayers` is built, so this module imports without it and the benchmarks
skip their TenSEAL cases cleanly.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
import numpy.typing as npt

from cipherfuse import geometry


class CkksLayers:
    """CKKS (SEAL through tenseal.sealapi, N = 8192, 128-bit) encrypted-weight layers.

    Dense ``y = x W`` (784 x 128), the best packing found here: 25 ciphertexts,
    each holding 32 rows of ``W`` (slot ``32 * 128``); per sample, 25 plaintexts
    ``x`` (each input repeated over its row's 128 slots) are encoded and
    multiplied in, the products summed, rescaled, and the 32 row blocks folded
    with 5 rotations (128, ..., 2048). TenSEAL's own ``enc_matmul_plain`` needs
    32 chunked calls and took 3.6 s per sample here, so it is not used.

    Conv (5x5, 1 -> 32, SAME, 28x28): 7 filter groups of 5 filters x 784
    positions per ciphertext (3,920 of 4,096 slots), one ciphertext per
    (group, tap) holding that tap's weight replicated over the positions: 175
    ciphertexts. Per image, 25 plaintexts (tap ``t``'s im2col column, tiled 5
    times) are encoded and 175 plaintext products summed into 7 results; no
    rotations.
    """

    def __init__(self, w_dense: npt.NDArray[np.float64], w_conv: npt.NDArray[np.float64]) -> None:
        import tenseal.sealapi as s

        self.s = s
        parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(8192)
        parms.set_coeff_modulus(s.CoeffModulus.Create(8192, [60, 40, 40, 60]))
        self.ctx = s.SEALContext(parms, True, s.SEC_LEVEL_TYPE.TC128)
        keygen = s.KeyGenerator(self.ctx)
        public = s.PublicKey()
        keygen.create_public_key(public)
        self.galois = s.GaloisKeys()
        keygen.create_galois_keys(self.galois)
        self.encryptor = s.Encryptor(self.ctx, public)
        self.decryptor = s.Decryptor(self.ctx, keygen.secret_key())
        self.evaluator = s.Evaluator(self.ctx)
        self.encoder = s.CKKSEncoder(self.ctx)
        self.scale = 2.0**40
        padded = np.zeros((800, 128))
        padded[:784] = w_dense
        self.dense_cts = [
            self._encrypt(padded[32 * i : 32 * i + 32].reshape(-1)) for i in range(25)
        ]
        taps = w_conv.reshape(25, 32)
        self.groups = [list(range(f, min(f + 5, 32))) for f in range(0, 32, 5)]
        self.conv_cts = [
            [self._encrypt(np.repeat(taps[t, g], 784)) for t in range(25)] for g in self.groups
        ]

    def _encrypt(self, values: npt.NDArray[np.float64]) -> Any:
        pt = self.s.Plaintext()
        self.encoder.encode(values.tolist(), self.scale, pt)
        ct = self.s.Ciphertext()
        self.encryptor.encrypt(pt, ct)
        return ct

    def _decrypt(self, ct: Any) -> npt.NDArray[np.float64]:
        pt = self.s.Plaintext()
        self.decryptor.decrypt(ct, pt)
        return np.array(self.encoder.decode_double(pt))

    def ciphertext_bytes(self, cts: list[Any]) -> int:
        """Total size of ``cts`` in SEAL's serialized form."""
        total = 0
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ct.bin")
            for ct in cts:
                ct.save(path)
                total += os.path.getsize(path)
        return total

    def dense(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``x W`` for one sample ``x`` (784 values), decrypted: 128 values."""
        s, ev = self.s, self.evaluator
        xp = np.zeros(800)
        xp[:784] = x
        acc, tmp, pt = s.Ciphertext(), s.Ciphertext(), s.Plaintext()
        first = True
        for i, ct in enumerate(self.dense_cts):
            block = xp[32 * i : 32 * i + 32]
            if not block.any():  # SEAL refuses all-zero products (transparent); skip them
                continue
            values = np.repeat(block, 128).tolist()
            self.encoder.encode(values, ct.parms_id(), self.scale, pt)
            if first:
                ev.multiply_plain(ct, pt, acc)
                first = False
            else:
                ev.multiply_plain(ct, pt, tmp)
                ev.add_inplace(acc, tmp)
        ev.rescale_to_next_inplace(acc)
        step = 128
        while step < 4096:
            ev.rotate_vector(acc, step, self.galois, tmp)
            ev.add_inplace(acc, tmp)
            step *= 2
        return self._decrypt(acc)[:128]

    def conv(self, image: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The 5x5 SAME convolution of one 28x28 image, decrypted: ``(784, 32)``."""
        s, ev = self.s, self.evaluator
        patches = geometry.im2col(image[None], (5, 5), (1, 1), "SAME")
        cols = patches.reshape(784, 25).astype(np.float64)
        plains = []
        for t in range(25):
            pt = s.Plaintext()
            self.encoder.encode(
                np.tile(cols[:, t], 5).tolist(), self.conv_cts[0][0].parms_id(), self.scale, pt
            )
            plains.append(pt)
        out = np.zeros((784, 32))
        tmp = s.Ciphertext()
        for g, group in enumerate(self.groups):
            acc = s.Ciphertext()
            for t in range(25):
                if t == 0:
                    ev.multiply_plain(self.conv_cts[g][t], plains[t], acc)
                else:
                    ev.multiply_plain(self.conv_cts[g][t], plains[t], tmp)
                    ev.add_inplace(acc, tmp)
            ev.rescale_to_next_inplace(acc)
            vals = self._decrypt(acc)[: 784 * len(group)]
            out[:, group] = vals.reshape(len(group), 784).T
        return out
