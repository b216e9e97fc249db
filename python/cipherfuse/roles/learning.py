"""Learning work that needs no encrypted layers: keys, the demo CNNs, training, plain fusion."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Sequence

import jax
import numpy as np
import numpy.typing as npt

from cipherfuse import he
from cipherfuse.fusion import FusionConfig, MetaModel, PlainFeatures, train_fusion_head
from cipherfuse.nn import ModelConfig, PoolSpec, TrainConfig, TrainedModel, table2_config
from cipherfuse.nn.model import init_params
from cipherfuse.nn.train import precompile_training, train_classifier
from cipherfuse.roles.errors import RoleConfigError

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def case1_config(contributor: int) -> ModelConfig:
    """Table II's CNN for ``contributor`` (1..3) with the first pooling made average.

    The first block runs in cipherspace, where max pooling (comparisons) is impossible;
    the paper's Sec. V-D uses sum/average pooling there, so the first pooling becomes
    average pooling. Everything else is Table II.
    """
    base = table2_config(contributor)
    layers = list(base.layers)
    first_pool = next(i for i, s in enumerate(layers) if isinstance(s, PoolSpec))
    pool = layers[first_pool]
    assert isinstance(pool, PoolSpec)
    layers[first_pool] = dataclasses.replace(pool, pool="avg")
    return dataclasses.replace(base, name=f"{base.name}-avgpool1", layers=tuple(layers))


def he_keys(params: str, *, seed: bytes | None = None) -> tuple[he.SecretKey, bytes]:
    """The initiator's secret key and the serialized key it publishes.

    ``paper``: the paper's ``M`` (identity switching key, plaintext length 1);
    ``secure``: a randomized public key.
    """
    if params == "paper":
        sk = he.keygen(he.PAPER, m=1, seed=seed)
        return sk, he.dumps(he.identity_switch_key(sk))
    if params == "secure":
        sk = he.keygen(he.SECURE, m=1, seed=seed)
        return sk, he.dumps(he.public_keygen(sk))
    raise RoleConfigError(f"params must be 'paper' or 'secure', got {params!r}")


def load_published_key(params: str, blob: bytes) -> he.KeySwitchKey | he.PublicKey:
    """Parse the initiator's published key, refusing another parameter set or kind."""
    key = he.loads(blob)
    wanted = he.KeySwitchKey if params == "paper" else he.PublicKey
    if not isinstance(key, wanted) or key.params.name != params:
        raise RoleConfigError(f"the published key is not a {params} {wanted.__name__}")
    return key


def train_private_model(
    config: ModelConfig,
    labels: tuple[int, ...],
    data: tuple[FloatArray, IntArray, FloatArray, IntArray],
    behaviour: str,
    seed: int,
    train_config: TrainConfig,
) -> tuple[TrainedModel, int, float]:
    """Train (or, for Case II behaviours, fake-train) a contributor's CNN.

    Returns (model, epochs, final local verification accuracy). ``lazy`` claims an
    untrained model; ``dishonest`` trains on permuted labels (a wrong model).
    """
    key = jax.random.PRNGKey(seed)
    train_x, train_y, verify_x, verify_y = data
    if behaviour == "lazy":
        model = TrainedModel(config=config, params=init_params(config, key), labels=labels)
        return model, 0, float("nan")
    if behaviour == "dishonest":
        rng = np.random.default_rng(seed)
        perm = np.array(labels)[rng.permutation(len(labels))]
        mapping = dict(zip(labels, perm.tolist(), strict=True))
        train_y = np.array([mapping[int(v)] for v in train_y], np.int64)
    result = train_classifier(
        config, train_x, train_y, verify_x, verify_y, key, train_config, labels=labels
    )
    acc = result.verify_accuracy[-1] if result.verify_accuracy else float("nan")
    return result.model, result.epochs, float(acc)


class TrainingPrecompiler:
    """Compiles the contributors' training ahead, in a background thread.

    One architecture after the other, in the order the contributors train
    (:func:`cipherfuse.nn.train.precompile_training`), so that compiling the next
    contributor's step overlaps the current one's training and the chain work around
    it. :meth:`wait` blocks until architecture ``i`` is compiled (so training never
    compiles the same step a second time beside the thread). Only a speed-up: a
    failure is kept in :attr:`errors` and training then compiles what is missing.
    """

    def __init__(
        self, configs: Sequence[ModelConfig], train_config: TrainConfig, *, verify_size: int
    ) -> None:
        self.errors: list[BaseException] = []
        self._done = [threading.Event() for _ in configs]
        self._thread = threading.Thread(
            target=self._run,
            args=(tuple(configs), train_config, verify_size),
            name="cipherfuse-precompile",
            daemon=True,
        )
        self._thread.start()

    def _run(
        self, configs: tuple[ModelConfig, ...], train_config: TrainConfig, verify_size: int
    ) -> None:
        for config, done in zip(configs, self._done, strict=True):
            try:
                precompile_training(config, train_config, verify_size=verify_size)
            except Exception as exc:  # a speed-up only: training compiles what is missing
                self.errors.append(exc)
            finally:
                done.set()

    def wait(self, index: int) -> None:
        """Block until architecture ``index`` (of the ``configs``) is compiled or failed."""
        self._done[index].wait()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (it compiles, which cannot be interrupted midway)."""
        self._thread.join(timeout)


def fusion_key(tag: str) -> jax.Array:
    """A deterministic PRNG key for a fusion run named ``tag``."""
    digest = hashlib.sha256(tag.encode()).digest()
    return jax.random.PRNGKey(int.from_bytes(digest[:4], "little"))


def fuse_plain(
    models: list[TrainedModel],
    fit: tuple[FloatArray, IntArray],
    test: tuple[FloatArray, IntArray],
    fusion: FusionConfig,
    tag: str,
) -> float:
    """Fuse decrypted models (Strategy II, plaintext features) and test the MetaModel."""
    return fuse_plain_model(models, fit, test, fusion, tag)[1]


def fuse_plain_model(
    models: list[TrainedModel],
    fit: tuple[FloatArray, IntArray],
    test: tuple[FloatArray, IntArray],
    fusion: FusionConfig,
    tag: str,
    *,
    features: Sequence[tuple[FloatArray, FloatArray]] | None = None,
) -> tuple[MetaModel, float]:
    """Fuse decrypted models (Strategy II, plaintext features): the MetaModel and its
    accuracy on ``test``.

    ``features``: for each model, its features of ``fit[0]`` and of ``test[0]``
    (:func:`plain_features`) when the caller kept them from an earlier fusion of the
    same models; computed here otherwise (the same values).
    """
    extractors = [PlainFeatures(m) for m in models]
    if features is None:
        features = [plain_features(m, fit[0], test[0]) for m in models]
    if len(features) != len(models):
        raise RoleConfigError(f"{len(features)} feature pairs for {len(models)} models")
    head = train_fusion_head(
        [f for f, _ in features],
        fit[1],
        [e.labels for e in extractors],
        "II",
        fusion_key(tag),
        fusion,
        block_weights=[e.output_weights() for e in extractors],
    )
    meta = MetaModel(extractors=tuple(extractors), head=head)
    # MetaModel.accuracy(test) on the test features at hand.
    predicted = head.predict_from_features([t for _, t in features])
    return meta, float(np.mean(predicted == np.asarray(test[1])))


def plain_features(
    model: TrainedModel, fit_x: FloatArray, test_x: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``model``'s plaintext features of the fusion-fit and the test images."""
    extract = PlainFeatures(model)
    return extract(fit_x), extract(test_x)
