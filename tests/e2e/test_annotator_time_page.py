"""The dashboard's Annotators table shows the time the labels' own timestamps measure."""

from __future__ import annotations

import pytest

from labeler.users import create_user
from tests.builders import add_acts, forty_in_42_seconds, server_now
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e


def test_forty_labels_in_42_seconds_read_as_42_seconds(page, live_server, project):
    create_user("lena", "password-123", "lead")
    add_acts(project, create_user("ann", "password-123"),
             forty_in_42_seconds(now=server_now()))
    log_in(page, live_server, "lena", "password-123")
    page.goto(f"{live_server}/projects/{project.id}/dashboard")
    page.wait_for_selector("#dashboard[data-loaded=true]")

    cells = page.locator("#annotators tbody tr:first-child td").all_text_contents()
    # Annotator, labels, last hour (they were two hours ago), per active hour, active time.
    assert cells == ["ann", "40", "0", "3,428.6", "42 s"]
