"""Payouts: approved statements to Stripe Connect transfers, exactly once.

The rules that make "exactly once" hold whatever fails (a worker killed at any point, Redis lost,
Stripe answering 500 or not at all):

1. Intent first. Starting a run writes one `Payout` row per payable statement before any call.
2. Claim by conditional UPDATE (`pending → submitting`, stamped `claimed_at`); a task that does
   not win the claim does nothing.
3. Every transfer carries the key `payout:<id>:transfer:<generation>`. A retry with the same key
   can never create a second transfer (Stripe replays the first answer for 24 hours).
4. The generation moves on only when Blanket knows no transfer exists under the old key: Stripe
   refused the request (a 4xx: it did not execute and never will), or a look-up of the payout's
   transfer group found nothing. A `submitting` row whose answer was lost (time-out, 5xx,
   worker killed after the call) is never resubmitted blindly: the sweeper looks its transfer up
   first, which also covers answers older than Stripe's 24-hour idempotency window.
5. Money moves in the ledger only from what Stripe says: `sent` books Dr holder_payable /
   Cr cash:stripe, under a key naming the payout, so booking twice is impossible.

Outcomes: a holder whose account cannot receive is `held` (no Stripe call; its balance stays
payable and the payout is retried when the account is enabled); insufficient platform balance
pauses the run (an alert for the approvers) until the balance covers the next payout or staff
resume it; a refused transfer `fails` and a reversed one is `reversed`: either returns the money
to the holder's balance (Dr cash or holder_payable / Cr holder:<code>) and the next cycle brings
it forward. A cycle is `paid` when every payout is settled or held, `closed` once a
reconciliation with Stripe comes out clean (`royalties.services.reconciliation`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from accounts.models import Organisation, OrganisationKind
from accounts.scoping import Caller
from accounts.services import audit_record
from config import failpoints
from config.errors import ConflictError, DomainError, PermissionError_
from licensing.services.licences import fees_account
from royalties.integrations import stripe_client
from royalties.integrations.stripe_client import StripeBoundaryError
from royalties.models import (
    AccountKind,
    Cycle,
    CycleStatus,
    LedgerAccount,
    Payout,
    PayoutAccount,
    PayoutReturn,
    PayoutRun,
    PayoutRunStatus,
    PayoutStatus,
    Statement,
)
from royalties.services.cycle_ledger import holder_account_codes
from royalties.services.ledger import Line, journal_entry_post, ledger_accounts_ensure

logger = logging.getLogger(__name__)

BALANCE_INSUFFICIENT = "balance_insufficient"
CANNOT_RECEIVE = "insufficient_capabilities_for_transfer"
BACKOFF_CAP = timedelta(hours=1)


def _stuck_after() -> timedelta:
    return timedelta(seconds=settings.PAYOUT_STUCK_SECONDS)


def _require_approver(caller: Caller, action: str) -> None:
    if not caller.in_staff_group("approver"):
        raise PermissionError_(
            f"Only society staff in the approver group may {action}.", code="forbidden_role"
        )


# --- payout accounts --------------------------------------------------------------------------


def _require_holder_manager(caller: Caller) -> Organisation:
    organisation = caller.require_organisation()
    if organisation.kind != OrganisationKind.RIGHTS_HOLDER:
        raise PermissionError_("Only rights holders receive payouts.", code="not_a_rights_holder")
    caller.require_manage()
    return organisation


def payout_account_connect(*, caller: Caller, return_url: str, refresh_url: str) -> str:
    """The URL of Stripe's onboarding for the caller's organisation, creating its Express
    account the first time (the key names the organisation: two clicks make one account)."""
    organisation = _require_holder_manager(caller)
    account = PayoutAccount.objects.filter(organisation=organisation).first()
    if account is None:
        created = stripe_client.connect_account_create(
            idempotency_key=f"payout-account:{organisation.pk}",
            country=str(organisation.country) or "GB",
            email=organisation.contact_email,
            metadata={"organisation": organisation.code},
        )
        with transaction.atomic():
            account, made = PayoutAccount.objects.get_or_create(
                organisation=organisation,
                defaults={
                    "stripe_account_id": created["id"],
                    "country": created.get("country") or "",
                    "payout_currency": (created.get("default_currency") or "eur").upper(),
                },
            )
            if made:
                _account_apply(account, created)
                audit_record(
                    action="payout_account.create",
                    caller=caller,
                    obj=account,
                    details={"stripe_account": created["id"]},
                )
    link = stripe_client.account_link_create(
        account_id=account.stripe_account_id, refresh_url=refresh_url, return_url=return_url
    )
    return link["url"]


def _account_apply(account: PayoutAccount, remote: dict[str, Any]) -> bool:
    """Copy what Stripe says of the account; True when it can now receive and could not."""
    could = account.can_receive
    requirements = remote.get("requirements") or {}
    account.details_submitted = bool(remote.get("details_submitted"))
    account.payouts_enabled = bool(remote.get("payouts_enabled"))
    account.transfers_active = (remote.get("capabilities") or {}).get("transfers") == "active"
    account.requirements_due = list(requirements.get("currently_due") or [])
    account.disabled_reason = requirements.get("disabled_reason") or ""
    account.updated_at = timezone.now()
    account.save(
        update_fields=[
            "details_submitted",
            "payouts_enabled",
            "transfers_active",
            "requirements_due",
            "disabled_reason",
            "updated_at",
        ]
    )
    return account.can_receive and not could


def payout_account_sync(*, stripe_account_id: str) -> PayoutAccount | None:
    """Re-read the account from Stripe (events may be stale, repeated or out of order, so their
    payload is never trusted) and release held payouts once it can receive."""
    account = PayoutAccount.objects.filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return None
    remote = stripe_client.connect_account_retrieve(stripe_account_id)
    with transaction.atomic():
        account = PayoutAccount.objects.select_for_update().get(pk=account.pk)
        enabled = _account_apply(account, remote)
    if account.can_receive or enabled:
        payouts_release_held(holder_id=account.organisation_id)
    return account


def payout_account_settings_update(
    *, caller: Caller, threshold_minor: int, payout_currency: str
) -> PayoutAccount:
    organisation = _require_holder_manager(caller)
    account = PayoutAccount.objects.filter(organisation=organisation).first()
    if account is None:
        raise ConflictError("Connect a payout account first.", code="payout_account_missing")
    errors = {}
    if (
        not isinstance(threshold_minor, int)
        or isinstance(threshold_minor, bool)
        or not (0 <= threshold_minor <= 10**12)
    ):
        errors["threshold_minor"] = ["A whole number of minor units, 0 or more."]
    currency = str(payout_currency or "").upper()
    if currency not in settings.PAYOUT_CURRENCIES:
        errors["payout_currency"] = [f"One of {', '.join(settings.PAYOUT_CURRENCIES)}."]
    if errors:
        raise DomainError(
            "The payout settings are not valid.", code="invalid_payout_settings", details=errors
        )
    before = {"threshold_minor": account.threshold_minor, "currency": account.payout_currency}
    account.threshold_minor = threshold_minor
    account.payout_currency = currency
    account.updated_at = timezone.now()
    with transaction.atomic():
        account.save(update_fields=["threshold_minor", "payout_currency", "updated_at"])
        audit_record(
            action="payout_account.settings",
            caller=caller,
            obj=account,
            details={"before": before, "threshold_minor": threshold_minor, "currency": currency},
        )
    return account


def payout_thresholds() -> dict[int, int]:
    """Holder id -> the holder's own minimum payout, where it set one."""
    return dict(
        PayoutAccount.objects.filter(threshold_minor__gt=0).values_list(
            "organisation_id", "threshold_minor"
        )
    )


