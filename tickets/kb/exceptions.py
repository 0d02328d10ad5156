"""Errors of the knowledge base; the web layer maps them as the tickets domain's."""

from __future__ import annotations

from tickets.exceptions import TicketNotFound, VersionConflict


class ArticleNotFound(TicketNotFound):
    """No article (or no such version of it): answered 404 like a missing ticket."""

    def __init__(self, article_id: int, version: int | None = None) -> None:
        super().__init__(article_id)
        self.article_id = article_id
        self.version = version
        what = f"article {article_id}" + (f" version {version}" if version else "")
        self.args = (f"no {what}",)


class ArticleChanged(VersionConflict):
    """Another admin saved the article since this edit was read: reload and redo."""

    def __init__(self, article_id: int, expected: int, actual: int | None) -> None:
        super().__init__(None, expected, actual)
        self.article_id = article_id
        self.args = (
            f"article {article_id} changed meanwhile (version {expected} expected, {actual} now)",
        )
