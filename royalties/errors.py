from config.errors import DomainError


class RoyaltiesError(DomainError):
    code = "royalties_error"


class LedgerError(RoyaltiesError):
    """A journal entry that would break the ledger's rules. Never caught and ignored."""

    code = "ledger_error"