# --- runs -------------------------------------------------------------------------------------


def payout_run_start(*, caller: Caller, cycle: Cycle) -> PayoutRun:
    """approved → paying: one `Payout` per payable statement, written before any call; the
    submission tasks are enqueued after commit."""
    from royalties.tasks_payouts import payout_run_dispatch_task

    _require_approver(caller, "start a payout run")
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != CycleStatus.APPROVED:
            raise ConflictError(
                f"A {locked.status} cycle cannot be paid.", code="cycle_not_payable"
            )
        run = PayoutRun.objects.create(cycle=locked, started_by=caller.user)
        statements = Statement.objects.filter(
            allocation_id=locked.current_allocation_id, payable_minor__gt=0
        ).values_list("pk", "holder_id", "payable_minor")
        now = timezone.now()
        Payout.objects.bulk_create(
            [
                Payout(
                    run=run,
                    cycle=locked,
                    statement_id=pk,
                    holder_id=holder_id,
                    amount_minor=amount,
                    currency=locked.currency,
                    created_at=now,
                    next_attempt_at=now,
                )
                for pk, holder_id, amount in statements
            ],
            batch_size=5000,
        )
        Cycle.objects.filter(pk=locked.pk).update(
            status=CycleStatus.PAYING, stage="paying", updated_at=now
        )
        audit_record(
            action="payout_run.start",
            caller=caller,
            obj=locked,
            details={"run": run.pk, "payouts": run.payouts.count()},
        )
        transaction.on_commit(lambda: payout_run_dispatch_task.delay(run.pk), robust=True)
    payout_run_finish_if_done(run_id=run.pk)  # a cycle with nothing payable is paid at once
    return run


