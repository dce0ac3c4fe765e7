"""The filesystem spool: a message appears under a consumer's name only once it is whole."""

from kombu import Connection

from jira_sync.broker import transport_options


def test_a_message_is_renamed_into_place_whole_and_a_partial_one_is_never_read(tmp_path):
    url = f"filesystem://localhost{tmp_path}"
    with Connection(url, transport_options=transport_options(url)) as connection:
        channel = connection.channel()
        assert type(channel).__module__ == "jira_sync.spool"
        queue = tmp_path / "queue"
        # What kombu's own transport leaves while it writes: a consumer must pass it by.
        (queue / f"1_{'0' * 32}.work.msg.part").write_bytes(b"")
        channel._put("work", {"body": "whole"})
        assert [p.suffix for p in queue.iterdir()].count(".msg") == 1
        assert channel._get("work") == {"body": "whole"}
        assert [p.name.endswith(".part") for p in queue.iterdir()] == [True]
