"""The fusing party's augmentation of its fusion training samples (:class:`FusionAugment`).

No new data: the fusing party's own samples followed by warped copies of them, used
by the case-study reproductions (:mod:`cipherfuse.analysis`) and ``cipherfuse models
reproduce``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cipherfuse.data.partition import Subset
from cipherfuse.fusion.errors import FusionError
from cipherfuse.nn.augment import augment_images, augment_range_problem
from cipherfuse.validation import strict_int


@dataclass(frozen=True)
class FusionAugment:
    """The fusing party's augmentation: its own samples plus ``copies`` warped copies.

    Each copy is every sample shifted by up to ``max_shift`` whole pixels per axis,
    rotated by up to ``max_rotation`` degrees and scaled by ``1 ± max_scale`` (all
    uniform, :func:`cipherfuse.nn.augment.random_affine`); with no rotation and no
    scaling the copies are pure shifts (:func:`cipherfuse.nn.augment.shift_images`).
    No new data: only the fusing party's samples, transformed.
    """

    copies: int = 0
    max_shift: int = 2
    max_rotation: float = 0.0
    max_scale: float = 0.0

    def validate(self) -> None:
        """Raise :class:`FusionError` naming the first bad field."""
        strict_int(self.copies, "fusion copies", minimum=0, error=FusionError)
        problem = augment_range_problem(self.max_shift, self.max_rotation, self.max_scale)
        if problem is not None:
            raise FusionError(f"fusion {problem}")

    def apply(
        self, data: Subset, seed: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """``data`` followed by its ``copies`` augmented copies, and the matching labels."""
        self.validate()
        rng = np.random.default_rng(seed)
        images = [data.images] + [
            augment_images(rng, data.images, self.max_shift, self.max_rotation, self.max_scale)
            for _ in range(self.copies)
        ]
        return np.concatenate(images), np.tile(data.labels, self.copies + 1)
