from django.db import models  # noqa: F401  (cycles and the ledger arrive with issue 6)