def payout_run_due(*, run_id: int) -> list[int]:
    """The pending payouts of a running run that are due now (ids, in order)."""
    if not PayoutRun.objects.filter(pk=run_id, status=PayoutRunStatus.RUNNING).exists():
        return []
    return list(
        Payout.objects.filter(
            run_id=run_id, status=PayoutStatus.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def payout_run_pause(*, run_id: int, reason: str) -> bool:
    paused = PayoutRun.objects.filter(pk=run_id, status=PayoutRunStatus.RUNNING).update(
        status=PayoutRunStatus.PAUSED, pause_reason=reason, paused_at=timezone.now()
    )
    if paused:
        run = PayoutRun.objects.select_related("cycle").get(pk=run_id)
        logger.error("payout run %s paused: %s", run_id, reason)
        audit_record(action="payout_run.paused", obj=run.cycle, details={"reason": reason})
        mail_admins(
            f"Blanket: payout run for {run.cycle.period} {run.cycle.currency} paused",
            f"{reason}\n\nIt resumes by itself once the platform balance covers the next "
            f"payout, or an approver can resume it from the payout monitor.",
            fail_silently=True,
        )
    return bool(paused)


def payout_run_resume(*, run_id: int, caller: Caller | None = None) -> bool:
    """Paused → running (staff, or the sweeper once the balance suffices)."""
    from royalties.tasks_payouts import payout_run_dispatch_task

    if caller is not None:
        _require_approver(caller, "resume a payout run")
    resumed = PayoutRun.objects.filter(pk=run_id, status=PayoutRunStatus.PAUSED).update(
        status=PayoutRunStatus.RUNNING, pause_reason="", paused_at=None
    )
    if resumed:
        run = PayoutRun.objects.select_related("cycle").get(pk=run_id)
        audit_record(
            action="payout_run.resumed",
            caller=caller,
            obj=run.cycle,
            details={"by": "staff" if caller else "sweeper"},
        )
        transaction.on_commit(lambda: payout_run_dispatch_task.delay(run_id), robust=True)
    return bool(resumed)


def payout_run_finish_if_done(*, run_id: int) -> bool:
    """paying → paid once no payout of the run is pending, submitting or sent."""
    open_ = Payout.objects.filter(
        run_id=run_id,
        status__in=(PayoutStatus.PENDING, PayoutStatus.SUBMITTING, PayoutStatus.SENT),
    ).exists()
    if open_:
        return False
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run_id)
        if run.status == PayoutRunStatus.DONE:
            return False
        now = timezone.now()
        PayoutRun.objects.filter(pk=run_id).update(status=PayoutRunStatus.DONE, finished_at=now)
        Cycle.objects.filter(pk=run.cycle_id, status=CycleStatus.PAYING).update(
            status=CycleStatus.PAID, stage="paid", updated_at=now
        )
        audit_record(action="cycle.paid", obj=run.cycle, details=payout_run_counts(run_id))
    return True


def payout_run_counts(run_id: int) -> dict[str, Any]:
    rows = (
        Payout.objects.filter(run_id=run_id)
        .values("status")
        .annotate(n=Count("id"), amount=Sum("amount_minor"))
    )
    return {row["status"]: {"count": row["n"], "amount_minor": row["amount"]} for row in rows}


# --- one payout -------------------------------------------------------------------------------


def _claim(payout_id: int) -> Payout | None:
    # `last_error` is cleared: on a `submitting` row it must mean "this attempt ended without
    # an answer", which lets the sweeper look the transfer up after the back-off, without
    # waiting PAYOUT_STUCK_SECONDS. An error left over from an earlier attempt would let it
    # look up (find nothing, move to the next key and resend) while this attempt's call is
    # still in flight: two transfers once that call lands.
    now = timezone.now()
    claimed = Payout.objects.filter(
        pk=payout_id,
        status=PayoutStatus.PENDING,
        next_attempt_at__lte=now,
        run__status=PayoutRunStatus.RUNNING,
    ).update(
        status=PayoutStatus.SUBMITTING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        last_error="",
    )
    if not claimed:
        return None
    return Payout.objects.select_related("holder", "cycle").get(pk=payout_id)


def _still_claimed(payout: Payout) -> bool:
    """The claim this worker took is still the payout's: same generation, same claim time
    (the sweeper's look-up moves `claimed_at` when it takes a stale claim over)."""
    return Payout.objects.filter(
        pk=payout.pk,
        status=PayoutStatus.SUBMITTING,
        generation=payout.generation,
        claimed_at=payout.claimed_at,
    ).exists()


def _set(payout: Payout, expect: str, **fields) -> bool:
    """Move the payout on only if it is still where this worker left it."""
    return bool(Payout.objects.filter(pk=payout.pk, status=expect).update(**fields))


def _hold(payout: Payout, reason: str, *, expect: str) -> None:
    if _set(payout, expect, status=PayoutStatus.HELD, held_reason=reason, claimed_at=None):
        audit_record(
            action="payout.held",
            organisation=payout.holder,
            obj=payout,
            details={"reason": reason},
        )


def _backoff(attempts: int) -> timedelta:
    return min(
        timedelta(seconds=settings.PAYOUT_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)),
        BACKOFF_CAP,
    )


