"""The batch's objective against an exact optimum: an independent CP-SAT model, solved lexicographically.

The reference is written apart from the solver on purpose: pairwise clash constraints (not cliques), two solves
(slots filled, then total score with the slots fixed), no flow. Where the batch says `exact`, its objective must
be equal; where it does not, the optimum must lie between its objective and its proven bound.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from ortools.sat.python import cp_model
from sqlalchemy import select

from tests.test_matching_batch import NOW, add_task, add_volunteers, apply, assert_invariants, run_batch
from youthlink.db.models import Signup, Task
from youthlink.db.models.enums import SignupStatus
from youthlink.domain import geo
from youthlink.domain.matching import candidates, solver
from youthlink.domain.matching import decisions as matching_decisions


def optimum(task: list[int], volunteer: list[int], start: list[int], end: list[int], weight: list[int],
            capacity: list[int]) -> tuple[int, int]:
    """The exact lexicographic optimum (slots filled, then total weight), by CP-SAT."""
    n = len(task)
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(n)]
    for t, cap in enumerate(capacity):
        model.add(sum(x[i] for i in range(n) if task[i] == t) <= cap)
    for i in range(n):
        for j in range(i + 1, n):
            if volunteer[i] == volunteer[j] and start[i] < end[j] and start[j] < end[i]:
                model.add(x[i] + x[j] <= 1)
    cp = cp_model.CpSolver()
    cp.parameters.num_workers = 2
    model.maximize(sum(x))
    assert cp.solve(model) == cp_model.OPTIMAL
    filled = round(cp.objective_value)
    model.add(sum(x) >= filled)
    model.maximize(sum(weight[i] * x[i] for i in range(n)))
    assert cp.solve(model) == cp_model.OPTIMAL
    return filled, round(cp.objective_value)


def instance(seed: int, shape: str) -> solver.Problem:
    """Hundreds of applications. `shifts`: tasks in morning / afternoon shifts (a volunteer's clashes are
    all pairwise: the min-cost flow is exact). `free`: any start and length (chains of clashes)."""
    rng = random.Random(seed)
    tasks, volunteers = rng.randint(8, 20), rng.randint(30, 80)
    if shape == "shifts":
        day, half = [rng.randrange(6) for _ in range(tasks)], [rng.randrange(2) for _ in range(tasks)]
        starts = [d * 86400 + (8 + 5 * h + rng.choice([0, 1])) * 3600 for d, h in zip(day, half, strict=True)]
        ends = [s + rng.choice([2, 3, 4]) * 3600 for s in starts]
    else:
        starts = [rng.randrange(0, 48) * 1800 for _ in range(tasks)]
        ends = [s + rng.randint(1, 8) * 1800 for s in starts]
    pairs = sorted({(rng.randrange(volunteers), rng.randrange(tasks)) for _ in range(rng.randint(150, 450))})
    task = np.array([t for _, t in pairs], np.int64)
    return solver.Problem(
        task=task, volunteer=np.array([v for v, _ in pairs], np.int64),
        start=np.array(starts, np.int64)[task], end=np.array(ends, np.int64)[task],
        weight=np.array([rng.randrange(0, 100_000) for _ in pairs], np.int64),
        capacity=np.array([rng.randint(0, 8) for _ in range(tasks)], np.int64),
    )


def reference(problem: solver.Problem) -> tuple[int, int]:
    return optimum(problem.task.tolist(), problem.volunteer.tolist(), problem.start.tolist(), problem.end.tolist(),
                   problem.weight.tolist(), problem.capacity.tolist())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("shape", ["shifts", "free"])
def test_the_batch_solver_reaches_the_exact_optimum_on_small_instances(seed: int, shape: str) -> None:
    # given an instance of a few hundred applications
    problem = instance(seed, shape)

    # when the batch's solver decides it
    solution = solver.solve(problem)

    # then its decision is feasible, proven exact, and equal to the independent optimum
    assert solver.is_feasible(problem, solution.chosen)
    assert solution.objective == solver.objective(problem, solution.chosen)
    assert solution.exact
    assert solution.objective == reference(problem)
    if shape == "shifts":
        assert solution.method == "flow"  # the min-cost flow alone: no CP-SAT needed


@pytest.mark.parametrize("seed", range(12))
def test_beyond_cp_sat_the_repair_is_feasible_and_the_optimum_lies_within_its_bound(seed: int) -> None:
    # given instances with chains of clashes, and CP-SAT switched off (as for a city-wide batch)
    problem = instance(100 + seed, "free")

    # when the solver falls back to the flow and its repair
    solution = solver.solve(problem, exact_max_candidates=0)

    # then the decision is feasible; the optimum lies between it and the bound; `exact` is never claimed wrongly
    best = reference(problem)
    assert solver.is_feasible(problem, solution.chosen)
    assert solution.objective <= best <= (solution.bound_filled, solution.bound_score)
    if solution.exact:
        assert solution.objective == best


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("shape", ["shifts", "free"])
def test_the_candidates_set_aside_as_dominated_change_no_optimum(seed: int, shape: str) -> None:
    # given an instance with many equal scores (ties are where a wrong cut-off would show) and some full tasks
    problem = instance(300 + seed, shape)
    problem = replace(problem, weight=problem.weight // 25_000 * 25_000)

    # when the solver sets aside the candidates no optimum needs
    kept = solver.undominated(problem, solver.components(problem))

    # then it set some aside, and the optimum over the rest is the optimum over all (by the independent model)
    assert 0 < kept.shape[0] < problem.size
    assert reference(problem.take(kept)) == reference(problem)
    assert solver.solve(problem).objective == reference(problem)


@pytest.mark.parametrize("seed", range(6))
def test_the_greedy_baseline_is_feasible_and_never_better(seed: int) -> None:
    for shape in ("shifts", "free"):
        problem = instance(200 + seed, shape)
        greedy = solver.greedy(problem)
        assert solver.is_feasible(problem, greedy)
        assert solver.objective(problem, greedy) <= solver.solve(problem).objective


async def test_the_batch_in_postgresql_decides_the_optimum(db: Any, clean: None) -> None:
    # given 12 due tasks in overlapping shifts and 60 volunteers with about 300 applications between them
    rng = random.Random(11)
    tasks = []
    for _ in range(12):
        tasks.append(await add_task(db, slots=rng.randint(1, 6), starts_in=timedelta(days=3 + rng.randrange(3),
                                                                                    hours=rng.choice([0, 1, 5, 6])),
                                    hours=rng.choice([2, 3, 4])))
    people = []
    for _ in range(60):
        lat = 28.26 + rng.uniform(-0.1, 0.1)
        people += await add_volunteers(db, 1, home=(lat, 121.61 + rng.uniform(-0.1, 0.1)))
    for task in tasks:
        await apply(db, task, rng.sample(people, rng.randint(15, 35)), minutes_apart=rng.randint(1, 30))

    # when the batch runs
    result = await run_batch(db)

    # then what it stored is a feasible decision whose objective is the exact optimum over the same scores
    await assert_invariants(db)
    async with db.read() as session:
        rows = (await session.execute(
            select(Signup, Task.starts_at, Task.ends_at, Task.slots)
            .join(Task, Task.id == Signup.task_id).where(Signup.task_id.in_([t.id for t in tasks]))
        )).all()
        found = await matching_decisions.of_signups(session, [r.Signup for r in rows])
    assert all(r.Signup.status in (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED) for r in rows)
    task_index = {t.id: i for i, t in enumerate(tasks)}
    volunteer_index = {v: i for i, v in enumerate(people)}
    scores = [found[r.Signup.id].score for r in rows]
    units = [int(score * 1000) for score in scores]
    confirmed = [r.Signup.status is SignupStatus.CONFIRMED for r in rows]
    stored = (sum(confirmed), sum(u for u, c in zip(units, confirmed, strict=True) if c))
    best = optimum([task_index[r.Signup.task_id] for r in rows], [volunteer_index[r.Signup.volunteer_id] for r in rows],
                   [int((r.starts_at - NOW).total_seconds()) for r in rows],
                   [int((r.ends_at - NOW).total_seconds()) for r in rows], units, [t.slots for t in tasks])
    assert result["exact"] and (result["filled"], result["score"]) == stored == best
    assert Decimal(result["score"]) / 1000 == sum(s for s, c in zip(scores, confirmed, strict=True) if c)


@pytest.mark.parametrize("keys", ["ties", "sorted", "negative", "wide"])
def test_the_solvers_ordering_is_the_stable_sort_whichever_way_it_sorts(keys: str) -> None:
    """by_key orders the candidates (hence which of equal optima the batch decides): each of its three ways
    (already sorted, packed keys, NumPy's stable sort) gives exactly the stable order."""
    rng = np.random.default_rng(7)
    key = {
        "ties": rng.integers(0, 50, 100_000),  # packed with the index
        "sorted": np.sort(rng.integers(0, 50, 100_000)),
        "negative": rng.integers(-50, 50, 100_000),  # not packable
        "wide": rng.integers(0, 2**60, 100_000),  # no room left for the index
    }[keys].astype(np.int64)
    assert np.array_equal(solver.by_key(key), np.argsort(key, kind="stable"))


def test_the_batchs_distances_are_the_haversine_the_sign_up_checks_use() -> None:
    """The batch computes millions of distances from per-point trigonometry; each equals geo.haversine_km (which
    check-ins and sign-ups use) to well under a metre, near and far, across the date line and at the poles."""
    rng = np.random.default_rng(11)
    lat = np.r_[rng.uniform(-90, 90, 2000), 28.3, 28.3, 89.9, -89.9, 0.0]
    lng = np.r_[rng.uniform(-180, 180, 2000), 121.6, 121.6, 179.9, -179.9, 0.0]
    i = np.r_[rng.integers(0, lat.shape[0], 5000), 2000, 2002, 2004]
    j = np.r_[rng.integers(0, lat.shape[0], 5000), 2001, 2003, 2004]
    places = candidates.Places.of(lat, lng)
    batch = candidates.haversine_km(places, i, places, j)
    expected = [geo.haversine_km(lat[a], lng[a], lat[b], lng[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)]
    assert np.max(np.abs(batch - np.array(expected))) < 1e-6  # kilometres: a millimetre
