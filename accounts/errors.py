from config.errors import DomainError


class AccountsError(DomainError):
    code = "accounts_error"

    def __init__(self, message: str, *, code: str | None = None, details=None):
        super().__init__(message, code=code, details=details)
        if code == "forbidden":
            self.http_status = 403
