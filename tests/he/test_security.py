"""Security claims, tested: the paper's parameters fall to least squares and
its deterministic encryption to a dictionary attack; the secure set and the
randomized encryption resist the same attacks."""

from __future__ import annotations

import numpy as np

from cipherfuse import he
from cipherfuse.he.attack import dictionary_attack, recover_secret

from .conftest import seed


def test_paper_secret_is_recovered_from_the_public_matrix() -> None:
    sk = he.keygen(he.PAPER, 16, seed=seed(1))
    M = he.identity_switch_key(sk, seed=seed(2))  # the paper's public key
    t_hat = recover_secret(M)
    np.testing.assert_array_equal(t_hat, sk.T)
    # The recovered key decrypts a ciphertext the attacker never saw in plain.
    stolen = he.SecretKey(he.PAPER, t_hat)
    x = np.arange(-8, 8)
    ct = he.encrypt_paper(M, x)
    spoof = he.Ciphertext(he.PAPER, stolen.key_id, 16, ct.data.copy(), ct.noise_bound)
    np.testing.assert_array_equal(he.decrypt(stolen, spoof), x)
    assert he.PAPER.insecure and "INSECURE" in he.PAPER.security_note


def test_same_attack_fails_on_secure_parameters() -> None:
    params = he.SECURE.with_(base_bits=1)  # 64 digits: more equations than unknowns
    m = 48  # m * 64 = 3072 columns > k = 2560 unknowns per row
    sk = he.keygen(params, m, seed=seed(3))
    M = he.identity_switch_key(sk, seed=seed(4))
    assert M.M.shape[1] > params.lwe_dim
    t_hat = recover_secret(M)
    assert np.mean(t_hat == sk.T) < 0.5  # ternary guessing alone gets ~1/3 right
    stolen = he.SecretKey(params, t_hat)
    x = np.arange(m) - m // 2
    ct = he.encrypt_paper(M, x)
    spoof = he.Ciphertext(params, stolen.key_id, m, ct.data.copy(), ct.noise_bound)
    assert np.mean(he.decrypt(stolen, spoof) == x) < 0.1


def test_deterministic_paper_encryption_falls_to_a_dictionary_attack() -> None:
    candidates = range(-128, 128)  # e.g. weights quantized with p = 2^7
    for params in (he.PAPER, he.SECURE):
        sk = he.keygen(params, 1, seed=seed(5))
        M = he.identity_switch_key(sk, seed=seed(6))
        weights = np.array([[17], [-90], [0], [127], [-128]])
        leaked = dictionary_attack(M, he.encrypt_paper(M, weights), candidates)
        assert leaked == [17, -90, 0, 127, -128]
        if params is he.SECURE:  # with k = 1 every mode is broken anyway (see above)
            pk = he.public_keygen(sk, seed=seed(7))
            randomized = he.encrypt(pk, weights, seed=seed(8))
            assert dictionary_attack(M, randomized, candidates) == [None] * 5
