"""What each queue figure means: one definition per figure, for every view.

The board, the wallboard, the reports, their CSV, ``/metrics`` and the README
all name and explain a figure from the :data:`KPIS` entry of its key (the
field or property of :class:`queue_stats.figures.Figures` that holds it), so
two views cannot give one name two meanings.  Labels and definitions are
written here in both of the panel's languages rather than in the panel's
gettext catalogue: the CSV writer and ``/metrics`` need them outside the web
layer, and a figure's name must not drift from its formula.

Definitions may name the configured thresholds as ``{sl}`` (service level
seconds), ``{short}`` (short abandon seconds) and ``{wrapup}`` (wrap-up
seconds); :meth:`Kpi.define` fills them in.

Figures marked ``app_queue`` are Asterisk's own counters, kept to check ours
against ``QueueStatus``; they are always shown under a name that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.settings import Settings

Unit = Literal["calls", "agents", "percent", "seconds", "per_hour", "ratings", "score", "tickets"]
Language = Literal["vi", "en"]

UNIT_SUFFIX: dict[Unit, str] = {
    "calls": "",
    "agents": "",
    "percent": " %",
    "seconds": " s",
    "per_hour": "",
    "ratings": "",
    "score": " /5",
    "tickets": "",
}


@dataclass(frozen=True)
class Kpi:
    """One figure: its key, unit, formula (over other keys) and, per language,
    its name and definition."""

    key: str
    unit: Unit
    label: dict[str, str]
    definition: dict[str, str]
    formula: str = ""
    app_queue: bool = False

    def name(self, lang: str) -> str:
        """The figure's name in ``lang`` (Vietnamese for a language we lack)."""
        return self.label.get(lang) or self.label["vi"]

    def define(self, lang: str, settings: Settings) -> str:
        """The definition in ``lang``, the configured thresholds filled in."""
        text = self.definition.get(lang) or self.definition["vi"]
        return text.format(
            sl=settings.stats.service_level_seconds,
            short=settings.stats.short_abandon_seconds,
            wrapup=settings.queues.wrapup_seconds,
        )


def _kpi(
    key: str,
    unit: Unit,
    en: tuple[str, str],
    vi: tuple[str, str],
    formula: str = "",
    app_queue: bool = False,
) -> Kpi:
    return Kpi(
        key=key,
        unit=unit,
        label={"en": en[0], "vi": vi[0]},
        definition={"en": en[1], "vi": vi[1]},
        formula=formula,
        app_queue=app_queue,
    )


