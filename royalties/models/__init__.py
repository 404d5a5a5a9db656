"""The royalties app's tables: the double-entry ledger, and the payout cycles that feed it."""

from royalties.models.cycles import (
    Allocation,
    Cycle,
    CycleLicence,
    CycleStatus,
    DistributionPolicy,
    FallbackRule,
    HoldExpiry,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
    SuspenseReason,
    SuspenseRelease,
)
from royalties.models.ledger import AccountKind, JournalEntry, LedgerAccount, Posting
from royalties.models.payouts import (
    Payout,
    PayoutAccount,
    PayoutReconciliation,
    PayoutReturn,
    PayoutRun,
    PayoutRunStatus,
    PayoutStatus,
)

__all__ = [
    "AccountKind",
    "Allocation",
    "Cycle",
    "CycleLicence",
    "CycleStatus",
    "DistributionPolicy",
    "FallbackRule",
    "HoldExpiry",
    "JournalEntry",
    "LedgerAccount",
    "Payout",
    "PayoutAccount",
    "PayoutReconciliation",
    "PayoutReturn",
    "PayoutRun",
    "PayoutRunStatus",
    "PayoutStatus",
    "Posting",
    "Statement",
    "StatementSourceLine",
    "StatementWorkLine",
    "SuspenseItem",
    "SuspenseReason",
    "SuspenseRelease",
]
