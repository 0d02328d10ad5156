"""The one folding every search uses: case, accents, "đ", normal forms, other scripts."""

from __future__ import annotations

import unicodedata

import pytest

from core.text import fold, fold_phrase, words


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Nguyễn Hữu Cảnh", "nguyen huu canh"),
        ("NGUYỄN HỮU CẢNH", "nguyen huu canh"),
        ("nguyen huu canh", "nguyen huu canh"),
        ("Đường", "duong"),
        ("đường", "duong"),
        ("ĐƯỜNG", "duong"),
        ("Điện Biên Phủ", "dien bien phu"),
        # every Vietnamese vowel with every tone
        ("aàáảãạ ăằắẳẵặ âầấẩẫậ", "aaaaaa aaaaaa aaaaaa"),
        ("eèéẻẽẹ êềếểễệ iìíỉĩị", "eeeeee eeeeee iiiiii"),
        ("oòóỏõọ ôồốổỗộ ơờớởỡợ", "oooooo oooooo oooooo"),
        ("uùúủũụ ưừứửữự yỳýỷỹỵ", "uuuuuu uuuuuu yyyyyy"),
        ("Quận 1, TP. Hồ Chí Minh", "quan 1, tp. ho chi minh"),
        ("Straße", "strasse"),
        ("", ""),
    ],
)
def test_fold(text: str, folded: str):
    assert fold(text) == folded
    assert fold(unicodedata.normalize("NFD", text)) == folded  # decomposed as some keyboards do
    assert fold(folded) == folded  # folding twice changes nothing


def test_other_scripts_keep_their_letters():
    # Hangul syllables decompose into jamo (letters, not marks) and are put back together
    assert fold("안녕하세요 도로가 침수") == "안녕하세요 도로가 침수"
    assert fold("Ελλάδα") == "ελλαδα"
    assert fold("Москва́") == "москва"


def test_fold_phrase_makes_white_space_one_space():
    assert fold_phrase("  Lê   Lợi\n\tQuận 1 ") == "le loi quan 1"
    assert fold_phrase("\n") == ""


def test_words_are_folded_and_punctuation_dropped():
    assert words("Đường Lê Lợi, bị NGẬP nước!") == ["duong", "le", "loi", "bi", "ngap", "nuoc"]
    assert words("?!,.") == []
