import pytest
from cryptography.fernet import Fernet

from jira_sync.crypto import SecretBox, SecretsUnreadable


def key() -> str:
    return Fernet.generate_key().decode()


def test_sealed_secrets_round_trip_and_hide_the_plaintext():
    box = SecretBox((key(),))
    token = box.seal({"api_token": "tok-123"})
    assert "tok-123" not in token
    assert box.open(token) == {"api_token": "tok-123"}
    assert box.open(None) == {}


def test_rotation_reads_old_tokens_and_reseals_with_the_first_key():
    old, new = key(), key()
    token = SecretBox((old,)).seal({"pat": "p"})
    rotated_box = SecretBox((new, old))
    assert rotated_box.open(token) == {"pat": "p"}
    assert SecretBox((new,)).open(rotated_box.rotate(token)) == {"pat": "p"}


def test_a_retired_key_gives_a_reason_without_the_token():
    token = SecretBox((key(),)).seal({"pat": "p"})
    with pytest.raises(SecretsUnreadable) as caught:
        SecretBox((key(),)).open(token)
    assert token not in str(caught.value)
    assert "JIRA_SYNC_SECRET_KEY" in str(caught.value)


def test_repr_shows_no_key():
    k = key()
    assert k not in repr(SecretBox((k,)))


def test_rotating_a_token_no_key_opens_says_so_without_the_token():
    token = SecretBox((key(),)).seal({"pat": "p"})
    with pytest.raises(SecretsUnreadable) as caught:
        SecretBox((key(), key())).rotate(token)
    assert token not in str(caught.value)