_ALL = (
    # live: the queue as it stands now (the board's tiles, /metrics' gauges)
    _kpi(
        "waiting_now",
        "calls",
        ("Callers waiting", "Callers in the queue now, waiting for an agent."),
        ("Người gọi đang chờ", "Số người gọi đang ở trong hàng đợi chờ điện thoại viên."),
    ),
    _kpi(
        "longest_wait_now",
        "seconds",
        (
            "Longest wait now",
            "How long the caller waiting longest has waited so far (0 when nobody waits).",
        ),
        (
            "Chờ lâu nhất hiện tại",
            "Thời gian người gọi chờ lâu nhất đã chờ đến lúc này (0 khi không ai chờ).",
        ),
    ),
    _kpi(
        "agents_free",
        "agents",
        ("Agents free", "Queue members ready to take a call now."),
        ("Điện thoại viên rảnh", "Điện thoại viên trong hàng đợi sẵn sàng nhận cuộc gọi."),
    ),
    _kpi(
        "agents_busy",
        "agents",
        ("On calls", "Queue members ringing, talking or in wrap-up now."),
        (
            "Đang nghe máy",
            "Điện thoại viên đang đổ chuông, đàm thoại hoặc hoàn tất sau cuộc gọi.",
        ),
    ),
    _kpi(
        "agents_paused",
        "agents",
        ("Paused", "Queue members on a pause now (break, meal, training…)."),
        ("Đang tạm nghỉ", "Điện thoại viên đang tạm nghỉ (giải lao, ăn, tập huấn…)."),
    ),
    # over a period: a call belongs to the period in which it started
    _kpi(
        "offered",
        "calls",
        ("Offered", "Calls that entered a queue."),
        ("Vào hàng đợi", "Cuộc gọi đã vào hàng đợi."),
    ),
    _kpi(
        "answered",
        "calls",
        ("Answered", "Calls an agent answered."),
        ("Đã trả lời", "Cuộc gọi được điện thoại viên trả lời."),
    ),
    _kpi(
        "abandoned",
        "calls",
        (
            "Abandoned",
            "Callers who hung up while waiting in the queue, short abandons included.",
        ),
        ("Bỏ dở", "Người gọi gác máy khi đang chờ trong hàng đợi, kể cả gác máy sớm."),
    ),
    _kpi(
        "short_abandoned",
        "calls",
        (
            "Short abandons",
            "Callers who hung up less than {short} s after entering the queue; "
            "left out of the service level and the abandon rate.",
        ),
        (
            "Gác máy sớm",
            "Người gọi gác máy chưa đầy {short} giây sau khi vào hàng đợi; "
            "không tính vào mức phục vụ và tỷ lệ bỏ dở.",
        ),
    ),
    _kpi(
        "timed_out",
        "calls",
        ("Timed out", "Callers who reached the maximum wait without an answer."),
        ("Hết thời gian chờ", "Người gọi chờ hết thời gian chờ tối đa mà không được trả lời."),
    ),
    _kpi(
        "waiting",
        "calls",
        (
            "Still waiting",
            "Calls offered that are still in the queue; not yet in the service level "
            "or the abandon rate.",
        ),
        (
            "Đang chờ",
            "Cuộc gọi vào hàng đợi và vẫn đang chờ; chưa tính vào mức phục vụ và tỷ lệ bỏ dở.",
        ),
    ),
    _kpi(
        "counted",
        "calls",
        (
            "Calls counted",
            "Calls offered, less the short abandons and the calls still waiting: "
            "what the service level and the abandon rate are taken over.",
        ),
        (
            "Cuộc gọi được tính",
            "Cuộc gọi vào hàng đợi, trừ cuộc gác máy sớm và cuộc đang chờ: "
            "mẫu số của mức phục vụ và tỷ lệ bỏ dở.",
        ),
        formula="offered − short_abandoned − waiting",
    ),
    _kpi(
        "answered_in_sl",
        "calls",
        ("Answered in time", "Calls answered after a wait of at most {sl} s."),
        ("Trả lời kịp thời", "Cuộc gọi được trả lời sau khi chờ không quá {sl} giây."),
    ),
    _kpi(
        "service_level",
        "percent",
        (
            "Service level",
            "Calls answered within {sl} s, out of the calls counted: every call offered "
            "except short abandons (under {short} s) and calls still waiting. "
            "Abandoned and timed-out calls lower it.",
        ),
        (
            "Mức phục vụ",
            "Số cuộc được trả lời trong vòng {sl} giây trên số cuộc được tính: mọi cuộc "
            "vào hàng đợi trừ cuộc gác máy sớm (dưới {short} giây) và cuộc đang chờ. "
            "Cuộc bỏ dở và hết thời gian chờ làm giảm mức này.",
        ),
        formula="100 × answered_in_sl / counted",
    ),
    _kpi(
        "abandon_rate",
        "percent",
        (
            "Abandon rate",
            "Callers who hung up after waiting {short} s or more, or timed out, "
            "out of the calls counted.",
        ),
        (
            "Tỷ lệ bỏ dở",
            "Số người gọi gác máy sau khi chờ từ {short} giây trở lên hoặc hết thời gian "
            "chờ, trên số cuộc được tính.",
        ),
        formula="100 × (abandoned − short_abandoned + timed_out) / counted",
    ),
    _kpi(
        "asa",
        "seconds",
        ("Avg. speed of answer", "Mean wait of the answered calls."),
        ("Thời gian chờ trả lời TB", "Thời gian chờ trung bình của các cuộc được trả lời."),
        formula="hold_answered_seconds / answered",
    ),
    _kpi(
        "avg_talk",
        "seconds",
        ("Avg. talk time", "Mean talk time of the answered calls whose talk time is known."),
        (
            "Thời gian đàm thoại TB",
            "Thời gian đàm thoại trung bình của các cuộc đã trả lời có ghi nhận thời gian.",
        ),
        formula="talk_seconds / talk_calls",
    ),
    _kpi(
        "aht",
        "seconds",
        (
            "Avg. handling time",
            "Mean talk time plus the configured wrap-up time ({wrapup} s).",
        ),
        (
            "Thời gian xử lý TB",
            "Thời gian đàm thoại trung bình cộng thời gian hoàn tất cấu hình ({wrapup} giây).",
        ),
        formula="avg_talk + wrapup",
    ),
    _kpi(
        "longest_wait",
        "seconds",
        ("Longest wait", "The longest wait of any call offered, answered or not."),
        (
            "Chờ lâu nhất",
            "Thời gian chờ lâu nhất của một cuộc vào hàng đợi, dù có được trả lời hay không.",
        ),
    ),
    _kpi(
        "occupancy",
        "percent",
        (
            "Occupancy",
            "Talk time out of staffed time (the time agents were members of the queue).",
        ),
        (
            "Tỷ lệ bận",
            "Thời gian đàm thoại trên thời gian trực (thời gian điện thoại viên ở trong hàng đợi).",
        ),
        formula="100 × talk_seconds / staffed_seconds",
    ),
    _kpi(
        "calls_per_hour",
        "per_hour",
        (
            "Calls per hour",
            "Calls offered per hour of the period (up to now for a period still running).",
        ),
        (
            "Cuộc gọi mỗi giờ",
            "Số cuộc vào hàng đợi trên mỗi giờ của kỳ (đến hiện tại nếu kỳ chưa kết thúc).",
        ),
        formula="offered / hours",
    ),
    _kpi(
        "ring_no_answer",
        "calls",
        ("Rang, not answered", "Times a call rang an agent who did not pick up."),
        (
            "Đổ chuông, không nhấc máy",
            "Số lần cuộc gọi đổ chuông mà điện thoại viên không nhấc máy.",
        ),
    ),
    _kpi(
        "staffed_seconds",
        "seconds",
        ("Staffed", "Time agents were members of the queue."),
        ("Thời gian trực", "Thời gian điện thoại viên ở trong hàng đợi."),
    ),
    _kpi(
        "talk_seconds",
        "seconds",
        ("Talk time", "Summed talk time of the answered calls."),
        ("Thời gian đàm thoại", "Tổng thời gian đàm thoại của các cuộc đã trả lời."),
    ),
    _kpi(
        "talk_calls",
        "calls",
        ("Calls with talk time", "Answered calls whose talk time is known."),
        ("Cuộc có thời gian đàm thoại", "Cuộc đã trả lời có ghi nhận thời gian đàm thoại."),
    ),
    _kpi(
        "abandoned_in_sl",
        "calls",
        (
            "Left in time (app_queue)",
            "app_queue's callsabandonedinsl: callers who hung up or timed out within {sl} s.",
        ),
        (
            "Rời đi kịp thời (app_queue)",
            "Chỉ số callsabandonedinsl của app_queue: người gọi gác máy hoặc hết thời gian "
            "chờ trong vòng {sl} giây.",
        ),
        app_queue=True,
    ),
    _kpi(
        "asterisk_abandoned",
        "calls",
        (
            "Abandoned (app_queue)",
            "app_queue's Abandoned: abandoned and timed-out calls together.",
        ),
        (
            "Bỏ dở (app_queue)",
            "Chỉ số Abandoned của app_queue: cuộc bỏ dở và cuộc hết thời gian chờ cộng lại.",
        ),
        formula="abandoned + timed_out",
        app_queue=True,
    ),
    _kpi(
        "service_level_perf",
        "percent",
        (
            "ServicelevelPerf (app_queue)",
            "app_queue's own figure: calls answered within {sl} s out of the answered "
            "calls only. Abandons do not lower it: it is not the service level.",
        ),
        (
            "ServicelevelPerf (app_queue)",
            "Chỉ số riêng của app_queue: số cuộc trả lời trong vòng {sl} giây trên số cuộc "
            "đã trả lời. Cuộc bỏ dở không làm giảm chỉ số này: đây không phải mức phục vụ.",
        ),
        formula="100 × answered_in_sl / answered",
        app_queue=True,
    ),
    _kpi(
        "service_level_perf2",
        "percent",
        (
            "ServicelevelPerf2 (app_queue)",
            "app_queue's own figure: calls answered or left within {sl} s out of the "
            "answered, abandoned and timed-out calls. A caller who gives up quickly counts "
            "as served in time: it is not the service level.",
        ),
        (
            "ServicelevelPerf2 (app_queue)",
            "Chỉ số riêng của app_queue: số cuộc được trả lời hoặc rời đi trong vòng {sl} "
            "giây trên số cuộc đã trả lời, bỏ dở và hết thời gian chờ. Người gọi bỏ đi "
            "sớm được coi là phục vụ kịp thời: đây không phải mức phục vụ.",
        ),
        formula="100 × (answered_in_sl + abandoned_in_sl) / (answered + abandoned + timed_out)",
        app_queue=True,
    ),
)

