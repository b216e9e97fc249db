"""Early fusion of private models into a MetaModel (paper Sec. V-C).

:func:`fuse` takes any :class:`FeatureExtractor` (plaintext features for the
initiator, cipherspace-prefix features for a verifier) and trains the fusion
layer with Strategy I or the gradual Strategy II.
"""

from cipherfuse.fusion.errors import FusionError
from cipherfuse.fusion.features import (
    FeatureExtractor,
    PlainFeatures,
    PrefixFeatures,
    quantized_features,
)
from cipherfuse.fusion.head import (
    FusedHead,
    FusionConfig,
    FusionHead,
    FusionLayout,
    MetaModel,
    fuse,
    gamma_gates,
    initial_params,
    train_fusion_head,
)

__all__ = [
    "FeatureExtractor",
    "FusedHead",
    "FusionConfig",
    "FusionError",
    "FusionHead",
    "FusionLayout",
    "MetaModel",
    "PlainFeatures",
    "PrefixFeatures",
    "fuse",
    "gamma_gates",
    "initial_params",
    "quantized_features",
    "train_fusion_head",
]
