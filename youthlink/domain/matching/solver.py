"""The assignment problem and its solvers: arrays in, a chosen set of candidates out. No database here.

A candidate is an eligible application (volunteer, task) with an integer weight (its score in thousandths of
a point). The batch chooses candidates so that, in this order,
  1. as many slots are filled as possible, then
  2. the total weight is as high as possible,
subject to each task's free slots and to the time rule: a volunteer never holds two chosen candidates whose
task times overlap.

Per volunteer, the candidates fall into *overlap components* (sort by start; a component ends where the next
start is at or after every earlier end). Candidates in different components never clash. A component whose
intervals share a common instant (a *clique*: every pair overlaps) allows exactly one choice, so "at most one
per component" is the whole time rule, and the problem is a min-cost flow (source → component → task → sink),
solved exactly by OR-Tools' SimpleMinCostFlow with SolveMaxFlowWithMinCost (maximum flow, then minimum cost).

A component that is not a clique (a chain: A overlaps B, B overlaps C, A and C do not) allows up to its
maximum independent set. Giving it that capacity in the flow is a *relaxation* (it ignores which ones may go
together): its optimum is an upper bound, and when the relaxed optimum happens to respect the time rule it is
the optimum. Otherwise CP-SAT solves the exact model (up to `exact_max_candidates` candidates, within a time
limit); beyond that, chains that clash in the relaxed optimum get capacity 1 and the flow is solved again,
which is feasible but not proven optimal; the gap to the bound is reported.

Before any of that, candidates no optimum needs are set aside (`undominated`): at city scale all but about one
in eighty, so the flow solves a graph of tens of thousands of arcs instead of millions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from ortools.graph.python import min_cost_flow
from ortools.sat.python import cp_model

Ints = NDArray[np.int64]
Flags = NDArray[np.bool_]

SOURCE, SINK, FIRST_TASK_NODE = 0, 1, 2
REPAIR_ROUNDS = 3


@dataclass(frozen=True)
class Problem:
    """One candidate per entry of the per-candidate arrays; `capacity` is per task (free slots)."""

    task: Ints
    volunteer: Ints
    start: Ints  # seconds, any common origin
    end: Ints
    weight: Ints  # >= 0
    capacity: Ints

    @property
    def size(self) -> int:
        return int(self.task.shape[0])

    def take(self, which: Ints, capacity: Ints | None = None) -> Problem:
        """The candidates `which` (indexes), with the same free slots or `capacity`."""
        return Problem(self.task[which], self.volunteer[which], self.start[which], self.end[which],
                       self.weight[which], self.capacity if capacity is None else capacity)


@dataclass(frozen=True)
class Components:
    """Overlap components of each volunteer's candidates."""

    of: Ints  # component of each candidate
    size: Ints  # per component
    clique: Flags  # per component: every pair of its candidates overlaps
    independent: Ints  # per component: the most candidates it can hold at once (its maximum independent set)


@dataclass
class Solution:
    chosen: Flags
    filled: int
    score: int
    bound_filled: int
    bound_score: int
    exact: bool
    method: str
    timings: dict[str, float] = field(default_factory=dict)
    kept: int = 0  # candidates left once those no optimum needs were set aside (what was solved)

    @property
    def objective(self) -> tuple[int, int]:
        return self.filled, self.score


def objective(problem: Problem, chosen: Flags) -> tuple[int, int]:
    return int(chosen.sum()), int(problem.weight[chosen].sum())


def by_key(key: Ints) -> Ints:
    """The stable ascending order of `key` (ties in index order).

    Keys already in order (the batch's candidates, say) are recognized in one pass. Otherwise, when key and index
    fit together in 63 bits, each key carries its index in its low bits and a plain sort of the packed values
    gives the order: NumPy's SIMD sort of int64 is 2-3x faster than its argsort, and the index makes every packed
    value unique, so the order is the stable one."""
    n = int(key.shape[0])
    if n < 2 or bool(np.all(key[1:] >= key[:-1])):
        return np.arange(n, dtype=np.int64)
    low, high = int(key.min()), int(key.max())
    index_bits = (n - 1).bit_length()
    if low >= 0 and high.bit_length() + index_bits <= 63:
        packed = np.sort((key << index_bits) | np.arange(n, dtype=np.int64))
        return packed & ((1 << index_bits) - 1)
    order: Ints = np.argsort(key, kind="stable")
    return order


