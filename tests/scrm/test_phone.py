"""scrm.phone.phone_normalize: the one stored form of mainland mobiles, landlines and 400/800 numbers."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from scrm.phone import MAX_INPUT_LENGTH, phone_normalize, validate_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("0086 138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("  13812345678  ", "13812345678"),
        ("＋8613812345678", "13812345678"),  # full-width plus
        ("19912345678", "19912345678"),
    ],
)
def test_mobiles_become_eleven_digits(raw, expected):
    assert phone_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "010-12345678"),
        ("01012345678", "010-12345678"),
        ("0571 8888 6666", "0571-88886666"),
        ("0571-88886666", "0571-88886666"),
        ("(0571)88886666", "0571-88886666"),
        ("（0571）88886666", "0571-88886666"),
        ("021-62345678", "021-62345678"),
        ("0755-1234567", "0755-1234567"),  # 7-digit local number
        ("+86 571 8888 6666", "0571-88886666"),  # trunk 0 restored after the country code
        ("86 21 62345678", "021-62345678"),
    ],
)
def test_landlines_get_area_code_dash_number(raw, expected):
    assert phone_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("021-62345678转123", "021-62345678-123"),
        ("021-62345678 转 123", "021-62345678-123"),
        ("021-62345678ext123", "021-62345678-123"),
        ("021-62345678 EXT. 55", "021-62345678-55"),
        ("021-62345678#9", "021-62345678-9"),
        ("0571 8888 6666 转 888888", "0571-88886666-888888"),
    ],
)
def test_landline_extensions_become_a_dash_suffix(raw, expected):
    assert phone_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("400-820-8820", "400-8208820"),
        ("4008208820", "400-8208820"),
        ("400 820 8820", "400-8208820"),
        ("800-820-8820", "800-8208820"),
    ],
)
def test_service_numbers(raw, expected):
    assert phone_normalize(raw) == expected


def test_beijing_landline_with_country_code():
    assert phone_normalize("+86 10 1234 5678") == "010-12345678"


def test_service_number_with_country_code():
    assert phone_normalize("+86 400 820 8820") == "400-8208820"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("1381234567", "invalid"),  # 10 digits: too short for a mobile
        ("12345", "invalid"),
        ("138123456789", "invalid"),  # 12-digit "mobile"
        ("12812345678", "invalid"),  # 12x is no mobile prefix
        ("12012345678", "invalid"),
        ("11012345678", "invalid"),
        ("abc", "invalid"),
        ("138abc45678", "invalid"),
        ("tel:13812345678", "invalid"),
        ("13812345678转1", "invalid"),  # mobiles have no extension
        ("400-820-8820转1", "invalid"),
        ("021-623456", "invalid"),  # local number too short
        ("0571-888866661", "invalid"),  # local number too long
        ("1" * (MAX_INPUT_LENGTH + 1), "max_length"),
        ("138 1234 5678 " + " " * 6 + "9999", "invalid"),
        ("0571 8888 6666 0571 8888 6666", "max_length"),
    ],
)
def test_rejects(raw, code):
    with pytest.raises(ValidationError) as excinfo:
        phone_normalize(raw)
    assert excinfo.value.code == code


def test_too_long_is_checked_before_anything_else():
    raw = "0571 - 8888 - 6666 转 1234"  # would be valid, but is 25 characters
    assert len(raw) == MAX_INPUT_LENGTH + 1
    with pytest.raises(ValidationError) as excinfo:
        phone_normalize(raw)
    assert excinfo.value.code == "max_length"


def test_exactly_max_length_is_accepted_when_valid():
    raw = "0571 - 8888 - 6666 转 123"
    assert len(raw) == MAX_INPUT_LENGTH
    assert phone_normalize(raw) == "0571-88886666-123"


def test_none_is_required():
    with pytest.raises(ValidationError) as excinfo:
        phone_normalize(None)
    assert excinfo.value.code == "required"


def test_letters_get_the_digits_only_message():
    with pytest.raises(ValidationError) as excinfo:
        phone_normalize("138-CALL-ME")
    assert excinfo.value.code == "invalid"
    with translation.override("en"):
        assert excinfo.value.messages == ["Phone number may contain only digits, spaces and dashes."]
    with translation.override("zh-hans"):
        assert excinfo.value.messages == ["电话号码只能包含数字、空格和短横线。"]


def test_validate_phone_raises_like_normalize():
    assert validate_phone("13812345678") is None
    with pytest.raises(ValidationError):
        validate_phone("12812345678")


@given(st.from_regex(r"\A1[3-9][0-9]{9}\Z"))
def test_any_mobile_normalises_to_itself_and_is_idempotent(mobile):
    normalised = phone_normalize(mobile)
    assert normalised == mobile
    assert phone_normalize(normalised) == normalised
