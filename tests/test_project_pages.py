"""Project pages for leads: create, classes mid-project, uploads, users; and permissions."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from labeler.extensions import db
from labeler.models import Image, LabelClass, Project, User
from labeler.projects import create_project
from tests import imagegen
from tests.builders import everyone_joins
from tests.conftest import login


@pytest.fixture
def project(app):
    project = create_project("coast", ["sea", "sand"])
    everyone_joins()
    return project


def png(seed: int) -> bytes:
    return imagegen.encode(PILImage.fromarray(imagegen.gradient(64, 48, seed=seed)), "PNG")


@pytest.mark.parametrize("method, url", [
    ("get", "/projects/new"), ("post", "/projects/new"), ("post", "/projects/{p}/classes"),
    ("post", "/projects/{p}/classes/1"), ("post", "/projects/{p}/upload"), ("get", "/users"),
    ("post", "/users/1"),
])
def test_annotators_get_403_and_anonymous_users_go_to_login(app, client, annotator, project,
                                                            method, url):
    url = url.format(p=project.id)
    anonymous = getattr(client, method)(url)
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]
    login(client, annotator.username)
    assert getattr(client, method)(url).status_code == 403


def test_lead_creates_a_project_with_classes(lead_client):
    response = lead_client.post("/projects/new", data={"name": "birds", "classes": "owl, hawk"})
    assert response.status_code == 302
    page = lead_client.get(response.headers["Location"]).text
    assert "owl" in page and "hawk" in page and "Upload images" in page
    duplicate = lead_client.post("/projects/new", data={"name": "birds"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.text


def test_the_new_project_checkbox_makes_a_tag_project_and_its_pages_say_so(lead_client):
    form = lead_client.get("/projects/new").text
    assert 'name="multi_label"' in form and "any number of tags" in form
    response = lead_client.post("/projects/new", data={"name": "scenes", "classes": "sea, sky",
                                                       "multi_label": "y"})
    assert response.status_code == 302
    scenes = db.session.scalar(select(Project).where(Project.name == "scenes"))
    assert scenes.multi_label
    page = lead_client.get(response.headers["Location"]).text
    assert 'class="kind-badge kind-tags"' in page and ">Tags</h2>" in page
    lead_client.post("/projects/new", data={"name": "birds", "classes": "owl"})
    assert not db.session.scalar(select(Project).where(Project.name == "birds")).multi_label
    listing = lead_client.get("/").text
    assert listing.count("kind-badge kind-tags") == 1
    assert listing.count("kind-badge kind-classes") == 1
    for path in ("label", "gallery", "dashboard", "export", "map"):
        assert "kind-badge kind-tags" in lead_client.get(f"/projects/{scenes.id}/{path}").text


def test_classes_are_added_renamed_recoloured_rekeyed_and_archived(lead_client, project):
    lead_client.post(f"/projects/{project.id}/classes", data={"name": "rock"})
    rock = db.session.scalar(select(LabelClass).where(LabelClass.name == "rock"))
    assert rock.key == "3"
    form = {f"c{rock.id}-name": "cliff", f"c{rock.id}-colour": "#112233",
            f"c{rock.id}-key": "c"}
    lead_client.post(f"/projects/{project.id}/classes/{rock.id}", data=form)
    db.session.expire_all()
    assert (rock.name, rock.colour, rock.key) == ("cliff", "#112233", "c")

    taken = {**form, f"c{rock.id}-key": "1"}
    page = lead_client.post(f"/projects/{project.id}/classes/{rock.id}", data=taken,
                            follow_redirects=True).text
    assert "already used by class" in page
    reserved = {**form, f"c{rock.id}-key": "s"}
    page = lead_client.post(f"/projects/{project.id}/classes/{rock.id}", data=reserved,
                            follow_redirects=True).text
    assert "other than S and Z" in page

    lead_client.post(f"/projects/{project.id}/classes/{rock.id}",
                     data={**form, f"c{rock.id}-archived": "y"})
    db.session.expire_all()
    assert rock.archived and rock.key is None


def test_upload_of_images_and_a_hostile_zip_lists_each_rejection(lead_client, project, tmp_path):
    archive = imagegen.hostile_zip(tmp_path / "batch.zip")
    data = {"files": [(io.BytesIO(png(1)), "a.png"), (io.BytesIO(png(1)), "copy.png"),
                      (io.BytesIO(b"not an image"), "notes.jpg"),
                      (io.BytesIO(archive.read_bytes()), "batch.zip")]}
    response = lead_client.post(f"/projects/{project.id}/upload", data=data,
                                content_type="multipart/form-data",
                                headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    report = response.json
    assert report["imported"] == 2 and report["duplicates"] == 1
    reasons = {r["name"]: r["reason"] for r in report["rejected"]}
    assert "not an image" in reasons["notes.jpg"]
    assert "zip-slip" in reasons["batch.zip!../../escape.png"]
    names = {i.original_name for i in db.session.scalars(select(Image))}
    assert names == {"a.png", "batch.zip!good/inside.png"}


def test_upload_with_folder_labels_from_a_zip(lead_client, project, tmp_path):
    import zipfile

    path = tmp_path / "classes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("sea/1.png", png(5))
        archive.writestr("sand/2.png", png(6))
    response = lead_client.post(
        f"/projects/{project.id}/upload", content_type="multipart/form-data",
        data={"files": [(io.BytesIO(path.read_bytes()), "classes.zip")],
              "labels_from_folders": "y"}, headers={"Accept": "application/json"})
    assert response.json["labelled"] == 2


def test_upload_without_files_is_a_readable_error(lead_client, project):
    response = lead_client.post(f"/projects/{project.id}/upload", data={},
                                headers={"Accept": "application/json"})
    assert response.status_code == 400 and "Choose one or more" in response.json["detail"]


def test_upload_over_the_size_limit_is_413(app, lead_client, project):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = lead_client.post(f"/projects/{project.id}/upload",
                                data={"files": [(io.BytesIO(b"x" * 5000), "big.png")]},
                                content_type="multipart/form-data")
    assert response.status_code == 413


def test_lead_manages_users_but_cannot_demote_themselves(lead_client, lead):
    created = lead_client.post("/users", data={"username": "newbie", "password": "long-enough-1",
                                               "role": "annotator"})
    assert created.status_code == 302
    newbie = db.session.scalar(select(User).where(User.username == "newbie"))
    lead_client.post(f"/users/{newbie.id}", data={f"u{newbie.id}-role": "lead"})
    db.session.expire_all()
    assert newbie.role == "lead" and not newbie.active  # an unticked box deactivates
    page = lead_client.post(f"/users/{lead.id}", data={f"u{lead.id}-role": "annotator",
                                                       f"u{lead.id}-active": "y"},
                            follow_redirects=True).text
    assert "cannot demote or deactivate yourself" in page
    db.session.expire_all()
    assert lead.role == "lead"


def test_names_with_html_are_escaped_everywhere(lead_client):
    project = create_project("<script>alert(1)</script>", ["<b>bold</b>"])
    for url in ("/", f"/projects/{project.id}", f"/projects/{project.id}/label"):
        page = lead_client.get(url).text
        assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page
