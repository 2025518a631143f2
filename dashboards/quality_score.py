"""The quality score (质检分) as a pure function: plain facts about one ticket in, a score of
0–100 and the lines that explain it out. No database; dashboards.quality gathers the facts.

The rules (written down here, shown on the ticket page line by line): start from 100; each
flagged phrase found in a public staff reply −5 (at most −20); each forbidden word −15 (at most
−45); each required-phrase rule a finished ticket never met −10; finished after its SLA's due
time (or, without an SLA, after DEFAULT_TARGET_HOURS) −20; the customer's rating 1★ −30,
2★ −20, 3★ −10; never below 0."""

from __future__ import annotations

from dataclasses import dataclass

FLAG_POINTS, FLAG_CAP = 5, 20
FORBIDDEN_POINTS, FORBIDDEN_CAP = 15, 45
REQUIRED_POINTS = 10
LATE_POINTS = 20
RATING_POINTS = {1: 30, 2: 20, 3: 10, 4: 0, 5: 0}
DEFAULT_TARGET_HOURS = 72  # the target of a ticket without an SLA clock: three days


@dataclass(frozen=True)
class ScoreFacts:
    flagged: int = 0  # findings of "phrases to flag" rules in public staff replies
    forbidden: int = 0  # findings of "forbidden words" rules
    required_missing: int = 0  # required-phrase rules a finished ticket never met
    finished: bool = False
    handling_minutes: int | None = None  # created → resolved / closed
    target_minutes: int | None = None  # the SLA's resolution target (wall clock), else the default
    late: bool = False  # finished after the SLA's due time (or over the default target)
    rating: int | None = None


@dataclass(frozen=True)
class ScorePart:
    """One line of the breakdown: what (`code`), how many or how much (`n`), the points taken."""

    code: str
    n: int
    points: int
    target: int | None = None  # the handling line's target in minutes

    def as_dict(self) -> dict:
        found = {"code": self.code, "n": self.n, "points": self.points}
        return found if self.target is None else {**found, "target": self.target}


def score_compute(facts: ScoreFacts) -> tuple[int, list[ScorePart]]:
    """The score and its breakdown (every rule listed, with 0 points when it took nothing)."""
    parts = [
        ScorePart("flag", facts.flagged, -min(facts.flagged * FLAG_POINTS, FLAG_CAP)),
        ScorePart("forbidden", facts.forbidden, -min(facts.forbidden * FORBIDDEN_POINTS, FORBIDDEN_CAP)),
        ScorePart("required", facts.required_missing, -facts.required_missing * REQUIRED_POINTS),
        # n = -1: not finished yet, so the handling time is not judged.
        ScorePart("handling", facts.handling_minutes if facts.finished and facts.handling_minutes is not None else -1,
                  -LATE_POINTS if facts.finished and facts.late else 0, target=facts.target_minutes),
        ScorePart("rating", facts.rating or 0, -RATING_POINTS.get(facts.rating or 0, 0)),
    ]
    return max(0, 100 + sum(p.points for p in parts)), parts