def components(problem: Problem) -> Components:
    """Overlap components, vectorized: one sort, a running maximum of ends, and segment reductions."""
    n = problem.size
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Components(empty, empty, np.zeros(0, np.bool_), empty)
    base = int(problem.start.min())
    span = int(problem.end.max()) - base + 1
    # One int64 key (volunteer, start): a single sort, not a lexicographic one; none when the candidates come in
    # that order already (the batch's do).
    key = problem.volunteer * span + (problem.start - base)
    in_order = bool(np.all(key[1:] >= key[:-1]))
    if not in_order:
        order = by_key(key)
        key = key[order]
    vol = problem.volunteer if in_order else problem.volunteer[order]
    start = problem.start - base if in_order else problem.start[order] - base
    end = problem.end - base if in_order else problem.end[order] - base
    # Offsetting each volunteer's times by volunteer * span keeps one running maximum per volunteer.
    running_end = np.maximum.accumulate(vol * span + end)
    new = np.ones(n, np.bool_)
    new[1:] = (vol[1:] != vol[:-1]) | (key[1:] >= running_end[:-1])
    del key, running_end
    firsts = np.flatnonzero(new)
    size = np.empty(firsts.shape[0], np.int64)
    size[:-1] = firsts[1:] - firsts[:-1]
    size[-1] = n - firsts[-1]
    comp_sorted = np.repeat(np.arange(firsts.shape[0], dtype=np.int64), size)
    if in_order:
        of = comp_sorted
    else:
        of = np.empty(n, np.int64)
        of[order] = comp_sorted
    clique = np.maximum.reduceat(start, firsts) < np.minimum.reduceat(end, firsts)
    independent = np.ones(len(firsts), np.int64)
    for c in np.flatnonzero(~clique):
        # Earliest end first is optimal for the largest set of disjoint intervals (one small component).
        lo, hi = firsts[c], firsts[c] + size[c]
        count, free_from = 0, None
        for s, e in sorted(zip(start[lo:hi].tolist(), end[lo:hi].tolist(), strict=True), key=lambda p: p[1]):
            if free_from is None or s >= free_from:
                count, free_from = count + 1, e
        independent[c] = count
    return Components(of, size, clique, independent)


def undominated(problem: Problem, comps: Components) -> Ints:
    """The candidates left when those no optimum needs are set aside, as sorted indexes. Exact: the problem
    restricted to them has the same optimum (slots filled, then weight), in the exact model and in the flow.

    Rank each task's candidates by weight, highest first (ties by index). Call a candidate *free-standing* when
    it is the only candidate left in its overlap component: its volunteer has no other candidate it could clash
    with, so nothing else can ever stand in its way. If a task has at least as many free-standing candidates as
    free slots, every candidate ranked below the last of the first `capacity` of them can go: in any solution
    that uses one, one of those free-standing candidates is unused (the slots are full), and taking it instead
    fills as many slots, with no less weight, breaking no rule. Setting candidates aside leaves components
    with fewer candidates, so more become free-standing; the rule repeats until it removes nothing. A task
    with no free slots keeps none."""
    n = problem.size
    everyone = np.arange(n, dtype=np.int64)
    if n == 0:
        return everyone
    top = int(problem.weight.max())
    index_bits, weight_bits = (n - 1).bit_length(), top.bit_length()
    n_tasks = int(problem.capacity.shape[0])
    if int(problem.weight.min()) < 0 or (n_tasks - 1).bit_length() + weight_bits + index_bits > 63:
        return everyone  # ranks do not pack in 63 bits (far beyond a city): keep all, which is always exact
    # One int64 rank per candidate, ascending = better: task, then weight (highest first), then index.
    task_shift = weight_bits + index_bits
    rank = (problem.task << task_shift) | ((top - problem.weight) << index_bits) | everyone
    left_in_component = comps.size.copy()
    alive = everyone
    has_room = problem.capacity > 0
    while alive.shape[0]:
        free_standing = np.sort(rank[alive[left_in_component[comps.of[alive]] == 1]])
        task_of = free_standing >> task_shift
        first = np.searchsorted(task_of, np.arange(n_tasks))
        count = np.bincount(task_of, minlength=n_tasks)
        # Per task, the rank of its capacity-th free-standing candidate: anything ranked after it goes.
        enough = has_room & (count >= problem.capacity)
        cutoff = np.full(n_tasks, np.iinfo(np.int64).max, np.int64)
        cutoff[enough] = free_standing[first[enough] + problem.capacity[enough] - 1]
        cutoff[~has_room] = -1
        dropped = rank[alive] > cutoff[problem.task[alive]]
        if not dropped.any():
            break
        left_in_component -= np.bincount(comps.of[alive[dropped]], minlength=left_in_component.shape[0])
        alive = alive[~dropped]
    return alive


