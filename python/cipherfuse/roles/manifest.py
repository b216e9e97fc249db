"""What the initiator publishes off chain: the task manifest and the verification data.

The task's ``objectiveUri`` on chain is the CID of a JSON manifest in the store. The
manifest names the HE parameter set, the CID of the initiator's public key (``he.dumps``),
the CID of the verification data, the accuracy criterion and the quantization scales. The
verification data is an ``.npz`` archive loaded with ``allow_pickle=False`` and
schema-checked. Everything fetched by CID is verified by the store against its hash.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cipherfuse.roles.errors import RoleConfigError
from cipherfuse.storage import Store

MANIFEST_FORMAT = "cipherfuse-task-manifest"
MANIFEST_VERSION = 1
PARAM_SETS = ("paper", "secure")


@dataclass(frozen=True)
class TaskManifest:
    """The off-chain half of a task (its CID is the on-chain objective URI)."""

    params: str
    key_cid: str
    key_id: str
    verification_cid: str
    threshold: float
    weight_scale: int
    input_scale: int
    fusion_epochs: tuple[int, int]
    nonce: str

    def __post_init__(self) -> None:
        if self.params not in PARAM_SETS:
            raise RoleConfigError(f"params must be one of {PARAM_SETS}, got {self.params!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise RoleConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.weight_scale < 1 or self.input_scale < 1:
            raise RoleConfigError("weight_scale and input_scale must be >= 1")

    def to_bytes(self) -> bytes:
        """Canonical JSON."""
        body: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION}
        body.update(asdict(self))
        body["fusion_epochs"] = list(self.fusion_epochs)
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskManifest:
        """Parse and validate; raises :class:`RoleConfigError` naming what is wrong."""
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RoleConfigError(f"the task manifest is not JSON: {exc}") from exc
        fields = {
            "params": str,
            "key_cid": str,
            "key_id": str,
            "verification_cid": str,
            "threshold": float,
            "weight_scale": int,
            "input_scale": int,
            "fusion_epochs": list,
            "nonce": str,
        }
        if (
            not isinstance(body, dict)
            or body.get("format") != MANIFEST_FORMAT
            or body.get("version") != MANIFEST_VERSION
            or set(body) != {"format", "version", *fields}
        ):
            raise RoleConfigError(
                f"not a {MANIFEST_FORMAT} v{MANIFEST_VERSION} document; is the task id right?"
            )
        for name, kind in fields.items():
            if not isinstance(body[name], kind):
                raise RoleConfigError(f"task manifest field {name} must be {kind.__name__}")
        epochs = body["fusion_epochs"]
        if len(epochs) != 2 or not all(isinstance(e, int) and 0 <= e <= 1000 for e in epochs):
            raise RoleConfigError("task manifest fusion_epochs must be two integers in 0..1000")
        body["fusion_epochs"] = (epochs[0], epochs[1])
        del body["format"], body["version"]
        return cls(**body)


def new_nonce() -> str:
    """Random hex that makes each manifest (and so its CID) unique."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class VerificationData:
    """The sample set the initiator gives the verifiers: a fit part and a check part."""

    fit_x: npt.NDArray[np.float32]
    fit_y: npt.NDArray[np.int64]
    check_x: npt.NDArray[np.float32]
    check_y: npt.NDArray[np.int64]

    def to_bytes(self) -> bytes:
        """``.npz`` bytes (no pickled objects)."""
        buf = io.BytesIO()
        np.savez(buf, **{k: getattr(self, k) for k in ("fit_x", "fit_y", "check_x", "check_y")})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> VerificationData:
        """Load with ``allow_pickle=False`` and check names, dtypes and shapes."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise RoleConfigError(f"verification data is not a valid .npz archive: {exc}") from exc
        if set(arrays) != {"fit_x", "fit_y", "check_x", "check_y"}:
            raise RoleConfigError(f"verification data holds {sorted(arrays)}, expected 4 arrays")
        for part in ("fit", "check"):
            x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
            if (
                x.dtype != np.float32
                or y.dtype != np.int64
                or x.ndim != 4
                or y.shape != (x.shape[0],)
                or x.shape[0] == 0
                or not np.isfinite(x).all()
                or y.min() < 0
                or y.max() > 9
            ):
                raise RoleConfigError(f"verification data part {part!r} has a wrong shape/dtype")
        return cls(**arrays)


def fetch_manifest(store: Store, cid: str) -> TaskManifest:
    """Fetch and parse a manifest by CID (the store verifies the bytes)."""
    return TaskManifest.from_bytes(store.get(cid))
