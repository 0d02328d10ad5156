"""The procedures knowledge base: articles written by admins, searched by agents.

Steps of an article's life:

1. ``create``: an admin writes it (version 1; a row of ``kb_article_versions``).
2. ``update``: every save is a new version, checked against the version the
   admin read (two admins cannot overwrite each other); ``archived`` takes it
   out of the agents' search without losing it.
3. ``search``: an agent on a call types a few words (with or without
   accents); the best articles come first (:mod:`tickets.kb.search`).  The
   search is recorded (one row per query typed on, not per keystroke) so the
   report shows what was asked and not found.
4. The level-1 ticket names the article it was answered with
   (:meth:`tickets.service.TicketService.create` checks it and counts the use).
5. ``report``: the articles used most and the searches that found nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from core.text import fold_phrase, words
from tickets.exceptions import INACTIVE, TAKEN, UNKNOWN, Forbidden, InvalidInput
from tickets.kb import search as kbsearch
from tickets.kb.exceptions import ArticleChanged, ArticleNotFound
from tickets.kb.models import (
    CODE_MAX,
    SHORT_MAX,
    Article,
    ArticlePair,
    ArticleVersion,
    ArticleWord,
    Search,
)
from tickets.kb.schemas import CONTENT, ArticleChange, ArticleIn
from tickets.models import Agency, Ticket
from tickets.schemas import validate

log = logging.getLogger(__name__)

READERS = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
# a query typed on (longer or shorter) within this time updates the user's last search
TYPING = timedelta(seconds=30)
DEFAULT_LIMIT = 10
MAX_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Hit:
    """One article found, with its rank."""

    article: Article
    score: int


@dataclass(frozen=True, slots=True)
class Found:
    """What a search answered: the hits, best first, and whether every word matched."""

    query: str
    hits: list[Hit]
    # False: no article had every word; these have some of them
    complete: bool


@dataclass(frozen=True, slots=True)
class UsedRow:
    article_id: int
    title: str
    example: bool
    tickets: int
    views: int


@dataclass(frozen=True, slots=True)
class NotFoundRow:
    folded: str
    query: str  # one of the ways it was typed
    times: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class Report:
    start: datetime
    end: datetime
    used: list[UsedRow]
    not_found: list[NotFoundRow]
    searches: int
    searches_not_found: int


def search_columns(values: dict[str, Any], agency_name: str | None = None) -> dict[str, str]:
    """``search_text`` and ``title_text`` of an article with ``values``."""
    return {
        "title_text": kbsearch.document_text(values.get("title")),
        "search_text": kbsearch.document_text(
            values.get("title"),
            values.get("keywords"),
            values.get("summary"),
            values.get("documents"),
            values.get("steps"),
            values.get("fees"),
            values.get("processing_time"),
            agency_name,
        ),
    }


async def write_words(s: AsyncSession, article_id: int, title_text: str, search_text: str) -> None:
    """(Re)write an article's rows of the word and word-pair indexes, in the caller's
    transaction."""
    await s.execute(delete(ArticleWord).where(ArticleWord.article_id == article_id))
    await s.execute(delete(ArticlePair).where(ArticlePair.article_id == article_id))
    rows = kbsearch.word_rows(article_id, title_text, search_text)
    if rows:
        await s.execute(insert(ArticleWord), rows)
    pairs = kbsearch.pair_rows(article_id, title_text, search_text)
    if pairs:
        await s.execute(insert(ArticlePair), pairs)


def slug(title: str) -> str:
    """A code made from a title: "Đăng ký khai sinh" -> "dang-ky-khai-sinh"."""
    text = "-".join(words(title))
    text = re.sub(r"[^a-z0-9-]", "", text)[: CODE_MAX - 8].strip("-")
    return text if len(text) >= 2 else "bai-viet"


class KnowledgeBase:
    """Reads the knowledge base for the staff; changes it for admins only."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.dialect = "postgresql" if db.url.startswith("postgresql") else "sqlite"

    # -- writing ------------------------------------------------------------------

    async def create(self, actor: Actor, data: dict[str, Any], *, example: bool = False) -> Article:
        """A new article (admins): version 1."""
        self._require_admin(actor, "create_article")
        form = validate(ArticleIn, data)
        now = self.clock.now()
        values = {name: getattr(form, name) for name in CONTENT}
        try:
            async with self.db.session() as s:
                agency = await self._agency(s, form.agency_id)
                code = form.code or await self._free_code(s, slug(form.title))
                if form.code and await s.scalar(select(Article.id).where(Article.code == code)):
                    raise InvalidInput.one("code", TAKEN)
                article = Article(
                    code=code,
                    **values,
                    **search_columns(values, agency.name if agency else None),
                    example=example,
                    archived=False,
                    version=1,
                    uses=0,
                    views=0,
                    created_at=now,
                    updated_at=now,
                )
                s.add(article)
                await s.flush()
                await write_words(s, article.id, article.title_text, article.search_text)
                s.add(self._version_row(article, actor, now, form.note))
                await s.flush()
                await s.refresh(article)
        except IntegrityError:
            raise InvalidInput.one("code", TAKEN) from None
        log.info("kb article %s (%s) created by %s", article.code, article.id, actor.name)
        return article

    async def update(
        self, actor: Actor, article_id: int, version: int, data: dict[str, Any]
    ) -> Article:
        """Save an edit (admins) as a new version; nothing changed, no new version."""
        self._require_admin(actor, "update_article")
        form = validate(ArticleChange, data)
        given = form.model_fields_set
        async with self.db.session() as s:
            article = await self._load(s, article_id)
            if article.version != version:
                raise ArticleChanged(article_id, version, article.version)
            values = {name: getattr(article, name) for name in (*CONTENT, "archived")}
            for name in given - {"note"}:
                values[name] = getattr(form, name)
            if values["archived"] is None:  # (the document allows only true or false)
                values["archived"] = article.archived
            if all(values[n] == getattr(article, n) for n in values):
                return article
            # the agency already named may have been deactivated since: it stays named
            agency = await self._agency(
                s, values["agency_id"], allow_inactive=values["agency_id"] == article.agency_id
            )
            now = self.clock.now()
            result = await s.execute(
                update(Article)
                .where(Article.id == article_id, Article.version == version)
                .values(
                    **values,
                    **search_columns(values, agency.name if agency else None),
                    version=version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                actual = await s.scalar(select(Article.version).where(Article.id == article_id))
                raise ArticleChanged(article_id, version, actual)
            await s.refresh(article)
            await write_words(s, article.id, article.title_text, article.search_text)
            s.add(self._version_row(article, actor, now, form.note))
        log.info("kb article %s saved as version %s by %s", article_id, version + 1, actor.name)
        return article

    async def load_examples(self, actor: Actor, articles: list[dict[str, Any]]) -> list[str]:
        """Add the starter articles whose code is not taken yet (marked as examples);
        the codes added.  Loading twice adds nothing."""
        added: list[str] = []
        agencies = {a.code: a.id for a in await self._agencies()}
        for item in articles:
            data = {k: v for k, v in item.items() if k != "agency_code"}
            data["agency_id"] = agencies.get(item.get("agency_code", ""))
            async with self.db.session() as s:
                if await s.scalar(select(Article.id).where(Article.code == data["code"])):
                    continue
            await self.create(actor, data, example=True)
            added.append(data["code"])
        return added

    # -- reading ------------------------------------------------------------------

    async def get(self, article_id: int) -> Article:
        async with self.db.session() as s:
            return await self._load(s, article_id)

    async def opened(self, article_id: int) -> Article:
        """The article, counted as opened from a search."""
        async with self.db.session() as s:
            article = await self._load(s, article_id)
            await s.execute(
                update(Article)
                .where(Article.id == article_id)
                .values(views=Article.views + 1)
                .execution_options(synchronize_session=False)
            )
            await s.refresh(article)
        return article

    async def version(self, article_id: int, number: int) -> ArticleVersion:
        async with self.db.session() as s:
            row = await s.scalar(
                select(ArticleVersion).where(
                    ArticleVersion.article_id == article_id, ArticleVersion.version == number
                )
            )
        if row is None:
            raise ArticleNotFound(article_id, number)
        return row

    async def versions(self, article_id: int) -> list[ArticleVersion]:
        """Every version of an article, newest first."""
        async with self.db.session() as s:
            await self._load(s, article_id)
            rows = await s.scalars(
                select(ArticleVersion)
                .where(ArticleVersion.article_id == article_id)
                .order_by(desc(ArticleVersion.version))
            )
            return list(rows.all())

    async def listing(self, *, archived: bool = False, limit: int = 200) -> list[Article]:
        """Articles by title (archived ones only when asked), for the admins' list."""
        async with self.db.session() as s:
            query = select(Article).order_by(Article.title, Article.id).limit(limit)
            if not archived:
                query = query.where(Article.archived.is_(False))
            return list((await s.scalars(query)).all())

    async def count(self) -> int:
        async with self.db.session() as s:
            return int(await s.scalar(select(func.count(Article.id))) or 0)

    async def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        actor: Actor | None = None,
        record: bool = True,
        archived: bool = False,
    ) -> Found:
        """Articles for ``query``, best first (:mod:`tickets.kb.search`).

        ``record``: the search is kept for the report (with ``actor``), the
        query typed on since the user's last one updating that row.
        """
        terms = kbsearch.query_words(query)
        limit = max(1, min(limit, MAX_LIMIT))
        if not terms:
            return Found(query, [], True)
        d = self.dialect
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    kbsearch.ranked(d, terms, len(terms), archived=archived).limit(limit)
                )
            ).all()
            complete = bool(rows)
            if not rows and len(terms) > 1:
                # at least half the words (rounded up): a question worded differently
                # still finds its article, one shared word ("giấy") does not
                need = (len(terms) + 1) // 2
                rows = (
                    await s.execute(kbsearch.ranked(d, terms, need, archived=archived).limit(limit))
                ).all()
            found = {
                a.id: a
                for a in await s.scalars(
                    select(Article).where(Article.id.in_([r[0] for r in rows]))
                )
            }
            hits = [Hit(found[r[0]], int(r[1])) for r in rows if r[0] in found]
            if record:
                await self._record(s, actor, query, len(hits))
        return Found(query, hits, complete)

    async def report(self, start: datetime, end: datetime, limit: int = 100) -> Report:
        """The articles used most for tickets in ``[start, end)`` (with their views),
        and the searches that found nothing, most asked first."""
        async with self.db.session() as s:
            used_q = (
                select(
                    Article.id,
                    Article.title,
                    Article.example,
                    Article.views,
                    func.count(Ticket.id).label("n"),
                )
                .join(Ticket, Ticket.kb_article_id == Article.id)
                .where(Ticket.created_at >= start, Ticket.created_at < end)
                .group_by(Article.id, Article.title, Article.example, Article.views)
                .order_by(desc("n"), Article.title)
                .limit(limit)
            )
            used = [
                UsedRow(r.id, r.title, bool(r.example), int(r.n), int(r.views))
                for r in (await s.execute(used_q)).all()
            ]
            in_period = (Search.at >= start, Search.at < end)
            nf_q = (
                select(
                    Search.folded,
                    func.min(Search.query).label("query"),
                    func.count(Search.id).label("n"),
                    func.max(Search.at).label("last_at"),
                )
                .where(Search.results == 0, *in_period)
                .group_by(Search.folded)
                .order_by(desc("n"), Search.folded)
                .limit(limit)
            )
            not_found = [
                NotFoundRow(r.folded, r.query, int(r.n), _aware(r.last_at))
                for r in (await s.execute(nf_q)).all()
            ]
            total = await s.scalar(select(func.count(Search.id)).where(*in_period))
            missed = await s.scalar(
                select(func.count(Search.id)).where(Search.results == 0, *in_period)
            )
        return Report(start, end, used, not_found, int(total or 0), int(missed or 0))

    # -- helpers ------------------------------------------------------------------

    async def _record(self, s: AsyncSession, actor: Actor | None, query: str, found: int) -> None:
        now = self.clock.now()
        text = query.strip()[:SHORT_MAX]
        folded = fold_phrase(text)[:SHORT_MAX]
        user_id = actor.id if actor else None
        last = None
        if user_id is not None:
            last = await s.scalar(
                select(Search)
                .where(Search.user_id == user_id, Search.at >= now - TYPING)
                .order_by(desc(Search.at), desc(Search.id))
                .limit(1)
            )
        if last is not None and (folded.startswith(last.folded) or last.folded.startswith(folded)):
            last.query, last.folded, last.results, last.at = text, folded, found, now
            return
        s.add(Search(at=now, user_id=user_id, query=text, folded=folded, results=found))

    @staticmethod
    def _require_admin(actor: Actor, action: str) -> None:
        if actor.role != Role.ADMIN:
            raise Forbidden(action, actor.role)

    async def _load(self, s: AsyncSession, article_id: int) -> Article:
        article = await s.get(Article, article_id)
        if article is None:
            raise ArticleNotFound(article_id)
        return article

    async def _agency(
        self, s: AsyncSession, agency_id: int | None, *, allow_inactive: bool = False
    ) -> Agency | None:
        if agency_id is None:
            return None
        agency = await s.get(Agency, agency_id)
        if agency is None:
            raise InvalidInput.one("agency_id", UNKNOWN)
        if not agency.active and not allow_inactive:
            raise InvalidInput.one("agency_id", INACTIVE)
        return agency

    async def _agencies(self) -> list[Agency]:
        async with self.db.session() as s:
            return list((await s.scalars(select(Agency))).all())

    async def _free_code(self, s: AsyncSession, base: str) -> str:
        code, n = base, 1
        while await s.scalar(select(Article.id).where(Article.code == code)):
            n += 1
            code = f"{base}-{n}"
        return code

    @staticmethod
    def _version_row(
        article: Article, actor: Actor, now: datetime, note: str | None
    ) -> ArticleVersion:
        return ArticleVersion(
            article_id=article.id,
            version=article.version,
            **{name: getattr(article, name) for name in CONTENT},
            archived=article.archived,
            edited_by=actor.id,
            edited_by_name=actor.name,
            edited_at=now,
            note=note,
        )


def _aware(moment: Any) -> datetime:
    from datetime import UTC

    if isinstance(moment, str):  # SQLite's max() of a timestamp column
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