@dataclass(frozen=True)
class FlowGraph:
    """Arrays for SimpleMinCostFlow; the first `candidates` arcs are the candidates, in order."""

    tails: NDArray[np.int32]
    heads: NDArray[np.int32]
    capacities: Ints
    costs: Ints
    supply: int
    candidates: int
    nodes: int


def flow_graph(problem: Problem, comps: Components, component_capacity: Ints) -> FlowGraph:
    """source → component (its capacity) → task (one arc per candidate) → sink (free slots).

    A component of one candidate needs no node of its own: its candidate's arc leaves the source. Costs are
    `max weight − weight` (non-negative); every unit of flow crosses one candidate arc, so at maximum flow F
    the cost is F · max − total weight: minimum cost is maximum weight.
    """
    n_tasks = int(problem.capacity.shape[0])
    multi = comps.size > 1
    node_of_component = np.full(comps.size.shape[0], SOURCE, np.int64)
    multi_ids = np.flatnonzero(multi)
    first_block = FIRST_TASK_NODE + n_tasks
    node_of_component[multi_ids] = first_block + np.arange(multi_ids.shape[0])
    top = int(problem.weight.max()) if problem.size else 0
    tails = np.concatenate([
        node_of_component[comps.of],
        np.full(multi_ids.shape[0], SOURCE, np.int64),
        FIRST_TASK_NODE + np.arange(n_tasks),
    ]).astype(np.int32)
    heads = np.concatenate([
        FIRST_TASK_NODE + problem.task,
        node_of_component[multi_ids],
        np.full(n_tasks, SINK, np.int64),
    ]).astype(np.int32)
    capacities = np.concatenate([
        np.ones(problem.size, np.int64),
        component_capacity[multi_ids],
        problem.capacity,
    ]).astype(np.int64)
    costs = np.concatenate([
        top - problem.weight,
        np.zeros(multi_ids.shape[0] + n_tasks, np.int64),
    ]).astype(np.int64)
    supply = int(min(problem.size, int(problem.capacity.sum())))
    return FlowGraph(tails, heads, capacities, costs, supply, problem.size, first_block + multi_ids.shape[0])


def solve_flow(graph: FlowGraph) -> Flags:
    """The bare OR-Tools solve: maximum flow, and among maximum flows the minimum cost."""
    if graph.candidates == 0 or graph.supply == 0:
        return np.zeros(graph.candidates, np.bool_)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(graph.tails, graph.heads, graph.capacities, graph.costs)
    flow.set_node_supply(SOURCE, graph.supply)
    flow.set_node_supply(SINK, -graph.supply)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    chosen: Flags = flow.flows(np.arange(graph.candidates, dtype=np.int32)) > 0
    return chosen


def clashing_components(problem: Problem, comps: Components, chosen: Flags) -> Flags:
    """Per component: whether two of its chosen candidates overlap in time (only chains can)."""
    bad = np.zeros(comps.size.shape[0], np.bool_)
    picked = np.flatnonzero(chosen & ~comps.clique[comps.of])
    if picked.shape[0] < 2:
        return bad
    order = picked[np.lexsort((problem.start[picked], comps.of[picked]))]
    comp = comps.of[order]
    base = int(problem.start[order].min())
    start, end = problem.start[order] - base, problem.end[order] - base
    span = int(end.max()) + 1
    running_end = np.maximum.accumulate(comp * span + end)
    clash = (comp[1:] == comp[:-1]) & (comp[1:] * span + start[1:] < running_end[:-1])
    bad[comp[1:][clash]] = True
    return bad


