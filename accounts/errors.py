from config.errors import DomainError


class AccountsError(DomainError):
    code = "accounts_error"
