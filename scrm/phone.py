"""Mainland China phone numbers: validation and the one normal form we store and match on."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_SEPARATORS = re.compile(r"[\s\-()（）]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# Area code 010/02x (3 digits) or 0xxx (4 digits), then a 7-8 digit number, optional extension.
_LANDLINE = re.compile(r"^(0(?:10|2\d|[3-9]\d{2}))(\d{7,8})(?:(?:ext|转|#)(\d{1,6}))?$")
_SERVICE = re.compile(r"^([48]00)(\d{7})$")

MAX_INPUT_LENGTH = 24


def phone_normalize(raw: str) -> str:
    """Return the stored form of a mainland number or raise ValidationError.

    Mobiles become 11 digits (a +86/86/0086 prefix dropped); landlines become
    `0571-88886666` (with `-123` for an extension); 400/800 numbers `400-8208820`.
    """
    if raw is None:
        raise ValidationError(_("Enter a phone number."), code="required")
    value = str(raw).strip()
    if len(value) > MAX_INPUT_LENGTH:
        raise ValidationError(_("Phone number is too long."), code="max_length")
    value = value.replace("＋", "+")
    extension = ""
    ext_match = re.search(r"(?:ext\.?|转|#)\s*(\d{1,6})$", value, flags=re.IGNORECASE)
    if ext_match:
        extension = ext_match.group(1)
        value = value[: ext_match.start()]
    digits = _SEPARATORS.sub("", value)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) in (10, 11):
            digits = digits[len(prefix):]
            if not (_MOBILE.match(digits) or digits.startswith("0") or _SERVICE.match(digits)):
                digits = "0" + digits  # +86 571 8888 6666 drops the trunk 0
            break
    if not digits.isdigit():
        raise ValidationError(_("Phone number may contain only digits, spaces and dashes."), code="invalid")
    if _MOBILE.match(digits) and not extension:
        return digits
    landline = _LANDLINE.match(digits)
    if landline:
        area, number, _unused = landline.groups()
        return f"{area}-{number}" + (f"-{extension}" if extension else "")
    service = _SERVICE.match(digits)
    if service and not extension:
        return f"{service.group(1)}-{service.group(2)}"
    raise ValidationError(
        _("Enter a mainland mobile (e.g. 13812345678) or landline with area code (e.g. 021-62345678)."),
        code="invalid",
    )


def validate_phone(value):
    """Field validator form of phone_normalize."""
    phone_normalize(value)
