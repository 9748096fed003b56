"""Matching volunteers to MATCHED tasks: the optimal batch, the waitlist, recommendations and invitations.

    candidates   pairs checked against the hard rules and scored, set-based (SQL and NumPy)
    scores       the six factors, their weights (settings) and the explanation an organization reads
    solver       the assignment: OR-Tools min-cost flow, CP-SAT where the time rule needs it; a greedy baseline
    batch        the beat job's batch: lock, load, build, solve, write
    waitlist     promotions when a slot frees up (cancellations, no-shows)
    recommend    recommended volunteers for a task, recommended tasks for a volunteer, invitations
"""

from youthlink.domain.matching.batch import MATCHING_LOCK_KEY, due_tasks, run_batch

__all__ = ["MATCHING_LOCK_KEY", "due_tasks", "run_batch"]