def payout_submit(*, payout_id: int) -> str | None:
    """Claim one pending payout and make its transfer. Returns the new status, or None when
    another worker has it (or it is not due)."""
    payout = _claim(payout_id)
    if payout is None:
        return None
    account = PayoutAccount.objects.filter(organisation_id=payout.holder_id).first()
    if account is None or not account.can_receive:
        reason = (
            "No payout account is connected yet: connect one under Payouts to be paid."
            if account is None
            else account.why_not
        )
        _hold(payout, reason, expect=PayoutStatus.SUBMITTING)
        return PayoutStatus.HELD
    Payout.objects.filter(pk=payout.pk).update(destination=account.stripe_account_id)
    failpoints.hit("payout.before_call", payout.pk)
    if not _still_claimed(payout):
        # This worker stalled past PAYOUT_STUCK_SECONDS after its claim (a long pause, a
        # swapping machine): the sweeper has taken the payout over, found no transfer and may
        # have sent the next generation already. Calling now, under this generation's key,
        # could make a second transfer; the payout is the sweeper's now.
        logger.warning("payout %s: claim taken over while this worker stalled", payout.pk)
        return None
    try:
        transfer = stripe_client.transfer_create(
            idempotency_key=payout.idempotency_key,
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            destination=account.stripe_account_id,
            transfer_group=payout.transfer_group,
            metadata={
                "payout_id": str(payout.pk),
                "cycle_id": str(payout.cycle_id),
                "holder": payout.holder.code,
            },
            description=f"Blanket royalties {payout.cycle.period} for {payout.holder.code}",
        )
    except StripeBoundaryError as exc:
        return _submit_failed(payout, exc)
    failpoints.hit("payout.after_call", payout.pk)
    accounts = _ledger_accounts(payout)
    moved = payout_mark_sent(payout=payout, transfer=transfer, accounts=accounts)
    failpoints.hit("payout.after_write", payout.pk)
    if not moved:  # someone else moved it on meanwhile: confirm whatever the row says now
        return payout_confirm(payout_id=payout.pk)
    # Confirm as payout_confirm does (read the transfer back from Stripe and apply it), with
    # the payout and its accounts already in hand: the row is locked and re-read there.
    return payout_transfer_apply(
        payout=payout,
        transfer=stripe_client.transfer_retrieve(transfer["id"]),
        accounts=accounts,
    )


