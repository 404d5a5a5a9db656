"""The double-entry ledger.

Every movement of money is a `JournalEntry` whose `Posting`s sum to zero per currency.
Amounts are signed integer minor units: debits positive, credits negative. Posted rows are
immutable; a mistake is corrected by a reversing entry (`reverses`). Balances are derived from
postings, never kept in a second counter. On PostgreSQL the database itself refuses an
unbalanced entry (deferred constraint trigger, checked at commit) and any UPDATE or DELETE.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User


class AccountKind(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"
    EQUITY = "equity", "Equity"


class LedgerAccount(models.Model):
    """An account in one currency, e.g. `cash:stripe:EUR` or `holder_payable:RH-000042:EUR`."""

    code = models.CharField(max_length=120, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    currency = models.CharField(max_length=3)
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
    )
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = "organisation"

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=AccountKind.values), name="ledger_account_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"),
                name="ledger_account_currency_iso",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class JournalEntry(models.Model):
    """One balanced transaction. `idempotency_key` makes posting it twice impossible."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    source_type = models.CharField(max_length=40, help_text="e.g. payment, licence, refund")
    source_id = models.CharField(max_length=64)
    description = models.CharField(max_length=300)
    effective_date = models.DateField()
    posted_at = models.DateTimeField(default=timezone.now)
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-posted_at", "-id"]
        verbose_name_plural = "journal entries"
        indexes = [models.Index(fields=["source_type", "source_id"], name="journal_source_idx")]

    def __str__(self) -> str:
        return f"{self.effective_date} {self.description}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount_minor = models.BigIntegerField(help_text="Debit positive, credit negative.")
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(amount_minor=0), name="posting_amount_not_zero"
            ),
        ]
        indexes = [models.Index(fields=["account", "entry"], name="posting_account_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_minor} {self.currency}"
