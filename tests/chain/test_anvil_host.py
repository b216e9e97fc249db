"""AnvilNode's listen address: loopback by default, an IPv4 address where asked."""

from __future__ import annotations

import pytest

from cipherfuse.chain import AnvilNode
from cipherfuse.chain.errors import ChainParameterError


def test_the_listen_address_is_an_ipv4_address_and_names_the_urls() -> None:
    assert AnvilNode(port=8545).url == "http://127.0.0.1:8545"
    node = AnvilNode(port=8545, host="10.20.30.1")
    assert node.url == "http://10.20.30.1:8545" and node.ws_url == "ws://10.20.30.1:8545"
    for bad in ("localhost", "10.20.30", "::1", ""):
        with pytest.raises(ChainParameterError, match="host must be an IPv4 address"):
            AnvilNode(host=bad)