def _submit_failed(payout: Payout, exc: StripeBoundaryError) -> str:
    message = str(exc)[:2000]
    if exc.definite:
        # Stripe refused: no transfer exists under this key, and the key would replay the
        # refusal; the next attempt uses the next generation.
        if exc.stripe_code == BALANCE_INSUFFICIENT:
            _set(
                payout,
                PayoutStatus.SUBMITTING,
                status=PayoutStatus.PENDING,
                generation=F("generation") + 1,
                claimed_at=None,
                last_error=message,
            )
            payout_run_pause(
                run_id=payout.run_id,
                reason=(
                    f"Stripe: insufficient available balance for payout {payout.pk} "
                    f"({payout.amount_minor} {payout.currency} minor units)."
                ),
            )
            return PayoutStatus.PENDING
        if exc.stripe_code == CANNOT_RECEIVE:
            account = PayoutAccount.objects.filter(organisation_id=payout.holder_id).first()
            if account is not None:
                with _quiet():
                    payout_account_sync(stripe_account_id=account.stripe_account_id)
                    account.refresh_from_db()
            reason = account.why_not if account and account.why_not else message
            _set(payout, PayoutStatus.SUBMITTING, generation=F("generation") + 1)
            _hold(payout, reason, expect=PayoutStatus.SUBMITTING)
            return PayoutStatus.HELD
        _fail(payout, message, expect=PayoutStatus.SUBMITTING)
        return PayoutStatus.FAILED
    # The answer was lost or Stripe failed: the transfer may exist. Stay `submitting`; after
    # the back-off the sweeper looks it up before anything is sent again.
    Payout.objects.filter(pk=payout.pk, status=PayoutStatus.SUBMITTING).update(
        last_error=message, next_attempt_at=timezone.now() + _backoff(payout.attempts)
    )
    return PayoutStatus.SUBMITTING


