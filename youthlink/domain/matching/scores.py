"""The match score: six factors in [0, 1], each weighted by the most points it may give (settings).

    skills       1 when the task asks for skills (the volunteer has them all: a hard rule), ½ when it asks none
    distance     1 at home, falling linearly to 0 at `matching_distance_scale_km`; ½ when no home is recorded
    fairness     1 with no approved hours in the last `matching_fairness_days`, 0 at `matching_fairness_cap_hours`
    reliability  (attended + 1) / (attended + no-shows + 1) over `matching_reliability_days`
    membership   1 for a member of the task's team, ½ for a member of a team of the task's project
    time         how early the application came, from the task's publication (1) to its deadline (0)

Factors are kept in thousandths, and the score in thousandths of a point is Σ weight × factor‰, so the stored
breakdown reproduces the stored score exactly, and the solver's integer objective is the sum of stored scores.
Everything is vectorized: one call scores every candidate of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from youthlink.config import Settings

FACTORS = ("skills", "distance", "fairness", "reliability", "membership", "time")
LABELS = {
    "skills": "技能匹配",
    "distance": "距离",
    "fairness": "公平（近期服务时长）",
    "reliability": "守约（出勤与爽约）",
    "membership": "所属队伍或项目",
    "time": "报名先后",
}
MEMBER_NONE, MEMBER_PROJECT, MEMBER_TEAM = 0, 1, 2
MEMBERSHIP_NAMES = {MEMBER_NONE: None, MEMBER_PROJECT: "PROJECT", MEMBER_TEAM: "TEAM"}
EXPLANATION_VERSION = 1

# Why the batch decided as it did (codes stored in the explanation; messages shown to the organization).
REASONS = {
    "SELECTED": "按匹配分入选",
    "PROMOTED": "名额空出，按匹配分从候补递补",
    "TASK_FULL": "名额已满，按匹配分进入候补",
    "TIME_CONFLICT": "与已确认的其他任务时间冲突，进入候补",
    "MISSING_SKILLS": "缺少任务要求的技能",
    "TOO_YOUNG": "未达到任务要求的最低年龄",
    "GUARDIAN_CONSENT_REQUIRED": "未成年志愿者未登记监护人同意",
    "NO_HOME_LOCATION": "任务限定了距离，但志愿者未登记住址",
    "TOO_FAR": "住址超出任务限定的距离",
}


@dataclass(frozen=True)
class Weights:
    skills: float
    distance: float
    fairness: float
    reliability: float
    membership: float
    time: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Weights:
        return cls(*(float(getattr(settings, f"matching_weight_{name}")) for name in FACTORS))

    def as_list(self) -> list[float]:
        return [getattr(self, name) for name in FACTORS]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FACTORS, self.as_list(), strict=True))


@dataclass(frozen=True)
class Facts:
    """What the factors are computed from. A task's or a volunteer's own facts come once per task or volunteer,
    with each candidate's index into them: their factors are computed once each, then looked up per candidate."""

    task: NDArray[np.int64]  # per candidate: index into the per-task facts
    volunteer: NDArray[np.int64]  # per candidate: index into the per-volunteer facts
    skills_asked: NDArray[np.bool_]  # per task
    distance_km: NDArray[np.float64]  # per candidate; NaN: no home recorded
    recent_hours: NDArray[np.float64]  # per volunteer
    attended: NDArray[np.int64]  # per volunteer
    no_shows: NDArray[np.int64]  # per volunteer
    membership: NDArray[np.int64]  # per candidate: MEMBER_*
    earliness: NDArray[np.float64]  # per candidate, in [0, 1]


def factors_permille(facts: Facts, settings: Settings) -> NDArray[np.int16]:
    """(n, 6) integer factors in thousandths (filled a column at a time: a city-wide batch has millions)."""
    n = facts.task.shape[0]
    out = np.empty((n, len(FACTORS)), np.int16)
    cap = settings.matching_fairness_cap_hours
    out[:, 0] = thousandths(np.where(facts.skills_asked, 1.0, 0.5))[facts.task]
    out[:, 1] = thousandths(np.array(0.5))  # no home recorded
    known = np.flatnonzero(~np.isnan(facts.distance_km))
    out[known, 1] = thousandths(np.clip(1.0 - facts.distance_km[known] / settings.matching_distance_scale_km, 0, 1))
    out[:, 2] = thousandths(1.0 - np.minimum(facts.recent_hours, cap) / cap)[facts.volunteer]
    out[:, 3] = thousandths((facts.attended + 1.0) / (facts.attended + facts.no_shows + 1.0))[facts.volunteer]
    out[:, 4] = thousandths(np.arange(MEMBER_TEAM + 1) / 2.0)[facts.membership]
    out[:, 5] = thousandths(np.clip(facts.earliness, 0.0, 1.0))
    return out


