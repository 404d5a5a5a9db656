from rest_framework import status

from config.errors import DomainError


class LicensingError(DomainError):
    code = "licensing_error"


class ShareError(LicensingError):
    code = "invalid_shares"


class ImportFileError(LicensingError):
    """The file as a whole cannot be read (size, encoding, format, missing columns)."""

    code = "invalid_file"
    http_status = status.HTTP_400_BAD_REQUEST
