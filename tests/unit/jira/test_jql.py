from datetime import UTC, datetime

from jira_sync.jira import jql


def test_quotes_and_backslashes_are_escaped():
    assert jql.quote('a "b" \\c') == '"a \\"b\\" \\\\c"'


def test_reserved_words_and_hostile_values_stay_literals():
    assert jql.label_is('x" OR project = "OPS') == 'labels = "x\\" OR project = \\"OPS"'
    assert jql.keys_in(["DO-1", "INT-2"]) == 'key in ("DO-1", "INT-2")'
    assert jql.quote("line\nbreak") == '"line\\nbreak"'


def test_updated_since_has_minute_precision_and_order():
    query = jql.updated_since("INT", datetime(2026, 3, 1, 10, 14, 59, tzinfo=UTC))
    assert query == ('project = "INT" AND updated >= "2026-03-01 10:14" '
                     "ORDER BY updated ASC, key ASC")
