"""Industry presets: ready-made templates (fields, category, number prefix) shipped as JSON data,
one file per preset, so a new tenant starts from 餐饮投诉 or 家电安装 instead of a blank form."""

import copy
import json
from functools import cache
from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent


@cache
def _presets():
    presets = {}
    for path in sorted(PRESET_DIR.glob("*.json")):
        preset = json.loads(path.read_text(encoding="utf-8"))
        presets[preset["slug"]] = preset
    return presets


def preset_list() -> list[dict]:
    """Every preset, ordered by file name. Copies: callers may change them freely."""
    return [copy.deepcopy(preset) for preset in _presets().values()]


def preset_get(slug: str) -> dict | None:
    """One preset by slug (a copy), or None for an unknown slug."""
    preset = _presets().get(slug)
    return copy.deepcopy(preset) if preset is not None else None