class _quiet:
    """Swallow Stripe errors for a best-effort refresh."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        return kind is not None and issubclass(kind, StripeBoundaryError)


def _ledger_accounts(payout: Payout) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    """(holder:<code>, holder_payable:<code>, cash:stripe) in the payout's currency, read (or
    created) in one query; the same accounts as ``ledger_account_get_or_create`` and
    ``cash_account`` give, with the same checks."""
    code, currency = payout.holder.code, payout.currency
    owed, due = holder_account_codes(code, currency)
    cash = f"cash:stripe:{currency}"
    found = ledger_accounts_ensure(
        [
            (owed, f"Owed to {code}", AccountKind.LIABILITY, currency, payout.holder_id),
            (due, f"Payable to {code}", AccountKind.LIABILITY, currency, payout.holder_id),
            (cash, f"Cash at Stripe ({currency})", AccountKind.ASSET, currency, None),
        ]
    )
    return found[owed], found[due], found[cash]


def _post(payout: Payout, name: str, lines: list[Line], description: str) -> None:
    journal_entry_post(
        idempotency_key=f"payout:{payout.pk}:{name}",
        lines=lines,
        source_type="payout",
        source_id=payout.pk,
        description=f"{payout.cycle.period} payout {payout.pk} to {payout.holder.code}: "
        + description,
        effective_date=timezone.localdate(),
    )


def payout_mark_sent(
    *,
    payout: Payout,
    transfer: dict[str, Any],
    accounts: tuple[LedgerAccount, LedgerAccount, LedgerAccount] | None = None,
) -> bool:
    """submitting → sent with Stripe's transfer, booking Dr holder_payable / Cr cash, in one
    transaction. Idempotent: a second call (a replayed answer, a webhook) changes nothing."""
    if int(transfer["amount"]) != payout.amount_minor:
        raise ConflictError(
            f"Transfer {transfer['id']} is for {transfer['amount']}, payout {payout.pk} for "
            f"{payout.amount_minor}.",
            code="transfer_mismatch",
        )
    _, due, cash = accounts or _ledger_accounts(payout)
    with transaction.atomic():
        moved = Payout.objects.filter(
            pk=payout.pk, status__in=(PayoutStatus.SUBMITTING, PayoutStatus.PENDING)
        ).update(
            status=PayoutStatus.SENT,
            transfer_id=transfer["id"],
            destination=transfer.get("destination") or payout.destination,
            sent_at=timezone.now(),
            claimed_at=None,
            last_error="",
        )
        if moved:
            _post(
                payout,
                "sent",
                [Line(due, payout.amount_minor), Line(cash, -payout.amount_minor)],
                f"transfer {transfer['id']}",
            )
    return bool(moved)


def _fail(payout: Payout, message: str, *, expect: str) -> None:
    """A transfer that was never made: the amount goes back to the holder's balance."""
    owed, due, _ = _ledger_accounts(payout)
    with transaction.atomic():
        if not _set(
            payout,
            expect,
            status=PayoutStatus.FAILED,
            last_error=message,
            claimed_at=None,
            settled_at=timezone.now(),
        ):
            return
        _post(
            payout,
            "failed",
            [Line(due, payout.amount_minor), Line(owed, -payout.amount_minor)],
            "failed; back to the holder's balance",
        )
        PayoutReturn.objects.create(
            payout=payout,
            holder_id=payout.holder_id,
            currency=payout.currency,
            amount_minor=payout.amount_minor,
            reason="failed",
            ref=f"payout:{payout.pk}:failed",
        )
        audit_record(
            action="payout.failed",
            organisation=payout.holder,
            obj=payout,
            details={"error": message[:500]},
        )


def payout_confirm(*, payout_id: int) -> str | None:
    """Read the transfer back from Stripe: sent → paid, book its fee if any, and book every
    reversal not booked yet (→ reversed when fully reversed)."""
    payout = Payout.objects.select_related("holder", "cycle").get(pk=payout_id)
    if not payout.transfer_id:
        return payout.status
    transfer = stripe_client.transfer_retrieve(payout.transfer_id)
    return payout_transfer_apply(payout=payout, transfer=transfer)


def payout_transfer_apply(
    *,
    payout: Payout,
    transfer: dict[str, Any],
    accounts: tuple[LedgerAccount, LedgerAccount, LedgerAccount] | None = None,
) -> str:
    """Apply what Stripe says of the payout's transfer; returns the payout's status after."""
    owed, _, cash = accounts or _ledger_accounts(payout)
    txn = transfer.get("balance_transaction")
    fee = int(txn.get("fee") or 0) if isinstance(txn, dict) else 0
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update().select_related("holder", "cycle").get(pk=payout.pk)
        )
        if fee:
            _post(
                payout,
                "fee",
                [Line(fees_account(currency=payout.currency), fee), Line(cash, -fee)],
                "Stripe transfer fee",
            )
        reversals = (transfer.get("reversals") or {}).get("data") or []
        for reversal in reversals:
            amount = int(reversal["amount"])
            if PayoutReturn.objects.filter(ref=reversal["id"]).exists():
                continue
            _post(
                payout,
                f"reversal:{reversal['id']}",
                [Line(cash, amount), Line(owed, -amount)],
                f"transfer reversed ({reversal['id']}); back to the holder's balance",
            )
            PayoutReturn.objects.create(
                payout=payout,
                holder_id=payout.holder_id,
                currency=payout.currency,
                amount_minor=amount,
                reason="reversed",
                ref=reversal["id"],
            )
            audit_record(
                action="payout.reversed",
                organisation=payout.holder,
                obj=payout,
                details={"reversal": reversal["id"], "amount_minor": amount},
            )
        reversed_total = int(transfer.get("amount_reversed") or 0)
        fields: dict[str, Any] = {"amount_reversed_minor": reversed_total}
        if reversed_total >= payout.amount_minor:
            fields["status"] = PayoutStatus.REVERSED
            fields["settled_at"] = payout.settled_at or timezone.now()
        elif payout.status == PayoutStatus.SENT:
            fields["status"] = PayoutStatus.PAID
            fields["settled_at"] = timezone.now()
        Payout.objects.filter(pk=payout.pk).update(**fields)
    payout_run_finish_if_done(run_id=payout.run_id)
    return fields.get("status", payout.status)


