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


def json_line(record: logging.LogRecord, secrets=("tok-123456",)) -> dict:
    import json

    from config.logging import JsonFormatter

    text = JsonFormatter(secrets).format(record)
    assert "\n" not in text  # one object a line, tracebacks included
    return json.loads(text)


def test_json_lines_carry_the_record_and_what_the_task_bound():
    from config.logging import bind, clear_context

    bind(task_id="t-1", tenant="acme", qalita_issue_id=1, jira_key="DATA-1")
    bind(qalita_issue_id=4211, jira_key=None)  # the next link, not in Jira yet
    try:
        line = json_line(make_record("flushed %s", "DATA-1"))
    finally:
        clear_context()
    assert line["message"] == "flushed DATA-1"
    assert (line["level"], line["logger"]) == ("INFO", "t")
    assert line["time"].endswith("+00:00")
    assert (line["task_id"], line["tenant"], line["qalita_issue_id"]) == ("t-1", "acme", 4211)
    assert "jira_key" not in line  # not known: left out, not null
    assert "tenant" not in json_line(make_record("after the task"))


def test_json_lines_mask_secrets_even_where_json_would_escape_them():
    secret = 'tok"' + "456\\x"  # built, so the traceback's source line does not show it
    try:
        raise RuntimeError(f"auth failed for {secret}")
    except RuntimeError:
        record = make_record("token %s to %s", "tok-123456", "redis://:s3cr3t@redis:6379/0",
                             exc_info=sys.exc_info())
    line = json_line(record, secrets=["tok-123456", secret])
    assert line["message"] == "token *** to redis://:***@redis:6379/0"
    assert "RuntimeError: auth failed for ***" in line["exception"]
    assert secret not in line["exception"]


def test_binding_an_unknown_field_is_refused():
    import pytest

    from config.logging import bind

    with pytest.raises(TypeError, match="password"):
        bind(password="x")


def test_configure_picks_the_format():
    from config.logging import JsonFormatter, RedactingFormatter, configure

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure("INFO", ["tok-123456"], log_format="json")
        assert type(root.handlers[0].formatter) is JsonFormatter
        configure("INFO", ["tok-123456"])
        assert type(root.handlers[0].formatter) is RedactingFormatter
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
