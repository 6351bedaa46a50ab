"""Exceptions and warnings that carry a sentence meant for the user."""


class LabelerError(Exception):
    """An error whose message is a complete sentence telling the user what to do next.

    The CLI prints it as one line and exits non-zero; the web layer shows it on the page.
    """


class NotFound(LabelerError):
    """A named project, user, image or class does not exist."""


class AlreadyExists(LabelerError):
    """Creating something whose name is already taken."""


class LabelerWarning(UserWarning):
    """Warnings raised by labeler itself (tests turn them into errors)."""