def payout_transfer_refresh(*, transfer_id: str) -> bool:
    """A transfer event (created, reversed, updated): re-read it and apply it to its payout.
    A `submitting` payout whose answer was lost becomes `sent` here too."""
    transfer = stripe_client.transfer_retrieve(transfer_id)
    payout_id = str((transfer.get("metadata") or {}).get("payout_id") or "")
    if not payout_id.isdigit():
        return False
    payout = Payout.objects.select_related("holder", "cycle").filter(pk=int(payout_id)).first()
    if payout is None:
        return False
    if payout.status in (PayoutStatus.SUBMITTING, PayoutStatus.PENDING):
        if payout.transfer_id and payout.transfer_id != transfer["id"]:
            return False
        payout_mark_sent(payout=payout, transfer=transfer)
        payout.refresh_from_db()
    if payout.transfer_id != transfer["id"]:
        return False  # a second transfer for one payout: reconciliation reports it
    payout_transfer_apply(payout=payout, transfer=transfer)
    return True


def payout_resolve(*, payout_id: int) -> str | None:
    """A `submitting` payout whose worker vanished or whose answer was lost: look its transfer
    up by transfer group before anything else. Found: sent. Not found: nothing was made, so the
    next generation is safe; back to pending (or failed after the last attempt)."""
    payout = Payout.objects.select_related("holder", "cycle").get(pk=payout_id)
    if payout.status != PayoutStatus.SUBMITTING:
        return payout.status
    # Take the row so a second sweeper does not resolve it at the same time.
    if not Payout.objects.filter(
        pk=payout.pk, status=PayoutStatus.SUBMITTING, claimed_at=payout.claimed_at
    ).update(claimed_at=timezone.now()):
        return None
    found = [
        t
        for t in stripe_client.transfers_list(transfer_group=payout.transfer_group)
        if str((t.get("metadata") or {}).get("payout_id")) == str(payout.pk)
    ]
    if found:
        first = min(found, key=lambda t: (t["created"], t["id"]))
        payout_mark_sent(payout=payout, transfer=first)
        payout_confirm(payout_id=payout.pk)
    elif payout.attempts >= settings.PAYOUT_MAX_ATTEMPTS:
        _fail(
            payout,
            f"No transfer after {payout.attempts} attempts: {payout.last_error}",
            expect=PayoutStatus.SUBMITTING,
        )
        payout_run_finish_if_done(run_id=payout.run_id)
    else:
        _set(
            payout,
            PayoutStatus.SUBMITTING,
            status=PayoutStatus.PENDING,
            generation=F("generation") + 1,
            claimed_at=None,
            next_attempt_at=timezone.now(),
        )
    return Payout.objects.get(pk=payout.pk).status


