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
    "Posting",
    "Statement",
    "StatementSourceLine",
    "StatementWorkLine",
    "SuspenseItem",
    "SuspenseReason",
    "SuspenseRelease",
]
