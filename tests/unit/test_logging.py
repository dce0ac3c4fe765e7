import logging

from config.logging import RedactingFilter


def make_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)


def test_known_secrets_and_url_passwords_are_masked():
    record = make_record("token %s to %s", "tok-123456", "redis://:s3cr3t@redis:6379/0")
    RedactingFilter(["tok-123456"]).filter(record)
    assert record.getMessage() == "token *** to redis://:***@redis:6379/0"


def test_messages_without_secrets_are_untouched():
    record = make_record("connected to %s", "redis://127.0.0.1:6379/0")
    RedactingFilter(["tok-123456"]).filter(record)
    assert record.args == ("redis://127.0.0.1:6379/0",)
