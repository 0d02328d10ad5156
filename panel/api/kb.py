"""The knowledge base and the directory's CSV in the JSON API: answers and handlers.

The agent's workspace searches through ``search_articles`` while on a call
(``panel/static/kb.js``); admins write articles with ``create_article`` and
``update_article``.  The operations are declared with the others in
:mod:`panel.api.operations`.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from panel.api.schemas import UTCTime, Version
from panel.api.views import PREFIX, read_json
from panel.keys import ACTOR, GETTEXT
from panel.security import json_error, require
from panel.views.common import ctx
from panel.views.kb import template_links
from tickets.kb.models import Article, ArticleVersion
from tickets.kb.schemas import ArticleChange
from tickets.kb.service import DEFAULT_LIMIT, MAX_LIMIT
from tickets.schemas import validate

READERS = ("agent", "supervisor", "admin")


class KbArticlePatchIn(ArticleChange):
    """Only the fields given change (an optional one given null or empty is cleared);
    ``archived`` takes it out of the agents' search; ``version`` is the one last read."""

    version: Version


class TemplateLink(BaseModel):
    label: str
    href: str | None = Field(description="An http(s) address; null for a line of text.")


class KbAgency(BaseModel):
    id: int
    name: str


class KbArticleOut(BaseModel):
    id: int
    code: str
    title: str
    summary: str | None
    steps: str
    documents: str | None
    fees: str | None
    processing_time: str | None
    agency: KbAgency | None
    templates: str | None
    template_links: list[TemplateLink]
    keywords: str | None
    example: bool = Field(description="Shipped with the software as an example.")
    archived: bool
    version: int = Field(description="The current version; send it back to change the article.")
    uses: int = Field(description="Tickets answered with it.")
    views: int = Field(description="Times opened from a search.")
    created_at: UTCTime
    updated_at: UTCTime


class KbHit(BaseModel):
    id: int
    title: str
    summary: str | None
    agency: KbAgency | None
    example: bool
    version: int
    score: int = Field(description="The rank: higher is better.")


class KbSearchOut(BaseModel):
    query: str
    complete: bool = Field(
        description="False when no article had every word: the items have some of them."
    )
    items: list[KbHit]


class KbVersionOut(BaseModel):
    version: int
    title: str
    summary: str | None
    steps: str
    documents: str | None
    fees: str | None
    processing_time: str | None
    agency_id: int | None
    templates: str | None
    keywords: str | None
    archived: bool
    edited_by: int | None
    edited_by_name: str
    edited_at: UTCTime
    note: str | None


class KbVersionList(BaseModel):
    items: Annotated[list[KbVersionOut], Field(description="Newest first.")]


def _json(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers or None,
    )


async def _agency(request: web.Request, agency_id: int | None) -> KbAgency | None:
    if agency_id is None:
        return None
    agency = await ctx(request).agencies.get(agency_id)
    return KbAgency(id=agency.id, name=agency.name)


async def article_out(request: web.Request, a: Article) -> KbArticleOut:
    return KbArticleOut(
        id=a.id,
        code=a.code,
        title=a.title,
        summary=a.summary,
        steps=a.steps,
        documents=a.documents,
        fees=a.fees,
        processing_time=a.processing_time,
        agency=await _agency(request, a.agency_id),
        templates=a.templates,
        template_links=[TemplateLink(**link) for link in template_links(a.templates)],  # type: ignore[arg-type]
        keywords=a.keywords,
        example=a.example,
        archived=a.archived,
        version=a.version,
        uses=a.uses,
        views=a.views,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def _version_out(v: ArticleVersion) -> KbVersionOut:
    return KbVersionOut(
        **{name: getattr(v, name) for name in KbVersionOut.model_fields},
    )


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "")
    if raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        _ = request[GETTEXT]
        raise json_error(
            422,
            "invalid input",
            fields={"limit": _("must be a whole number from {min} to {max}", min=1, max=MAX_LIMIT)},
        )
    return int(raw)


@require(*READERS)
async def search_articles(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    q = request.query.get("q", "")
    limit = _limit(request)
    actor = request[ACTOR]
    # the agents' searches are what the "not found" report is about
    found = await c.kb.search(q, limit=limit, actor=actor, record=actor.role == "agent")
    items = [
        KbHit(
            id=h.article.id,
            title=h.article.title,
            summary=h.article.summary,
            agency=await _agency(request, h.article.agency_id),
            example=h.article.example,
            version=h.article.version,
            score=h.score,
        )
        for h in found.hits
    ]
    return _json(KbSearchOut(query=q, complete=found.complete, items=items))


@require(*READERS)
async def get_article(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    article_id = int(request.match_info["id"])
    if request.query.get("opened") == "1":
        a = await c.kb.opened(article_id)
    else:
        a = await c.kb.get(article_id)
    return _json(await article_out(request, a))


@require(*READERS)
async def article_versions(request: web.Request) -> web.StreamResponse:
    rows = await ctx(request).kb.versions(int(request.match_info["id"]))
    return _json(KbVersionList(items=[_version_out(v) for v in rows]))


@require("admin")
async def create_article(request: web.Request) -> web.StreamResponse:
    a = await ctx(request).kb.create(request[ACTOR], await read_json(request))
    return _json(await article_out(request, a), 201, Location=f"{PREFIX}/kb/articles/{a.id}")


@require("admin")
async def update_article(request: web.Request) -> web.StreamResponse:
    body = validate(KbArticlePatchIn, await read_json(request))
    fields = body.model_dump(exclude_unset=True, exclude={"version"})
    a = await ctx(request).kb.update(
        request[ACTOR], int(request.match_info["id"]), body.version, fields
    )
    return _json(await article_out(request, a))
