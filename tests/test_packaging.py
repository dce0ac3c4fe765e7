"""What a plain `pip install .` ships: the migrations must travel with the code."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_tree(destination: Path) -> Path:
    """The project's files as a fresh clone has them (no egg-info or build left-overs)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split()
    for name in listed:
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def test_the_wheel_carries_the_migrations_and_the_entry_point(tmp_path):
    source = source_tree(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("jira_sync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jira_sync/store/migrations/env.py" in names
    assert "jira_sync/store/migrations/script.py.mako" in names
    assert "jira_sync/store/migrations/versions/0001_initial_schema.py" in names
    for module in ("config/settings.py", "worker/celery_app.py", "webhook_app/__init__.py"):
        assert module in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "jira-sync = jira_sync.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
