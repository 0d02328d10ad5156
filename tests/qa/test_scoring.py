"""The score of a grade: weights, "not applicable", fatal criteria; and the checks that
name each refused field (unit tests of qa.scoring)."""

from __future__ import annotations

import pytest

from qa.scoring import (
    MAX_MARK,
    Criterion,
    agreement,
    check_criteria,
    check_marks,
    score,
    slug,
)
from tickets.exceptions import InvalidInput

CARD = [
    Criterion("greeting", "Chào hỏi đúng mẫu", 1),
    Criterion("listening", "Lắng nghe, hỏi rõ", 3),
    Criterion("accuracy", "Thông tin đúng", 0, fatal=True),
]


def test_weighted_share_of_full_marks() -> None:
    full = score(CARD, {"greeting": MAX_MARK, "listening": MAX_MARK, "accuracy": 1})
    assert (full.score, full.fatal) == (100.0, False)
    # greeting 4/4 (weight 1), listening 2/4 (weight 3): (1*1 + 3*0.5) / 4 = 62.5
    mixed = score(CARD, {"greeting": 4, "listening": 2, "accuracy": 1})
    assert mixed.score == 62.5
    # the weight matters: the same marks swapped give another score
    swapped = score(CARD, {"greeting": 2, "listening": 4, "accuracy": 1})
    assert swapped.score == 87.5


def test_not_applicable_leaves_the_criterion_out() -> None:
    got = score(CARD, {"greeting": None, "listening": 3, "accuracy": 1})
    assert got.score == 75.0  # only listening counts: 3/4


def test_a_failed_fatal_criterion_makes_the_score_zero() -> None:
    got = score(CARD, {"greeting": 4, "listening": 4, "accuracy": 0})
    assert (got.score, got.fatal, got.before_fatal) == (0.0, True, 100.0)


def test_a_card_of_fatal_criteria_only() -> None:
    card = [Criterion("accuracy", "Thông tin đúng", 0, fatal=True)]
    assert score(card, {"accuracy": 1}).score == 100.0
    assert score(card, {"accuracy": 0}).score == 0.0


def test_marks_are_checked_and_each_refusal_named() -> None:
    assert check_marks(CARD, {"greeting": "4", "listening": "na", "accuracy": "1"}) == {
        "greeting": 4,
        "listening": None,
        "accuracy": 1,
    }
    with pytest.raises(InvalidInput) as e:
        check_marks(CARD, {"greeting": 5, "listening": -1, "accuracy": None, "extra": 1})
    assert set(e.value.fields()) == {
        "marks.greeting",
        "marks.listening",
        "marks.accuracy",
        "marks.extra",
    }
    with pytest.raises(InvalidInput) as e:
        check_marks(CARD, {"greeting": 1, "listening": 1, "accuracy": 2})  # fatal: 0 or 1
    assert e.value.fields() == ["marks.accuracy"]
    with pytest.raises(InvalidInput) as e:  # nothing applicable: nothing graded
        check_marks(CARD, {"greeting": None, "listening": None, "accuracy": 1})
    assert e.value.fields() == ["marks"]
    with pytest.raises(InvalidInput):
        check_marks(CARD, {"greeting": True, "listening": 1, "accuracy": 1})


def test_criteria_are_checked_ids_made_from_labels() -> None:
    found = check_criteria(
        [
            {"label": " Chào hỏi ", "weight": "2"},
            {"label": "Chào hỏi", "weight": 1},
            {"label": "Thông tin sai", "fatal": True, "weight": 50},
        ]
    )
    assert [c.id for c in found] == ["chao_hoi", "chao_hoi_2", "thong_tin_sai"]
    assert [c.weight for c in found] == [2, 1, 0]  # a fatal criterion has no weight
    assert found[0].label == "Chào hỏi"
    with pytest.raises(InvalidInput) as e:
        check_criteria(
            [
                {"label": "", "weight": 1},
                {"label": "a", "weight": 0},
                {"label": "b"},
                {"label": "c", "weight": 1, "id": "Bad id"},
                {"label": "d\x00", "weight": 1},
            ]
        )
    assert e.value.fields() == [
        "criteria[0].label",
        "criteria[1].weight",
        "criteria[2].weight",
        "criteria[3].id",
        "criteria[4].label",
    ]
    with pytest.raises(InvalidInput) as e:
        check_criteria([])
    assert e.value.fields() == ["criteria"]


def test_slug_is_ascii_and_unique() -> None:
    assert slug("Đúng quy trình", set()) == "dung_quy_trinh"
    assert slug("123", set()) == "c_123"
    assert slug("!!!", {"c"}) == "c_2"


def test_agreement_of_graders() -> None:
    assert agreement([3, 3]) == 1.0
    assert agreement([3, 2]) == 0.0
    assert agreement([3, 3, 2]) == pytest.approx(1 / 3)
    assert agreement([3, None]) is None