def overlapping(volunteer: Ints, start: Ints, end: Ints, held_volunteer: Ints, held_start: Ints, held_end: Ints
                ) -> Flags:
    """For each interval (volunteer, start, end): does it overlap one the same volunteer holds? Vectorized.

    The held intervals are sorted by (volunteer, start) with a running maximum of their ends; the last held
    interval of the volunteer that starts before `end` then tells whether any held one reaches past `start`.
    """
    if held_volunteer.shape[0] == 0 or volunteer.shape[0] == 0:
        return np.zeros(volunteer.shape[0], np.bool_)
    # Only the intervals of volunteers who hold any are searched (a city-wide batch: a fifth of millions).
    holds = np.zeros(int(max(volunteer.max(), held_volunteer.max())) + 1, np.bool_)
    holds[held_volunteer] = True
    checked = np.flatnonzero(holds[volunteer])
    clash = np.zeros(volunteer.shape[0], np.bool_)
    if checked.shape[0] == 0:
        return clash
    volunteer, start, end = volunteer[checked], start[checked], end[checked]
    base = int(min(start.min(), held_start.min()))
    span = int(max(end.max(), held_end.max())) - base + 1
    order = np.lexsort((held_start, held_volunteer))
    held_vol = held_volunteer[order]
    held_key = held_vol * span + (held_start[order] - base)
    reach = np.maximum.accumulate(held_vol * span + (held_end[order] - base))
    at = np.searchsorted(held_key, volunteer * span + (end - base), side="left") - 1
    safe = np.maximum(at, 0)
    clash[checked] = (at >= 0) & (held_vol[safe] == volunteer) & (reach[safe] > volunteer * span + (start - base))
    return clash


def is_feasible(problem: Problem, chosen: Flags) -> bool:
    """Slots and the time rule, checked directly (used by tests and as a guard after every solve)."""
    per_task = np.bincount(problem.task[chosen], minlength=problem.capacity.shape[0])
    if np.any(per_task > problem.capacity):
        return False
    picked = np.flatnonzero(chosen)
    order = picked[np.lexsort((problem.start[picked], problem.volunteer[picked]))]
    vol, start, end = problem.volunteer[order], problem.start[order], problem.end[order]
    for i in range(1, order.shape[0]):
        if vol[i] == vol[i - 1] and start[i] < end[i - 1]:
            return False
    return True


def solve_exact(problem: Problem, comps: Components, hint: Flags | None, seconds: float, workers: int
                ) -> tuple[Flags, bool]:
    """CP-SAT on the exact model. Returns the best solution found and whether it is proven optimal."""
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(problem.size)]
    by_task: dict[int, list[int]] = {}
    for i, t in enumerate(problem.task.tolist()):
        by_task.setdefault(t, []).append(i)
    for t, members in by_task.items():
        if len(members) > problem.capacity[t]:
            model.add(sum(x[i] for i in members) <= int(problem.capacity[t]))
    members_of: dict[int, list[int]] = {}
    multi = comps.size[comps.of] > 1
    for i in np.flatnonzero(multi).tolist():
        members_of.setdefault(int(comps.of[i]), []).append(i)
    for c, members in members_of.items():
        if comps.clique[c]:
            model.add_at_most_one(x[i] for i in members)
            continue
        # Intervals: every clique contains the latest start among its members, so the sets "active at the
        # start of i" are all the cliques there are.
        for i in members:
            active = [j for j in members if problem.start[j] <= problem.start[i] < problem.end[j]]
            if len(active) > 1:
                model.add_at_most_one(x[j] for j in active)
    # Lexicographic in one objective: a filled slot is worth more than any total of weights.
    big = int(problem.weight.sum()) + 1
    model.maximize(sum((big + int(w)) * x[i] for i, w in enumerate(problem.weight.tolist())))
    if hint is not None:
        for i, value in enumerate(hint.tolist()):
            model.add_hint(x[i], value)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return (hint if hint is not None else np.zeros(problem.size, np.bool_)), False
    chosen = np.array([solver.boolean_value(v) for v in x], np.bool_)
    return chosen, status == cp_model.OPTIMAL


def greedy(problem: Problem) -> Flags:
    """Baseline: best weight first, take it if its task has a slot and its volunteer is free then."""
    chosen = np.zeros(problem.size, np.bool_)
    left = problem.capacity.copy()
    held: dict[int, list[tuple[int, int]]] = {}
    order = np.lexsort((np.arange(problem.size), -problem.weight))
    task, vol, start, end = (a.tolist() for a in (problem.task, problem.volunteer, problem.start, problem.end))
    for i in order.tolist():
        t = task[i]
        if left[t] <= 0:
            continue
        times = held.setdefault(vol[i], [])
        if any(start[i] < e and s < end[i] for s, e in times):
            continue
        times.append((start[i], end[i]))
        left[t] -= 1
        chosen[i] = True
    return chosen