def thousandths(values: NDArray[np.float64]) -> NDArray[np.int16]:
    """A factor in [0, 1] as an integer number of thousandths."""
    return np.rint(values * 1000).astype(np.int16)


def score_units(permille: NDArray[np.int16], weights: Weights) -> NDArray[np.int64]:
    """Scores in thousandths of a point: Σ weight × factor‰ (weights rounded to thousandths of a point)."""
    w = np.rint(np.array(weights.as_list()) * 1000).astype(np.int64)
    # A column at a time: NumPy's integer matrix product has no fast path, and is 2-3x slower.
    units = np.zeros(permille.shape[0], np.int64)
    for i in range(len(FACTORS)):
        units += permille[:, i] * w[i]
    units //= 1000
    return units


def points(units: int) -> Decimal:
    return Decimal(int(units)) / 1000


def explanation(run_id: str | None, decision: str, reason: str, permille: list[int] | None, weights: Weights,
                distance_km: float | None = None, recent_hours: float = 0.0, attended: int = 0, no_shows: int = 0,
                membership: int = MEMBER_NONE) -> dict[str, Any]:
    """One sign-up's stored explanation (the batch builds the same shape in SQL; see batch.EXPLANATION_SQL)."""
    body: dict[str, Any] = {"v": EXPLANATION_VERSION, "run": run_id, "decision": decision, "reason": reason}
    if permille is not None:
        body.update(
            factors=[int(p) for p in permille], weights=weights.as_list(),
            facts={"km": None if distance_km is None else round(distance_km, 2), "hours": round(recent_hours, 1),
                   "attended": attended, "noShows": no_shows, "member": MEMBERSHIP_NAMES[membership]},
        )
    return body


@dataclass(frozen=True)
class FactorView:
    key: str
    label: str
    value: float
    weight: float
    points: float
    detail: str


@dataclass(frozen=True)
class ExplanationView:
    """An explanation for people: the decision, its reason and each factor's points, in Chinese."""

    decision: str
    reason: str
    message: str
    score: float | None
    factors: list[FactorView]
    run_id: str | None


def _detail(key: str, facts: dict[str, Any], value: float) -> str:
    if key == "skills":
        return "具备任务要求的全部技能" if value >= 1 else "任务不要求特定技能"
    if key == "distance":
        return "未登记住址" if facts.get("km") is None else f"距任务地点约 {facts['km']:.1f} 公里"
    if key == "fairness":
        return f"近期已服务 {facts.get('hours', 0):.1f} 小时（越少越优先）"
    if key == "reliability":
        return f"出勤 {facts.get('attended', 0)} 次，爽约 {facts.get('noShows', 0)} 次"
    if key == "membership":
        return {"TEAM": "任务所属队伍的成员", "PROJECT": "任务所属项目的队伍成员"}.get(facts.get("member") or "",
                                                                               "非任务所属队伍或项目成员")
    return "报名越早得分越高"


def describe(stored: dict[str, Any], score: Decimal | None) -> ExplanationView:
    reason = str(stored.get("reason", ""))
    factors: list[FactorView] = []
    if stored.get("factors") is not None:
        facts = stored.get("facts") or {}
        for key, permille, weight in zip(FACTORS, stored["factors"], stored["weights"], strict=True):
            value = permille / 1000
            factors.append(FactorView(key=key, label=LABELS[key], value=value, weight=float(weight),
                                      points=round(weight * value, 3), detail=_detail(key, facts, value)))
    return ExplanationView(decision=str(stored.get("decision", "")), reason=reason,
                           message=REASONS.get(reason, reason), score=float(score) if score is not None else None,
                           factors=factors, run_id=stored.get("run"))
