"""Disclosure to rights holders: the holder's digest preference, the CSV export of its
disclosures, and the digest email sent when a payout cycle is approved.

The digest goes out once per opted-in holder per approved cycle: a ``DisclosureDigest`` row
(unique per holder and cycle) is written before the email is sent and stamped after it, so a
replayed task sends nothing twice. ``disclosure_digest_enqueue`` is the hook the cycle's
approval calls through ``transaction.on_commit``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organisation, OrganisationKind
from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import PermissionError_
from licensing.importing.report import csv_cell_defused
from licensing.models import (
    DeclarationStatus,
    DeclarationWorkUsage,
    DisclosureDigest,
    DisclosurePreference,
    Share,
)
from licensing.templatetags.money import money_text

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "section",
    "work_id",
    "work_ref",
    "title",
    "media_type",
    "licensee_code",
    "licensee_name",
    "model_name",
    "model_version",
    "period",
    "period_start",
    "period_end",
    "unit",
    "quantity",
    "lines",
    "reserved",
    "currency",
    "amount_minor",
)
CHUNK_ROWS = 2_000
DIGEST_TOP_WORKS = 10


def disclosure_preference_get(*, organisation: Organisation) -> DisclosurePreference:
    """The holder's preference (unsaved defaults when never set)."""
    return DisclosurePreference.objects.filter(organisation=organisation).first() or (
        DisclosurePreference(organisation=organisation)
    )


def disclosure_preference_set(*, caller: Caller, digest_on_cycle: bool) -> DisclosurePreference:
    """Opt the caller's organisation in or out of the per-cycle digest email."""
    caller.require_write()
    organisation = caller.require_organisation()
    if organisation.kind != OrganisationKind.RIGHTS_HOLDER:
        raise PermissionError_(
            "Disclosure digests are for rights holders.", code="not_a_rights_holder"
        )
    with transaction.atomic():
        preference, _ = DisclosurePreference.objects.update_or_create(
            organisation=organisation,
            defaults={
                "digest_on_cycle": bool(digest_on_cycle),
                "updated_by": caller.user,
                "updated_at": timezone.now(),
            },
        )
        audit_record(
            action="disclosure.preference",
            caller=caller,
            obj=preference,
            details={"digest_on_cycle": preference.digest_on_cycle},
        )
    return preference


# -- CSV export ---------------------------------------------------------------------------------


def _usage_rows(holder: Organisation | None) -> Iterator[tuple]:
    shares = Share.objects.all() if holder is None else Share.objects.filter(holder=holder)
    rows = (
        DeclarationWorkUsage.objects.filter(
            work_id__in=shares.values("work_id"),
            declaration__status=DeclarationStatus.ACCEPTED,
        )
        .order_by("work_id", "declaration__period_start", "declaration_id")
        .values_list(
            "work_id",
            "work__work_ref",
            "work__title",
            "work__media_type",
            "declaration__licence__licensee__code",
            "declaration__licence__licensee__name",
            "declaration__model_name",
            "declaration__model_version",
            "declaration__period",
            "declaration__period_start",
            "declaration__period_end",
            "declaration__unit",
            "quantity",
            "lines",
            "reserved",
        )
    )
    for row in rows.iterator(chunk_size=CHUNK_ROWS):
        (work, ref, title, media, code, name, model, version, period, start, end, unit) = row[:12]
        quantity, lines, reserved = row[12:]
        yield (
            "usage", work, ref, title, media, code, name, model, version, period,
            start.isoformat(), end.isoformat(), unit, quantity, lines,
            "yes" if reserved else "no", "", "",
        )  # fmt: skip


def _earning_rows(holder: Organisation | None) -> Iterator[tuple]:
    from licensing.selectors_disclosures import holder_published_statements
    from royalties.models import StatementWorkLine

    rows = (
        StatementWorkLine.objects.filter(
            statement_id__in=holder_published_statements(holder=holder).values("pk"),
            work_id__isnull=False,
        )
        .values("work_id", "statement_id")
        .annotate(quantity=Sum("quantity"), amount_minor=Sum("amount_minor"))
        .order_by("work_id", "statement__cycle__period_start", "statement_id")
        .values_list(
            "work_id",
            "work__work_ref",
            "work__title",
            "work__media_type",
            "statement__cycle__period",
            "statement__cycle__period_start",
            "statement__cycle__period_end",
            "quantity",
            "statement__currency",
            "amount_minor",
        )
    )
    for work, ref, title, media, period, start, end, quantity, currency, amount in rows.iterator(
        chunk_size=CHUNK_ROWS
    ):
        yield (
            "earnings", work, ref, title, media, "", "", "", "", period,
            start.isoformat(), end.isoformat(), "", quantity, "", "", currency, amount,
        )  # fmt: skip


