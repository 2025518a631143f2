"""Preset workflows, one per ticket-template preset (same slug), shipped as data."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def workflow_preset_list():
    return [json.loads(p.read_text("utf-8")) for p in sorted(HERE.glob("*.json"))]


def workflow_preset_get(slug):
    path = HERE / f"{slug}.json"
    if not path.is_file() or path.parent != HERE:
        return None
    return json.loads(path.read_text("utf-8"))
