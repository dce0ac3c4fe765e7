import logging
import sys

from config.logging import RedactingFormatter


def make_record(msg: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


def test_known_secrets_and_url_passwords_are_masked():
    record = make_record("token %s to %s", "tok-123456", "redis://:s3cr3t@redis:6379/0")
    text = RedactingFormatter(["tok-123456"], fmt="%(message)s").format(record)
    assert text == "token *** to redis://:***@redis:6379/0"


def test_secrets_in_tracebacks_are_masked():
    try:
        raise RuntimeError("auth failed for tok-123456")
    except RuntimeError:
        record = make_record("request failed", exc_info=sys.exc_info())
    text = RedactingFormatter(["tok-123456"]).format(record)
    assert "RuntimeError: auth failed for ***" in text
    assert "tok-123456" not in text


def test_messages_without_secrets_are_untouched():
    record = make_record("connected to %s", "redis://127.0.0.1:6379/0")
    text = RedactingFormatter(["tok-123456"], fmt="%(message)s").format(record)
    assert text == "connected to redis://127.0.0.1:6379/0"