# citizens' satisfaction (queue_stats.satisfaction): the survey's ratings and reopenings
_SATISFACTION = (
    _kpi(
        "rated",
        "ratings",
        (
            "Ratings",
            "Satisfaction ratings (1 to 5) citizens gave in the period: in the survey after "
            "a call, after the call telling the result, or on the web.",
        ),
        (
            "Lượt đánh giá",
            "Số lượt người dân chấm điểm hài lòng (1 đến 5) trong kỳ: khảo sát sau cuộc gọi, "
            "sau cuộc gọi báo kết quả, hoặc trên trang web.",
        ),
    ),
    _kpi(
        "rating_average",
        "score",
        (
            "Average rating",
            "The mean of the ratings given in the period, from 1 (very dissatisfied) "
            "to 5 (very satisfied).",
        ),
        (
            "Điểm hài lòng trung bình",
            "Trung bình các điểm chấm trong kỳ, từ 1 (rất không hài lòng) đến 5 (rất hài lòng).",
        ),
        formula="Σ rating / rated",
    ),
    _kpi(
        "rated_share",
        "percent",
        (
            "Calls rated",
            "Of the calls answered in the period, the share whose caller gave a rating.",
        ),
        (
            "Tỷ lệ cuộc gọi được đánh giá",
            "Trong các cuộc gọi được trả lời trong kỳ, tỷ lệ người gọi đã chấm điểm.",
        ),
        formula="100 × rated calls answered / answered",
    ),
    _kpi(
        "reopened",
        "tickets",
        (
            "Reopened",
            "Reports reopened because the citizen was not satisfied with the answer or "
            "the result (by a supervisor, the agent, or the citizen in the survey).",
        ),
        (
            "Mở lại",
            "Số phiếu được mở lại vì người dân chưa hài lòng với câu trả lời hoặc kết quả "
            "(do giám sát viên, điện thoại viên, hoặc người dân qua khảo sát).",
        ),
    ),
)

