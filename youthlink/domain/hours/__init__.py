"""The service-hours ledger: crediting, review, deadlines, corrections, totals and star levels.

Hours are credited once: a record's natural key is its sign-up (or, for offline records, its import key),
inserted with ON CONFLICT DO NOTHING. An approved record never changes; a correction is an Adjustment with
a reason. A volunteer's total is recomputed from the ledger in the same transaction, never incremented
blindly, and reconciled nightly.

    ledger       the one definition of hours, totals, star levels, reconciliation
    records      credit from check-in, paper records, approve / reject / auto-approve, deadlines, history
    corrections  adjustments and volunteers' correction requests
    deadlines    the 10-working-day recording deadline
"""

from youthlink.domain.hours.commands import MAX_BULK
from youthlink.domain.hours.corrections import adjust_record, decide_correction, request_correction
from youthlink.domain.hours.deadlines import is_due_soon
from youthlink.domain.hours.ledger import (
    STAR_THRESHOLDS,
    award_star_levels,
    ledger_entries,
    ledger_totals,
    rebuild_totals,
    recompute_totals,
    reconcile,
    served_hours,
    star_level,
)
from youthlink.domain.hours.records import (
    approve_records,
    auto_approve,
    credit_from_checkin,
    mark_late_and_remind,
    record_history,
    record_paper_hours,
    records_for_review,
    reject_records,
    set_auto_approval,
)

__all__ = [
    "MAX_BULK",
    "STAR_THRESHOLDS",
    "adjust_record",
    "approve_records",
    "auto_approve",
    "award_star_levels",
    "credit_from_checkin",
    "decide_correction",
    "is_due_soon",
    "ledger_entries",
    "ledger_totals",
    "mark_late_and_remind",
    "rebuild_totals",
    "recompute_totals",
    "reconcile",
    "record_history",
    "record_paper_hours",
    "records_for_review",
    "reject_records",
    "request_correction",
    "served_hours",
    "set_auto_approval",
    "star_level",
]
