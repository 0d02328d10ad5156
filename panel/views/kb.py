"""The procedures knowledge base in the panel: read by the staff, written by admins,
its report for supervisors; and the agency directory's CSV import and export.

The agent's workspace searches it without leaving the call: ``panel.js`` asks
``GET /api/v1/kb/articles?q=`` (panel.api.views) and shows the hits beside the
pop; "Use" puts the article into the ticket form (``kb_article_id`` and the
guidance).  These pages are the same articles, whole.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from panel.dates import parse_day
from panel.errors import PageError
from panel.keys import ACTOR, GETTEXT
from panel.security import field_errors, require
from panel.views.common import ctx, flash_redirect, form, form_dict, render
from tickets.directory import ADDED, CHANGED, ERROR, UNCHANGED
from tickets.exceptions import InvalidInput, VersionConflict
from tickets.kb.models import Article, ArticleVersion
from tickets.kb.schemas import CONTENT

READERS = ("agent", "supervisor", "admin")
FIELDS = (*CONTENT, "note")
REPORT_DAYS = 30


def template_links(text: str | None) -> list[dict[str, str | None]]:
    """The "links to templates" lines: label and address (an http(s) one only)."""
    links: list[dict[str, str | None]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        label, _sep, address = line.rpartition("|") if "|" in line else ("", "", line)
        label, address = label.strip(), address.strip()
        href = address if address.lower().startswith(("https://", "http://")) else None
        if href is None:
            label, address = line, ""
        links.append({"label": label or address, "href": href})
    return links


def _int(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise web.HTTPNotFound()
    return int(raw)


async def _agency_names(request: web.Request) -> dict[int, str]:
    return {a.id: a.name for a in await ctx(request).agencies.list(include_inactive=True)}


@require(*READERS)
async def index(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    q = request.query.get("q", "")[:200]
    archived = request.query.get("archived") == "1" and request[ACTOR].role == "admin"
    found = None
    articles: list[Article] = []
    if q.strip():
        found = await c.kb.search(
            q,
            limit=50,
            actor=request[ACTOR],
            record=request[ACTOR].role == "agent",
            archived=archived,
        )
        articles = [h.article for h in found.hits]
    else:
        articles = await c.kb.listing(archived=archived)
    return render(
        request,
        "kb.html",
        q=q,
        found=found,
        articles=articles,
        archived=archived,
        total=await c.kb.count(),
        agency_names=await _agency_names(request),
    )


@require(*READERS)
async def article(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    article_id = _int(request.match_info["id"])
    if request.query.get("from") == "search":
        a = await c.kb.opened(article_id)
    else:
        a = await c.kb.get(article_id)
    return render(
        request,
        "kb_article.html",
        a=a,
        shown=a,
        old=None,
        versions=await c.kb.versions(article_id),
        links=template_links(a.templates),
        agency_names=await _agency_names(request),
    )


@require(*READERS)
async def old_version(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    article_id = _int(request.match_info["id"])
    a = await c.kb.get(article_id)
    v: ArticleVersion = await c.kb.version(article_id, _int(request.match_info["n"]))
    return render(
        request,
        "kb_article.html",
        a=a,
        shown=v,
        old=v,
        versions=await c.kb.versions(article_id),
        links=template_links(v.templates),
        agency_names=await _agency_names(request),
    )


async def _form_page(
    request: web.Request, a: Article | None, status: int = 200, **extra: Any
) -> web.Response:
    values: dict[str, Any] = {}
    if a is not None:
        values = {n: getattr(a, n) or "" for n in CONTENT}
    return render(
        request,
        "kb_edit.html",
        status=status,
        a=a,
        agencies=await ctx(request).agencies.list(),
        **{"errors": {}, "values": values, **extra},
    )


@require("admin")
async def new(request: web.Request) -> web.StreamResponse:
    return await _form_page(request, None)


@require("admin")
async def edit(request: web.Request) -> web.StreamResponse:
    a = await ctx(request).kb.get(_int(request.match_info["id"]))
    return await _form_page(request, a)


def _clean(data: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(data)
    raw = str(out.get("agency_id", "")).strip()
    out["agency_id"] = int(raw) if raw.isdigit() and len(raw) < 10 else (raw or None)
    return out


@require("admin")
async def create(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = form_dict(await form(request), *FIELDS)
    try:
        a = await ctx(request).kb.create(request[ACTOR], _clean(data))
    except InvalidInput as e:
        return await _form_page(
            request, None, 422, errors=field_errors(request, e.errors), values=data
        )
    raise flash_redirect(f"/kb/{a.id}", _("Article saved as version {n}.", n=a.version))


@require("admin")
async def save(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    article_id = _int(request.match_info["id"])
    raw = await form(request)
    version = int(raw["version"]) if raw.get("version", "").isdigit() else 0
    if raw.get("do") in ("archive", "restore"):
        data: dict[str, Any] = {"archived": raw["do"] == "archive"}
    else:
        data = _clean(form_dict(raw, *FIELDS))
    try:
        a = await c.kb.update(request[ACTOR], article_id, version, data)
    except InvalidInput as e:
        return await _form_page(
            request,
            await c.kb.get(article_id),
            422,
            errors=field_errors(request, e.errors),
            values=data,
        )
    except VersionConflict:
        raise flash_redirect(
            f"/kb/{article_id}/edit",
            _(
                "Someone else saved this article meanwhile: "
                "here is their version; apply yours again."
            ),
        ) from None
    raise flash_redirect(f"/kb/{a.id}", _("Article saved as version {n}.", n=a.version))


# -- the report ----------------------------------------------------------------


def _period(request: web.Request) -> tuple[date, date]:
    c = ctx(request)
    _ = request[GETTEXT]
    today = c.clock.now().astimezone(c.settings.tz).date()
    days: dict[str, date] = {}
    for name, default in (("from", today - timedelta(days=REPORT_DAYS - 1)), ("to", today)):
        raw = request.query.get(name, "").strip()
        try:
            days[name] = parse_day(raw) if raw else default
        except ValueError:
            raise PageError(400, fields={name: _("must be a date such as 25/11/2026")}) from None
    if days["to"] < days["from"]:
        raise PageError(400, fields={"to": _("must not be before the first day")})
    return days["from"], days["to"]


async def _report(request: web.Request) -> tuple[Any, date, date]:
    c = ctx(request)
    first, last = _period(request)
    tz = c.settings.tz
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    return await c.kb.report(start, end), first, last


@require("supervisor", "admin")
async def report(request: web.Request) -> web.StreamResponse:
    rep, first, last = await _report(request)
    return render(request, "kb_report.html", rep=rep, first=first, last=last)


@require("supervisor", "admin")
async def report_csv(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    what = request.match_info["what"]
    rep, first, last = await _report(request)
    tz = ctx(request).settings.tz
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    if what == "used":
        w.writerow(["article_id", "title", "example", "tickets", "views"])
        for r in rep.used:
            w.writerow([r.article_id, r.title, int(r.example), r.tickets, r.views])
    else:
        w.writerow(["query", "times", "last_searched"])
        for n in rep.not_found:
            w.writerow([n.query, n.times, n.last_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")])
    name = f"hotline-kb-{what}-{first.isoformat()}-{last.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- the agency directory's CSV ---------------------------------------------------


@require("supervisor", "admin")
async def agencies_csv(request: web.Request) -> web.StreamResponse:
    text = await ctx(request).directory.export(request[ACTOR])
    stamp = ctx(request).clock.now().astimezone(ctx(request).settings.tz).strftime("%Y-%m-%d")
    return web.Response(
        body=("\ufeff" + text).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="agencies-{stamp}.csv"'},
    )


@require("admin")
async def import_page(request: web.Request) -> web.StreamResponse:
    return render(request, "agencies_import.html", plan=None, text="", problems=[], message=None)


async def _csv_text(request: web.Request) -> str:
    data = await request.post()
    upload = data.get("file")
    if upload is not None and not isinstance(upload, str) and getattr(upload, "file", None):
        raw = upload.file.read(2_000_001)
        if raw:
            return raw.decode("utf-8", "replace")
    text = data.get("text")
    return text if isinstance(text, str) else ""


@require("admin")
async def import_csv(request: web.Request) -> web.StreamResponse:
    """``do=plan``: the dry run; ``do=apply``: write what the dry run showed."""
    _ = request[GETTEXT]
    c = ctx(request)
    data = await request.post()
    text = await _csv_text(request)
    if data.get("do") == "apply":
        expected = data.get("fingerprint")
        try:
            done = await c.directory.apply(
                request[ACTOR], text, expected if isinstance(expected, str) else None
            )
        except VersionConflict:
            plan = await c.directory.plan(request[ACTOR], text)
            return _plan_page(
                request,
                plan,
                text,
                409,
                _("The directory changed since the dry run: check the changes again."),
            )
        except InvalidInput:
            plan = await c.directory.plan(request[ACTOR], text)
            return _plan_page(request, plan, text, 422)
        raise flash_redirect(
            "/agencies",
            _(
                "Directory imported: {added} added, {changed} changed, {unchanged} unchanged.",
                added=done.count(ADDED),
                changed=done.count(CHANGED),
                unchanged=done.count(UNCHANGED),
            ),
        )
    plan = await c.directory.plan(request[ACTOR], text)
    return _plan_page(request, plan, text, 200 if plan.ok else 422)


def _plan_page(
    request: web.Request, plan: Any, text: str, status: int, message: str | None = None
) -> web.Response:
    _ = request[GETTEXT]
    problems = [
        {"line": line, "field": e.field, "message": _(e.message, **(e.params or {}))}
        for line, e in plan.all_errors()
    ]
    return render(
        request,
        "agencies_import.html",
        status=status,
        plan=plan,
        text=text,
        problems=problems,
        message=message,
        outcomes={
            ADDED: _("added"),
            CHANGED: _("changed"),
            UNCHANGED: _("unchanged"),
            ERROR: _("error"),
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/kb", index),
        web.get("/kb/new", new),
        web.post("/kb", create),
        web.get("/kb/report", report),
        web.get("/kb/report-{what:used|not-found}.csv", report_csv),
        web.get(r"/kb/{id:\d+}", article),
        web.get(r"/kb/{id:\d+}/edit", edit),
        web.post(r"/kb/{id:\d+}", save),
        web.get(r"/kb/{id:\d+}/versions/{n:\d+}", old_version),
        web.get("/agencies/export.csv", agencies_csv),
        web.get("/agencies/import", import_page),
        web.post("/agencies/import", import_csv),
    ]