# the agents' wrap-up codes of answered calls (queue_stats.wrapup)
_WRAPUP = (
    _kpi(
        "coded",
        "calls",
        (
            "Calls with a wrap-up code",
            "Of the calls answered in the period, those whose agent gave a wrap-up code.",
        ),
        (
            "Cuộc gọi có mã kết thúc",
            "Trong các cuộc gọi được trả lời trong kỳ, số cuộc điện thoại viên "
            "đã chọn mã kết thúc.",
        ),
    ),
    _kpi(
        "with_content",
        "calls",
        (
            "Calls with usable content",
            "Calls answered in the period whose wrap-up code counts as usable content "
            "(a ticket, information given, ...: [wrapup] codes with content = true).",
        ),
        (
            "Cuộc gọi có nội dung",
            "Cuộc gọi được trả lời trong kỳ có mã kết thúc được tính là có nội dung "
            "(tạo phiếu, hướng dẫn ngay, ...: [wrapup] codes có content = true).",
        ),
    ),
    _kpi(
        "content_share",
        "percent",
        (
            "Share with usable content",
            "Of the calls answered in the period, the share with usable content; calls "
            "left without a code count as without content.",
        ),
        (
            "Tỷ lệ cuộc gọi có nội dung",
            "Trong các cuộc gọi được trả lời trong kỳ, tỷ lệ cuộc gọi có nội dung; cuộc gọi "
            "chưa có mã kết thúc được tính là không có nội dung.",
        ),
        formula="100 × with_content / answered",
    ),
)

KPIS: dict[str, Kpi] = {k.key: k for k in (*_ALL, *_SATISFACTION, *_WRAPUP)}


def kpi(key: str) -> Kpi:
    """The definition of one figure (KeyError for a figure nobody defined)."""
    return KPIS[key]


def define_all(
    keys: list[str] | tuple[str, ...], lang: str, settings: Settings
) -> list[dict[str, str]]:
    """Name, definition and formula of each of ``keys``, for a page's glossary."""
    return [
        {
            "key": k,
            "name": KPIS[k].name(lang),
            "definition": KPIS[k].define(lang, settings),
            "formula": KPIS[k].formula,
        }
        for k in keys
    ]


__all__ = ["KPIS", "Kpi", "UNIT_SUFFIX", "define_all", "kpi"]
