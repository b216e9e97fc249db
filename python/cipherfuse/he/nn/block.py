"""The first block of a model: the part a verifier evaluates in cipherspace.

The first weight layer (after any flatten), its activation and the pooling right after
it, exactly :func:`cipherfuse.nn.quantize.first_block_end`. Public structure only (no
weights); both :mod:`cipherfuse.he.nn.model` and the file format
(:mod:`cipherfuse.he.nn.serialize`) need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cipherfuse.he.nn.errors import CipherspaceError
from cipherfuse.nn.config import ConvSpec, DenseSpec, FlattenSpec, ModelConfig, PoolSpec
from cipherfuse.nn.quantize import first_block_end


@dataclass(frozen=True)
class FirstBlock:
    """The public structure of the first block (no weights): what the verifier evaluates."""

    layer_index: int
    weight: ConvSpec | DenseSpec
    pool: PoolSpec | None
    resume_layer: int
    output_scale: int


def first_block(config: ModelConfig, weight_scale: int, input_scale: int) -> FirstBlock:
    """The first weight layer (after any flatten), its pooling and the propagated scale.

    Raises:
        CipherspaceError: the block cannot run in cipherspace (max pooling, or
            something other than flatten before the first weight layer).
    """
    end = first_block_end(config)
    index = next(i for i, s in enumerate(config.layers) if isinstance(s, ConvSpec | DenseSpec))
    if any(not isinstance(s, FlattenSpec) for s in config.layers[:index]):
        raise CipherspaceError("only flatten layers may precede the encrypted first layer")
    spec = config.layers[index]
    assert isinstance(spec, ConvSpec | DenseSpec)
    scale = weight_scale * input_scale
    if spec.activation == "taylor_sigmoid":
        scale = 48 * scale**3
    pool = config.layers[end - 1] if end - 1 > index else None
    if pool is not None:
        assert isinstance(pool, PoolSpec)
        if pool.pool == "max":
            raise CipherspaceError(
                f"{config.name}: max pooling after the encrypted layer cannot run in "
                "cipherspace (comparisons); use avg or sum pooling (paper Sec. V-D)"
            )
        if pool.pool == "avg":
            scale *= int(np.prod(pool.window))
    return FirstBlock(index, spec, pool if isinstance(pool, PoolSpec) else None, end, scale)
