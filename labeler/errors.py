"""Exceptions and warnings that carry a sentence meant for the user."""


class LabelerError(Exception):
    """An error whose message is a complete sentence telling the user what to do next.

    The CLI prints it as one line and exits non-zero; the web layer shows it on the page.
    """


class NotFound(LabelerError):
    """A named project, user, image or class does not exist."""


class AlreadyExists(LabelerError):
    """Creating something whose name is already taken."""


class Conflict(LabelerError):
    """A well-formed request that the current state does not allow (the API's 409)."""


class Forbidden(LabelerError):
    """The caller's role does not allow this (the API's 403)."""


class LabelerWarning(UserWarning):
    """Warnings raised by labeler itself (tests turn them into errors)."""


def allow_header(exc: Exception) -> dict[str, str]:
    """The ``Allow`` header a 405 must carry (RFC 9110), else no header.

    Our JSON and page error handlers build their own responses, which drops the header
    werkzeug's ``MethodNotAllowed`` would have sent.
    """
    methods = getattr(exc, "valid_methods", None)
    return {"Allow": ", ".join(sorted(methods))} if getattr(exc, "code", 0) == 405 and methods \
        else {}
