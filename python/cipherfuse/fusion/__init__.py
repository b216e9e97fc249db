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
from cipherfuse.fusion.serialize import (
    MetaModelFileError,
    load_metamodel,
    metamodel_from_bytes,
    metamodel_to_bytes,
    save_metamodel,
)

__all__ = [
    "FeatureExtractor",
    "FusedHead",
    "FusionConfig",
    "FusionError",
    "FusionHead",
    "FusionLayout",
    "MetaModel",
    "MetaModelFileError",
    "PlainFeatures",
    "PrefixFeatures",
    "fuse",
    "gamma_gates",
    "initial_params",
    "load_metamodel",
    "metamodel_from_bytes",
    "metamodel_to_bytes",
    "quantized_features",
    "save_metamodel",
    "train_fusion_head",
]
