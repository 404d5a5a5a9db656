from django.db import models  # noqa: F401  (the repertoire arrives with issue 3)
