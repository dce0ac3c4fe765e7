"""The model: immutable values, whatever sequences they were built from."""

from __future__ import annotations

import subprocess
import sys

from jira_sync.render import BulletList, Document, HardBreak, OrderedList, Paragraph, Text
from jira_sync.render.model import with_breaks


def test_lists_are_stored_as_tuples_so_documents_compare_and_hash():
    built = Document([BulletList([[Paragraph([Text("a")])]])])
    assert built == Document((BulletList(((Paragraph((Text("a"),)),),)),))
    assert hash(built) == hash(Document((BulletList(((Paragraph((Text("a"),)),),)),)))
    assert BulletList([]) != OrderedList([])


def test_newlines_inside_runs_become_breaks_keeping_the_marks():
    assert with_breaks((Text("a\nb", strong=True), HardBreak())) == [
        Text("a", strong=True), HardBreak(), Text("b", strong=True), HardBreak()]


def test_the_renderers_load_neither_flask_nor_celery():
    script = ("import sys, jira_sync.render; "
              "print(sorted(m for m in ('flask', 'celery') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                            text=True).stdout.strip()
    assert loaded == "[]"
