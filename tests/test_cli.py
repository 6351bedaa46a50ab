"""The command line, through Flask's test runner and through the real `labeler` entry point."""

from __future__ import annotations

import hashlib

from click.testing import CliRunner
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.cli import main
from labeler.extensions import db
from labeler.models import ApiToken, User
from tests import imagegen
from tests.dbutil import database_env, migrated_tables, on_postgres


def test_project_create_list_show(runner):
    result = runner.invoke(args=["project", "create", "land", "--labels", "sea, forest,sea"])
    assert result.exit_code == 0, result.output
    assert "1=sea, 2=forest" in result.output

    listing = runner.invoke(args=["project", "list"])
    assert "land" in listing.output and "0 images" in listing.output

    shown = runner.invoke(args=["project", "show", "land"])
    assert "[1] sea: 0 labelled" in shown.output and "[2] forest" in shown.output


def test_errors_are_one_line_and_exit_non_zero(runner):
    runner.invoke(args=["project", "create", "land"])
    for args in (["project", "create", "land"], ["project", "show", "nope"],
                 ["import", "nope", "."], ["token", "create", "ghost"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output


def test_import_prints_rejections_and_summary(runner, tmp_path):
    runner.invoke(args=["project", "create", "land", "--labels", "sea"])
    folder = tmp_path / "in"
    imagegen.write_files(folder / "sea", {"a.png": imagegen.encode(
        PILImage.fromarray(imagegen.gradient(seed=1)), "PNG")})
    imagegen.write_files(folder / "city", {"b.png": imagegen.encode(
        PILImage.fromarray(imagegen.gradient(seed=2)), "PNG")})
    imagegen.write_files(folder, {"notes.jpg": b"plain text"})

    result = runner.invoke(args=["import", "land", str(folder), "--labels-from-folders"])

    assert result.exit_code == 0, result.output
    assert "notes.jpg: not an image" in result.output
    assert "2 imported, 0 duplicates, 1 rejected, 2 labelled" in result.output
    shown = runner.invoke(args=["project", "show", "land"]).output
    assert "sea: 1 labelled" in shown and "city: 1 labelled" in shown


def test_user_create_with_password_from_stdin_stores_a_hash(runner):
    result = runner.invoke(args=["user", "create", "alice", "--role", "lead", "--password-stdin"],
                           input="s3cret-password\n")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "alice"))
    assert user.role == "lead" and "s3cret-password" not in user.password_hash


def test_user_create_prompts_for_password(runner):
    result = runner.invoke(args=["user", "create", "bob"], input="pass-word-1\npass-word-1\n")
    assert result.exit_code == 0 and "Created annotator 'bob'" in result.output


def test_short_password_is_refused(runner):
    result = runner.invoke(args=["user", "create", "bob", "--password-stdin"], input="short\n")
    assert result.exit_code == 1 and "too short" in result.output


def test_token_is_printed_once_and_stored_as_hash(runner):
    runner.invoke(args=["user", "create", "alice", "--password-stdin"], input="long-password\n")
    result = runner.invoke(args=["token", "create", "alice"])
    token = result.stdout.strip()
    assert result.exit_code == 0 and token.startswith("lbl_")
    stored = db.session.scalars(select(ApiToken)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.token_hash


def test_entry_point_runs_on_a_fresh_data_dir(tmp_path):
    """`labeler` itself (not Flask's test runner): migrations applied on first use."""
    env = {"LABELER_HOME": str(tmp_path / "home"), **database_env(tmp_path / "home", empty=True)}
    cli = CliRunner()
    assert cli.invoke(main, ["project", "create", "p1", "--labels", "a,b"], env=env).exit_code == 0
    result = cli.invoke(main, ["project", "list"], env=env)
    assert result.exit_code == 0 and "p1" in result.output
    if on_postgres():  # the database began empty
        assert "alembic_version" in migrated_tables(env["LABELER_DATABASE_URL"])
    else:
        assert (tmp_path / "home" / "labeler.sqlite3").exists()


def test_every_command_has_help():
    cli = CliRunner()
    for args in (["--help"], ["import", "--help"], ["project", "create", "--help"],
                 ["user", "create", "--help"], ["token", "create", "--help"],
                 ["serve", "--help"], ["demo", "--help"], ["db", "upgrade", "--help"]):
        result = cli.invoke(main, args)
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_demo_prepares_project_and_lead_without_serving(tmp_path):
    cli = CliRunner()
    result = cli.invoke(main, ["demo", "--home", str(tmp_path / "demo"), "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "Log in as 'demo' with password" in result.output
    assert "3000 Fashion-MNIST images in 10 classes" in result.output
    assert "'demo-tags': 1000 mosaics" in result.output and "multi-label" in result.output
    again = cli.invoke(main, ["demo", "--home", str(tmp_path / "demo"), "--no-serve"])
    assert "3000 Fashion-MNIST images" in again.output  # not imported twice
    assert "'demo-tags': 1000 mosaics" in again.output