def disclosure_csv_chunks(*, holder: Organisation | None) -> Iterator[str]:
    """The holder's disclosures (``None``, for staff: every holder's) as CSV, streamed: a
    ``usage`` row per (work, accepted declaration) and an ``earnings`` row per (work, published
    statement). Amounts in integer minor units; every cell through the formula-injection guard
    (titles come from users)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for source in (_usage_rows(holder), _earning_rows(holder)):
        for row in source:
            writer.writerow([csv_cell_defused(cell) for cell in row])
            count += 1
            if count % CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


# -- The digest ---------------------------------------------------------------------------------


def disclosure_digest_enqueue(*, cycle_id: int) -> None:
    """The hook for ``cycle_approve``: register with ``transaction.on_commit`` so the task
    runs only once the approval is committed."""
    from licensing.tasks_disclosures import disclosure_digest_cycle_task

    disclosure_digest_cycle_task.delay(cycle_id)


def _recipients(organisation: Organisation) -> list[str]:
    emails = list(
        Membership.objects.filter(organisation=organisation, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    if not emails and organisation.contact_email:
        emails = [organisation.contact_email]
    return emails


def disclosure_digest_cycle(*, cycle_id: int) -> int:
    """Send the digest of an approved cycle to every opted-in holder with a published
    statement in it; returns how many were sent now. Safe to run again."""
    from royalties.models import Cycle, CycleStatus, Statement

    cycle = Cycle.objects.filter(pk=cycle_id).first()
    if cycle is None or cycle.status not in (
        CycleStatus.APPROVED,
        CycleStatus.PAYING,
        CycleStatus.PAID,
        CycleStatus.CLOSED,
    ):
        return 0
    statements = (
        Statement.objects.filter(
            allocation_id=cycle.current_allocation_id,
            published_at__isnull=False,
            holder__disclosure_preference__digest_on_cycle=True,
        )
        .select_related("holder")
        .order_by("holder_id")
    )
    sent = 0
    for statement in statements.iterator(chunk_size=500):
        if disclosure_digest_send(cycle=cycle, statement=statement):
            sent += 1
    return sent


def disclosure_digest_send(*, cycle, statement) -> bool:
    """One holder's digest for one cycle: claim (a row unique per holder and cycle), send,
    stamp. False when it was already sent or the holder has nobody to send it to."""
    holder = statement.holder
    recipients = _recipients(holder)
    if not recipients:
        return False
    try:
        with transaction.atomic():
            digest, created = DisclosureDigest.objects.get_or_create(
                organisation=holder,
                cycle_pk=cycle.pk,
                defaults={"period": cycle.period, "recipients": recipients},
            )
    except IntegrityError:  # claimed by a concurrent run
        return False
    if not created and digest.sent_at is not None:
        return False
    context = disclosure_digest_context(cycle=cycle, statement=statement)
    message = EmailMessage(
        subject=f"Blanket disclosure digest {cycle.period}: where your works went",
        body=render_to_string("licensing/disclosures/digest_email.txt", context),
        to=recipients,
    )
    try:
        message.send()
    except Exception as exc:  # the row keeps the error; the next run tries again
        logger.exception("Disclosure digest %s for %s failed", cycle.pk, holder.pk)
        DisclosureDigest.objects.filter(pk=digest.pk).update(error=str(exc)[:500])
        return False
    DisclosureDigest.objects.filter(pk=digest.pk, sent_at__isnull=True).update(
        sent_at=timezone.now(), recipients=recipients, error=""
    )
    return True


def disclosure_digest_context(*, cycle, statement) -> dict:
    """What the digest says: the cycle's earnings, the top works, and who declared the
    holder's works for periods inside the cycle."""
    from royalties.models import StatementWorkLine

    holder = statement.holder
    currency = statement.currency
    top = (
        StatementWorkLine.objects.filter(statement=statement, work__isnull=False)
        .values("work_id", title=F("work__title"), ref=F("work__work_ref"))
        .annotate(amount_minor=Sum("amount_minor"), quantity=Sum("quantity"))
        .order_by("-amount_minor", "work_id")[:DIGEST_TOP_WORKS]
    )
    licensees = (
        DeclarationWorkUsage.objects.filter(
            work_id__in=Share.objects.filter(holder=holder).values("work_id"),
            declaration__status=DeclarationStatus.ACCEPTED,
            declaration__period_start__gte=cycle.period_start,
            declaration__period_start__lte=cycle.period_end,
        )
        .values(
            name=F("declaration__licence__licensee__name"),
            unit=F("declaration__unit"),
        )
        .annotate(quantity=Sum("quantity"))
        .order_by("-quantity", "name")
    )
    base = settings.BLANKET_BASE_URL.rstrip("/")
    return {
        "holder": holder,
        "cycle": cycle,
        "statement": statement,
        "earned": money_text(statement.earned_minor, currency),
        "payable": money_text(statement.payable_minor, currency),
        "works": [{**row, "amount": money_text(row["amount_minor"], currency)} for row in top],
        "licensees": list(licensees),
        "disclosures_url": base + reverse("disclosures"),
        "statement_url": base + reverse("statement_detail", kwargs={"pk": statement.pk}),
        "settings_url": base + reverse("disclosures") + "#digest-settings",
    }
