"""Settings: declared once, read from the environment, documented; the secret key."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from labeler import create_app
from labeler.cli import main
from labeler.config import SETTINGS, load_config

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config["HOME"] == (tmp_path / "labeler-data").resolve()
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'labeler-data'}" \
        "/labeler.sqlite3"
    assert config["MAX_CONTENT_LENGTH"] == 512 * 1024 * 1024


def test_environment_overrides_defaults_and_arguments_override_environment(tmp_path):
    environ = {"LABELER_HOME": str(tmp_path), "LABELER_MAX_UPLOAD_MB": "5",
               "LABELER_SESSION_COOKIE_SECURE": "true"}
    config = load_config({"MAX_UPLOAD_MB": 7}, environ=environ)
    assert config["HOME"] == tmp_path.resolve()
    assert config["MAX_UPLOAD_MB"] == 7
    assert config["SESSION_COOKIE_SECURE"] is True


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ValueError, match="LABELER_MAX_UPLOAD_MB"):
        load_config(environ={"LABELER_MAX_UPLOAD_MB": "lots"})


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    first = create_app({"HOME": tmp_path}).config["SECRET_KEY"]
    second = create_app({"HOME": tmp_path}).config["SECRET_KEY"]
    assert first == second and len(first) >= 64
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text()
    for setting in SETTINGS:
        assert f"`{setting.env_var}`" in readme, f"{setting.env_var} is not in the README"


def _command_paths(group, prefix=()):
    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path
        if hasattr(command, "commands") and name != "db":
            yield from _command_paths(command, path)


def test_every_cli_command_is_documented_in_the_readme():
    readme = README.read_text()
    for path in _command_paths(main):
        assert re.search(rf"`labeler {' '.join(path)}\b", readme), \
            f"`labeler {' '.join(path)}` is not in the README"