def payouts_release_held(*, holder_id: int) -> int:
    """The holder's account can receive now: its held payouts go back to pending."""
    from royalties.tasks_payouts import payout_submit_task

    ids = list(
        Payout.objects.filter(holder_id=holder_id, status=PayoutStatus.HELD).values_list(
            "pk", flat=True
        )
    )
    if not ids:
        return 0
    released = Payout.objects.filter(pk__in=ids, status=PayoutStatus.HELD).update(
        status=PayoutStatus.PENDING, held_reason="", next_attempt_at=timezone.now()
    )
    # A run that was done with held payouts runs again for them, and its cycle is paying again
    # (paid or even closed before): it becomes paid when they settle, and the periodic
    # reconciliation covers the new transfers before it closes again.
    run_ids = set(Payout.objects.filter(pk__in=ids).values_list("run_id", flat=True))
    PayoutRun.objects.filter(pk__in=run_ids, status=PayoutRunStatus.DONE).update(
        status=PayoutRunStatus.RUNNING, finished_at=None
    )
    cycle_ids = set(PayoutRun.objects.filter(pk__in=run_ids).values_list("cycle_id", flat=True))
    for cycle in Cycle.objects.filter(
        pk__in=cycle_ids, status__in=(CycleStatus.PAID, CycleStatus.CLOSED)
    ):
        Cycle.objects.filter(pk=cycle.pk).update(
            status=CycleStatus.PAYING, stage="paying", updated_at=timezone.now()
        )
        audit_record(
            action="cycle.paying_again",
            obj=cycle,
            details={"was": cycle.status, "released_payouts": released},
        )
    for pk in ids:
        transaction.on_commit(lambda pk=pk: payout_submit_task.delay(pk), robust=True)
    return released


# --- the sweeper ------------------------------------------------------------------------------


def payouts_sweep() -> dict[str, Any]:
    """What a periodic beat does: resolve stale `submitting` rows (look-up first), confirm
    `sent` ones, resume paused runs the balance now covers, finish runs, and return the due
    `pending` ids for the caller to enqueue."""
    now = timezone.now()
    stale = now - _stuck_after()
    counts: dict[str, Any] = {
        "resolved": 0,
        "confirmed": 0,
        "resumed": 0,
        "finished": 0,
        "requeue": [],
    }
    submitting = Payout.objects.filter(status=PayoutStatus.SUBMITTING).filter(
        Q(claimed_at__lt=stale)
        | Q(claimed_at__isnull=True)
        | Q(next_attempt_at__lte=now) & ~Q(last_error="")
    )
    for pk in submitting.values_list("pk", flat=True)[:1000]:
        try:
            status = payout_resolve(payout_id=pk)
            if status is not None:
                counts["resolved"] += 1
            if status == PayoutStatus.PENDING:
                counts["requeue"].append(pk)  # no transfer exists: send the next generation
        except StripeBoundaryError:
            logger.warning("payout %s: Stripe unreachable during the look-up", pk)
    for pk in Payout.objects.filter(status=PayoutStatus.SENT, sent_at__lt=stale).values_list(
        "pk", flat=True
    )[:1000]:
        try:
            payout_confirm(payout_id=pk)
            counts["confirmed"] += 1
        except StripeBoundaryError:
            logger.warning("payout %s: Stripe unreachable while confirming", pk)
    for run in PayoutRun.objects.filter(status=PayoutRunStatus.PAUSED).select_related("cycle"):
        nxt = (
            Payout.objects.filter(run=run, status=PayoutStatus.PENDING)
            .order_by("pk")
            .values_list("amount_minor", flat=True)
            .first()
        )
        try:
            if nxt is None or stripe_client.balance_available(run.cycle.currency) >= nxt:
                counts["resumed"] += payout_run_resume(run_id=run.pk)
        except StripeBoundaryError:
            logger.warning("payout run %s: balance unknown, stays paused", run.pk)
    for run_id in PayoutRun.objects.filter(status=PayoutRunStatus.RUNNING).values_list(
        "pk", flat=True
    ):
        counts["finished"] += payout_run_finish_if_done(run_id=run_id)
    return counts


def payouts_due() -> list[int]:
    """Pending payouts of running runs left untaken for longer than PAYOUT_STUCK_SECONDS after
    they fell due (for the sweeper to enqueue again: their message may have been lost with
    Redis, or a paused run resumed). Ones due just now are in the queue already."""
    return list(
        Payout.objects.filter(
            status=PayoutStatus.PENDING,
            next_attempt_at__lte=timezone.now() - _stuck_after(),
            run__status=PayoutRunStatus.RUNNING,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:10_000]
    )
