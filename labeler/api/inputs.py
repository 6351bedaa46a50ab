"""The request shapes of the JSON API (bodies, query strings, forms), declared once.

``labeler.api.spec`` validates each request against its model before the view runs and
publishes the same models in the OpenAPI document, so every constraint the server
enforces on the shape of a request is one the document states: non-empty names, enums,
id ranges, page sizes, the one-of of bulk-label. Unknown fields are refused everywhere
(``extra="forbid"``: a 400 naming the field), so a misspelt option never silently does
nothing. JSON bodies are strict (``"5"`` is not an integer); query strings and forms are
text, so their numbers and booleans are parsed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from ..gallery import MAX_BULK, MAX_PAGE_SIZE, PAGE_SIZE
from ..learning.query import STRATEGIES
from ..models import ID_MAX
from ..projects import MAX_NAME_LENGTH


def _whole_number(value: Any) -> Any:
    """JSON Schema counts ``5.0`` as an integer, so the server does too (``5.5`` stays out)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: Ids are 1..ID_MAX (PostgreSQL's ``integer`` columns; SQLite's would hold more).
Id = Annotated[int, Field(ge=1, le=ID_MAX), BeforeValidator(_whole_number)]

# Python's whitespace (str.isspace), spelled out: JSON Schema, pydantic and Python each
# read \s differently, and a name must hold one character that is not in this set.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: Text stored or looked up in the database: no NUL (PostgreSQL refuses it in text).
Text = Annotated[str, Field(max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00]*$")]
#: A name: at most 200 characters, at least one of them visible, no NUL.
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH,
                            pattern=rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$")]


class Body(BaseModel):
    """A JSON request body: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Params(BaseModel):
    """A query string or form: values arrive as text; unknown fields refused.

    An empty value is an absent one: the gallery page's filter form submits its empty
    fields (``?min_confidence=&sort=``), and links leave the default sort empty.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data


NAME_RULE = "at most 200 characters, at least one of them visible, and no NUL."


class NewProject(Body):
    name: Name = Field(description=f"The project's name: {NAME_RULE}")
    classes: list[Name] = Field(default=[], max_length=100, description=(
        f"Initial classes, in keyboard-key order; each name {NAME_RULE}"))


class NewAnnotation(Body):
    image_id: Id
    label: Text = Field(description="A class name of the project (no NUL).")


class ImageRef(Body):
    image_id: Id


def _absent_by_default(schema: dict[str, Any]) -> None:
    """An optional field may be left out, but not sent as null (JSON Schema side)."""
    schema.pop("default", None)


def optional(**constraints: Any) -> Any:
    """A field that may be absent (None in the model) but, when sent, is never null."""
    return Field(default=None, json_schema_extra=_absent_by_default, **constraints)


class BulkLabel(Body):
    """Exactly one of ``label`` (one class for all) or ``confirm_predictions: true``."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["label"], "not": {"required": ["confirm_predictions"]}},
        {"required": ["confirm_predictions"], "not": {"required": ["label"]}},
    ]})

    image_ids: list[Id] = Field(min_length=1, max_length=MAX_BULK)
    label: Text = optional(description="The class to give every image.")
    confirm_predictions: Literal[True] = optional(
        description="Give each image its predicted class.")

    @model_validator(mode="after")
    def _one_of(self) -> BulkLabel:
        if (self.label is None) == (self.confirm_predictions is None):
            raise ValueError("Send either 'label' (a class name) or 'confirm_predictions': "
                             "true, not both and not neither.")
        return self


class TrainingSettings(Body):
    """At least one of the two settings."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    strategy: Literal[tuple(STRATEGIES)] = optional(  # type: ignore[valid-type]
        description="The sampling strategy of the next rounds.")
    retrain_every: Annotated[int, BeforeValidator(_whole_number)] = optional(ge=1, le=100_000,
                                  description="Start a round after this many new labels.")

    @model_validator(mode="after")
    def _some(self) -> TrainingSettings:
        if self.strategy is None and self.retrain_every is None:
            raise ValueError("Send 'strategy' and/or 'retrain_every' to change a setting.")
        return self


class NextQuery(Params):
    n: int = Field(default=1, ge=1, le=50, description="How many images.")


#: ``after``: a ``next_cursor`` (an image id, or ``confidence:id`` when sorting by confidence).
CURSOR = r"^([0-9]{1,19}|(none|-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?):[0-9]{1,19})$"


class ImagesQuery(Params):
    label: Text = Field(default="", description="A class name, 'labelled' or 'unlabelled'.")
    predicted: Text = Field(default="", description="A predicted class name.")
    min_confidence: float = optional(ge=0, le=1, description="Lowest prediction confidence.")
    max_confidence: float = optional(ge=0, le=1, description="Highest prediction confidence.")
    suspected: bool = Field(default=False,
                            description="Only images whose label the model doubts.")
    duplicate_group: str = Field(default="", pattern=r"^([Aa][Nn][Yy]|[0-9]{1,9})?$",
                                 description="A duplicate group number or 'any'.")
    sort: Literal["id", "confidence"] = Field(
        default="id", description="Import order (default) or least confident first.")
    after: str = Field(default="", pattern=rf"({CURSOR})|^$",
                       description="The previous page's next_cursor, as the server sent it.")
    limit: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Images per page.")


class MapQuery(Params):
    method: Literal["auto", "pca"] = Field(
        default="auto", description="'auto': the t-SNE layout once it is computed (a "
        "background job queued when the vectors change), PCA until then; 'pca': PCA.")


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _form_boolean(value: Any) -> Any:
    """A multipart boolean is the text 'true' or 'false' (anything else is refused)."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


#: An uploaded file (multipart): validated to be one, published as binary.
Upload = Annotated[Any, WithJsonSchema({"type": "string", "format": "binary"})]


class UploadForm(Params):
    files: Annotated[list[Upload], BeforeValidator(_as_list)] = Field(
        min_length=1, description="Images and zip archives.")
    labels_from_folders: Annotated[bool, BeforeValidator(_form_boolean)] = Field(
        default=False, strict=True,
        description="Label images by the folder they sit in inside a zip.")


class ExportQuery(Params):
    format: Literal["csv", "jsonl", "folders", "model"] = Field(
        description="What to export: labels (csv, jsonl), images by class (folders, a zip) "
                    "or the trained classifier (model, one .keras file).")
    include_predictions: bool = Field(
        default=False, description="csv and jsonl: add predicted class and confidence, and "
                                   "rows for unlabelled images.")
    val_split: float = optional(gt=0, lt=1, description="folders: the fraction of each class "
                                "put in val/ (the rest in train/).")
