"""Pure helpers for site visits: coordinates from untrusted input, the distance between two
points, the check-in verdict, and whether a signature PNG holds any ink. No database."""

import math
import struct
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
PLACES = Decimal("0.000001")


class CoordinateError(ValueError):
    """Coordinates that are missing in part, not numbers, not finite or out of range."""


@dataclass(frozen=True)
class Point:
    lat: Decimal
    lng: Decimal


def _number(raw) -> Decimal:
    if isinstance(raw, bool):
        raise CoordinateError("not a number")
    text = str(raw).strip()
    if not text or len(text) > 32:
        raise CoordinateError("not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CoordinateError("not a number") from None
    if not value.is_finite():  # NaN, Infinity
        raise CoordinateError("not finite")
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


def point_parse(lat, lng) -> Point | None:
    """The point a form sent, or None when both are blank (the phone gave no position).
    Raises CoordinateError for one without the other, text, NaN/Infinity or out of range."""
    blank = [value is None or str(value).strip() == "" for value in (lat, lng)]
    if all(blank):
        return None
    if any(blank):
        raise CoordinateError("one of two")
    point = Point(_number(lat), _number(lng))
    if not (-90 <= point.lat <= 90 and -180 <= point.lng <= 180):
        raise CoordinateError("out of range")
    return point


def distance_m(a: Point, b: Point) -> int:
    """Great-circle (haversine) distance in whole metres; enough for a radius of tens of metres."""
    lat1, lng1, lat2, lng2 = (math.radians(float(v)) for v in (a.lat, a.lng, b.lat, b.lng))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))))


# The phone's browser reports WGS-84; maps in China (Amap, WeCom, Tencent) and the coordinates
# people copy from them are GCJ-02, about 300-600 m away. Site coordinates are taken as GCJ-02
# (FIELDSERVICE_DATUM) and a phone's position is shifted into that datum before comparing.
_A = 6378245.0
_EE = 0.00669342162296594323


def _outside_china(lat: float, lng: float) -> bool:
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift_lat(x: float, y: float) -> float:
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return value


def _shift_lng(x: float, y: float) -> float:
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return value


def wgs84_to_gcj02(point: Point) -> Point:
    """A GPS (WGS-84) point in China's GCJ-02 datum; unchanged outside China."""
    lat, lng = float(point.lat), float(point.lng)
    if _outside_china(lat, lng):
        return point
    dlat, dlng = _shift_lat(lng - 105.0, lat - 35.0), _shift_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    dlng = (dlng * 180.0) / (_A / math.sqrt(magic) * math.cos(radlat) * math.pi)
    return Point(Decimal(lat + dlat).quantize(PLACES), Decimal(lng + dlng).quantize(PLACES))


@dataclass(frozen=True)
class CheckinVerdict:
    verdict: str  # tickets.models_visits.Verdict values
    distance_m: int | None

    @property
    def needs_reason(self) -> bool:
        return self.verdict in ("outside", "no_location")


def checkin_verdict(*, position: Point | None, site: Point | None, radius_m: int) -> CheckinVerdict:
    """Within the radius: accepted; outside or without a position: accepted only with a reason
    (and flagged); a site without coordinates cannot be checked, so it is accepted unverified."""
    if position is None:
        return CheckinVerdict("no_location", None)
    if site is None:
        return CheckinVerdict("no_site", None)
    meters = distance_m(position, site)
    return CheckinVerdict("within" if meters <= radius_m else "outside", meters)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_has_ink(data: bytes, *, max_pixels: int = 4_000_000) -> bool:
    """True if an 8-bit PNG (as a canvas exports it) has any pixel that is not fully transparent
    black — an empty signature pad exports all zeros. Raises ValueError for what is not such a PNG
    or is too large to inflate. Every PNG row filter maps an all-zero image to all-zero bytes
    (besides each row's filter-type byte), so no unfiltering is needed to tell empty from not."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("not a PNG")
    pos, idat, header = len(PNG_MAGIC), [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if len(chunk) != length:
            raise ValueError("truncated PNG")
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("PNG without image data")
    width, height, depth, color = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or width * height > max_pixels or not width or not height:
        raise ValueError("unsupported PNG")
    if color == 3:  # a palette image: index 0 may be any colour; a canvas never exports these
        raise ValueError("unsupported PNG")
    row = width * channels + 1
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(idat), row * height + 1)
    if len(raw) < row * height:
        raise ValueError("truncated PNG")
    if color in (0, 2):  # no alpha: ink is anything but white or black background is unknowable
        return True
    return any(raw[start + 1:start + row].strip(b"\x00") for start in range(0, row * height, row))
