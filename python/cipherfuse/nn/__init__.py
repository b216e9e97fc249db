"""Contributors' CNNs in Flax Linen: configs, training, quantization and model files.

Importing this package turns on JAX's persistent compilation cache in the user
cache folder (:mod:`cipherfuse.nn.compilation_cache`; ``CIPHERFUSE_JAX_CACHE_DIR=off``
disables it).
"""

from cipherfuse.nn.compilation_cache import enable_compilation_cache
from cipherfuse.nn.config import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    LayerSpec,
    ModelConfig,
    PoolSpec,
    case5_config,
    table2_config,
    table6_config,
)
from cipherfuse.nn.errors import ModelConfigError, ModelFileError, QuantizationError
from cipherfuse.nn.model import ConfigCNN, TrainedModel, init_params, taylor_sigmoid
from cipherfuse.nn.quantize import (
    QuantizedConv,
    QuantizedDense,
    QuantizedFlatten,
    QuantizedLayer,
    QuantizedModel,
    QuantizedPool,
    first_block_end,
    first_layer_error_bound,
    integer_forward,
    quantize_inputs,
    quantize_model,
)
from cipherfuse.nn.serialize import (
    QuantizationSpec,
    load_model,
    model_from_bytes,
    model_to_bytes,
    save_model,
)
from cipherfuse.nn.train import TrainConfig, TrainResult, accuracy, train_classifier

__all__ = [
    "ConfigCNN",
    "ConvSpec",
    "DenseSpec",
    "FlattenSpec",
    "LayerSpec",
    "ModelConfig",
    "ModelConfigError",
    "ModelFileError",
    "PoolSpec",
    "QuantizationError",
    "QuantizationSpec",
    "QuantizedConv",
    "QuantizedDense",
    "QuantizedFlatten",
    "QuantizedLayer",
    "QuantizedModel",
    "QuantizedPool",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "accuracy",
    "case5_config",
    "enable_compilation_cache",
    "first_block_end",
    "first_layer_error_bound",
    "init_params",
    "integer_forward",
    "load_model",
    "model_from_bytes",
    "model_to_bytes",
    "quantize_inputs",
    "quantize_model",
    "save_model",
    "table2_config",
    "table6_config",
    "taylor_sigmoid",
    "train_classifier",
]

enable_compilation_cache()