def _restricted(problem: Problem, comps: Components, capacity: Ints, clashing: Flags) -> Flags:
    capacity = capacity.copy()
    for _ in range(REPAIR_ROUNDS):
        capacity[clashing] = 1
        chosen = solve_flow(flow_graph(problem, comps, capacity))
        clashing = clashing_components(problem, comps, chosen)
        if not clashing.any():
            return chosen
    return solve_flow(flow_graph(problem, comps, np.ones_like(capacity)))


def _fill_leftovers(problem: Problem, chosen: Flags) -> Flags:
    """Slots left free by the repair go to candidates that clash with nothing chosen (a few rounds)."""
    for _ in range(REPAIR_ROUNDS):
        left = problem.capacity - np.bincount(problem.task[chosen], minlength=problem.capacity.shape[0])
        open_ = ~chosen & (left[problem.task] > 0)
        open_ &= ~overlapping(problem.volunteer, problem.start, problem.end, problem.volunteer[chosen],
                              problem.start[chosen], problem.end[chosen])
        rest = np.flatnonzero(open_)
        if rest.shape[0] == 0:
            break
        sub = problem.take(rest, left)
        comps = components(sub)
        capacity = np.where(comps.clique, 1, comps.independent)
        picked = solve_flow(flow_graph(sub, comps, capacity))
        clashing = clashing_components(sub, comps, picked)
        if clashing.any():
            picked = _restricted(sub, comps, capacity, clashing)
        if not picked.any():
            break
        chosen = chosen.copy()
        chosen[rest[picked]] = True
    return chosen


def solve(problem: Problem, *, exact_max_candidates: int = 20_000, exact_seconds: float = 20.0,
          workers: int = 2) -> Solution:
    """The batch's solver: exact whenever it can prove it, otherwise feasible with a proven bound. It solves the
    undominated candidates (the same optimum, see `undominated`); the others are never chosen."""
    clock = time.perf_counter()
    comps = components(problem)
    kept = undominated(problem, comps)
    pruned = time.perf_counter() - clock  # the overlap components and the dominated candidates set aside
    if kept.shape[0] == problem.size:
        solution = _solve(problem, comps, exact_max_candidates, exact_seconds, workers)
    else:
        reduced = problem.take(kept)
        solution = _solve(reduced, components(reduced), exact_max_candidates, exact_seconds, workers)
        chosen = np.zeros(problem.size, np.bool_)
        chosen[kept] = solution.chosen
        solution.chosen = chosen
    solution.timings = {"prune": pruned, **solution.timings}
    solution.kept = int(kept.shape[0])
    return solution


def _solve(problem: Problem, comps: Components, exact_max_candidates: int, exact_seconds: float, workers: int
           ) -> Solution:
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    relaxed_capacity = np.where(comps.clique, 1, comps.independent)
    graph = flow_graph(problem, comps, relaxed_capacity)
    timings["graph"] = time.perf_counter() - clock
    clock = time.perf_counter()
    relaxed = solve_flow(graph)
    del graph
    timings["flow"] = time.perf_counter() - clock
    bound = objective(problem, relaxed)
    clashing = clashing_components(problem, comps, relaxed)
    if not clashing.any():
        method = "flow" if comps.clique.all() else "flow-certified"
        return Solution(relaxed, *bound, *bound, True, method, timings)

    # The relaxation broke the time rule somewhere: repair by giving clashing chains one choice each (a few
    # rounds, then every chain), which is feasible; then fill what is left. The relaxed optimum stays the bound.
    clock = time.perf_counter()
    chosen = _restricted(problem, comps, relaxed_capacity, clashing)
    chosen = _fill_leftovers(problem, chosen)
    timings["repair"] = time.perf_counter() - clock
    if problem.size <= exact_max_candidates:
        clock = time.perf_counter()
        exact, optimal = solve_exact(problem, comps, chosen, exact_seconds, workers)
        timings["cp_sat"] = time.perf_counter() - clock
        if objective(problem, exact) >= objective(problem, chosen) and is_feasible(problem, exact):
            found = objective(problem, exact)
            if optimal:
                return Solution(exact, *found, *found, True, "cp-sat", timings)
            return Solution(exact, *found, *bound, found == bound, "cp-sat-limit", timings)
    found = objective(problem, chosen)
    return Solution(chosen, *found, *bound, found == bound, "flow-repair", timings)
