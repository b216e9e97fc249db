"""Model sharing: bundles, commitments, the two-member threshold, hostile bundle bytes."""

from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pytest

from cipherfuse.mpc.errors import EncodingError, ShareInconsistency
from cipherfuse.mpc.runtime import run_three_members
from cipherfuse.mpc.sharing import (
    MAGIC,
    MemberBundle,
    flatten_parameters,
    reconstruct_model,
    share_model,
    verify_model,
)
from cipherfuse.mpc.transport import in_memory_network
from cipherfuse.nn.quantize import integer_forward
from tests.mpc.protocol_util import random_classifier, random_images, tiny_config


@pytest.fixture(scope="module")
def model():
    return random_classifier(tiny_config(), key=1)


def test_bundle_sizes_follow_the_seeded_layout(model):
    shared = share_model(model, seed=b"s")
    words = flatten_parameters(model).size
    sizes = [len(b.to_bytes()) for b in shared.bundles]
    header = [s - 8 * words * (i > 0) for i, s in enumerate(sizes)]
    assert max(header) < 4096  # member 0: two seeds and the public layout only
    assert sizes[1] - header[1] == sizes[2] - header[2] == 8 * words  # W_2 once each


def test_bundle_bytes_round_trip(model):
    shared = share_model(model, seed=b"s")
    for b in shared.bundles:
        back = MemberBundle.from_bytes(b.to_bytes())
        assert back.party == b.party and back.commitments == b.commitments
        assert back.seeds == b.seeds and back.layout == b.layout
        for k in b.words:
            np.testing.assert_array_equal(back.words[k], b.words[k])


@pytest.mark.parametrize("pair", [(0, 1), (1, 2), (2, 0)])
def test_two_members_reconstruct_the_model(model, pair):
    shared = share_model(model, seed=b"s")
    got = reconstruct_model(shared.bundles[pair[0]], shared.bundles[pair[1]])
    x = random_images(tiny_config(), 4, seed=0)
    np.testing.assert_array_equal(integer_forward(got, x), integer_forward(model, x))
    np.testing.assert_array_equal(flatten_parameters(got), flatten_parameters(model))


def test_one_member_alone_holds_words_independent_of_the_model(model):
    other = dataclasses.replace(
        model,
        layers=tuple(
            dataclasses.replace(layer, weight=layer.weight * 0 + 7)
            if hasattr(layer, "weight")
            else layer
            for layer in model.layers
        ),
    )
    a, b = share_model(model, seed=b"same"), share_model(other, seed=b"same")
    assert a.bundles[0].seeds == b.bundles[0].seeds  # member 0: seeds only, same for both
    assert a.commitments[:2] == b.commitments[:2]
    assert a.commitments[2] != b.commitments[2]


def test_verify_model_binds_the_judged_model(model):
    shared = share_model(model, seed=b"s")
    s = shared.bundles[0].seeds
    assert verify_model(model, (s[0], s[1]), shared.commitments)
    changed = dataclasses.replace(
        model,
        layers=(
            dataclasses.replace(model.layers[0], bias=model.layers[0].bias + 1),
            *model.layers[1:],
        ),
    )
    assert not verify_model(changed, (s[0], s[1]), shared.commitments)


def test_inconsistent_share_is_rejected_before_computing(model):
    shared = share_model(model, seed=b"s")
    bad_words = shared.bundles[2].words[2].copy()
    bad_words[0] += np.uint64(1)
    bad = dataclasses.replace(shared.bundles[2], words={2: bad_words})
    x = random_images(tiny_config(), 2, seed=0)
    with pytest.raises(ShareInconsistency):
        run_three_members(
            (shared.bundles[0], shared.bundles[1], bad), in_memory_network(5.0), x, [0, 1]
        )


def test_inconsistent_share_with_matching_forged_commitments_is_rejected(model):
    # The contributor gives member 2 a different W_2 *and* commitments that match it:
    # member 2's own check passes, but the three commitment triples disagree.
    from cipherfuse.mpc.sharing import layout_digest, share_commitment

    shared = share_model(model, seed=b"s")
    bad_words = shared.bundles[2].words[2].copy()
    bad_words[-1] ^= np.uint64(1 << 40)
    forged = (
        shared.commitments[0],
        shared.commitments[1],
        share_commitment(layout_digest(shared.layout), 2, bad_words),
    )
    bad = dataclasses.replace(shared.bundles[2], words={2: bad_words}, commitments=forged)
    x = random_images(tiny_config(), 2, seed=0)
    with pytest.raises(ShareInconsistency):
        run_three_members(
            (shared.bundles[0], shared.bundles[1], bad), in_memory_network(5.0), x, [0, 1]
        )


def _with_header(data: bytes, edit) -> bytes:
    (hlen,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12 : 12 + hlen])
    edit(header)
    text = json.dumps(header).encode()
    return data[:8] + struct.pack("<I", len(text)) + text + data[12 + hlen :]


def _set(key, value):
    def edit(h):
        h[key] = value

    return edit


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:5],
        lambda d: b"XXXXXXXX" + d[8:],
        lambda d: MAGIC[:-1] + b"\x09" + d[8:],
        lambda d: d[:8] + struct.pack("<I", 2**31) + d[12:],
        lambda d: d[:-8],
        lambda d: d + b"\0" * 8,
        lambda d: d[:12] + b"{not json" + d[21:],
        lambda d: _with_header(d, _set("party", 5)),
        lambda d: _with_header(d, _set("party", True)),
        lambda d: _with_header(d, _set("seeds", {"2": "00" * 32})),
        lambda d: _with_header(d, _set("explicit", [])),
        lambda d: _with_header(d, _set("commitments", ["zz"] * 3)),
        lambda d: _with_header(d, _set("words", -1)),
        lambda d: _with_header(d, _set("layout", {"layers": []})),
        lambda d: _with_header(d, lambda h: h["layout"]["layers"][0].update(weight_shape=[0])),
        lambda d: _with_header(d, lambda h: h["layout"]["layers"][0].update(kind="attention")),
        lambda d: _with_header(d, lambda h: h.update(extra=[[[[[]]]]])),
        lambda d: d[:12] + b"[" * 100_000 + d[12 + 100_000 :],
    ],
)
def test_hostile_bundle_bytes_raise_a_typed_error(model, mutate):
    data = share_model(model, seed=b"s").bundles[1].to_bytes()
    with pytest.raises(EncodingError):
        MemberBundle.from_bytes(mutate(data))


def test_oversized_bundle_is_refused_before_parsing(model):
    data = share_model(model, seed=b"s").bundles[1].to_bytes()
    with pytest.raises(EncodingError):
        MemberBundle.from_bytes(data, max_bytes=len(data) - 1)


def test_deeply_nested_header_is_a_typed_error():
    text = b'{"format": 1, "layout": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    data = MAGIC + struct.pack("<I", len(text)) + text
    with pytest.raises(EncodingError):
        MemberBundle.from_bytes(data)
