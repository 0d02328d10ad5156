"""What the public site's views use, built once by the composition root (hotline.app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from public.cache import Flights, TTLCache
from public.lookup import StatusLookup
from public.portal import Portal
from public.throttle import LookupThrottle
from tickets.agencies import AgencyService
from tickets.service import TicketService

#: A language's gettext: ``translations("vi")("text", **params)``.
Translations = Callable[[str], Callable[..., str]]


@dataclass
class PublicContext:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    agencies: AgencyService
    lookup: StatusLookup
    portal: Portal
    throttle: LookupThrottle
    translations: Translations
    # the web report form files tickets (public.report)
    tickets: TicketService
    # rendered portal pages, by (language, address): public.cache
    pages: TTLCache[bytes]
    # the portal's pages being rendered, shared with requests for the same one
    rendering: Flights[bytes | None] = field(default_factory=Flights, init=False, repr=False)
    _topic_names: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)

    def topic_names(self, lang: str) -> dict[str, str]:
        """The topics' names in ``lang`` by id, as every page names them (made once a
        language: the topics are the settings')."""
        names = self._topic_names.get(lang)
        if names is None:
            topics = self.settings.tickets.topics
            names = self._topic_names[lang] = {t.id: t.name.get(lang) for t in topics}
        return names

    def forget_published(self) -> None:
        """The published reports changed: no page or list read of them is kept."""
        self.pages.clear()
        self.portal.forget()


PUBLIC_CTX = web.AppKey("public_ctx", PublicContext)


def public_context(
    settings: Settings,
    *,
    db: Database,
    bus: Bus,
    clock: Clock,
    translations: Translations,
    agencies: AgencyService | None = None,
    tickets: TicketService | None = None,
) -> PublicContext:
    """The public site's services over the application's database, Redis and clock.

    Given the application's ``tickets`` service, its writes to published reports
    empty the portal's cached pages at once (see public.cache).
    """
    agencies = agencies or AgencyService(db, clock)
    ctx = PublicContext(
        settings=settings,
        clock=clock,
        db=db,
        bus=bus,
        agencies=agencies,
        lookup=StatusLookup(db, settings, agencies, clock),
        portal=Portal(db, settings, agencies),
        throttle=LookupThrottle(bus.redis, bus.prefix, settings),
        translations=translations,
        tickets=tickets or TicketService(db, settings, clock),
        pages=TTLCache(settings.public.cache_seconds),
    )
    ctx.tickets.on_publication_changed.append(ctx.forget_published)
    return ctx
