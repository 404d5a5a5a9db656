"""Reads behind the machine-readable permissions and the public statistics.

Everything here is read live from the repertoire (works, their identifiers and consent, the
catalogue defaults, reservations) and, for the statistics, from the ledger and the payouts,
so every published document agrees with the database at the moment it is requested.

Rules shared with the registry (`licensing.services.registry`) and declaration matching
(`licensing.matching`): a reservation is in force when it is not withdrawn and belongs to a
member organisation or was verified by email; it covers a URL when it is a reservation of that
URL, a URL-prefix reservation that is a (character) prefix of it, or a domain reservation of
its host or a parent domain. A reservation always wins over a holder's licence.

Feeds stream: works are read in primary-key chunks (keyset pagination, one query for the
works of a chunk and one for their identifiers), never a whole table at once.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Organisation, OrganisationKind
from licensing.models import (
    Catalogue,
    Consent,
    ConsentRegime,
    IdentifierScheme,
    Licence,
    LicenceProduct,
    LicenceStatus,
    Reservation,
    ReservationKind,
    Use,
    Work,
    WorkIdentifier,
)
from licensing.services.society import society_settings_get

FEED_CHUNK = 1_000
LICENSABLE, RESERVED, UNKNOWN, WITHDRAWN, LICENSED = (
    "licensable",
    "reserved",
    "unknown",
    "withdrawn",
    "licensed",
)
USES = tuple(Use.values)


# --- reservations in force -----------------------------------------------------------------


def reservations_in_force() -> QuerySet[Reservation]:
    """Reservations that take effect: not withdrawn; a member's, or verified by email."""
    return Reservation.objects.filter(withdrawn_at__isnull=True).filter(
        Q(organisation__isnull=False) | Q(verified_at__isnull=False)
    )


def _covers(uses: list[str], use: str | None) -> bool:
    """A reservation's `uses` (empty: every use) covers `use` (None: any use)."""
    return not uses or use is None or use in uses


def _json_array(values: list[str]) -> tuple[str, str]:
    """SQL membership test with one parameter, however long the list (see the registry)."""
    if connection.vendor == "postgresql":
        return "IN (SELECT jsonb_array_elements_text(%s::jsonb))", json.dumps(values)
    return "IN (SELECT value FROM json_each(%s))", json.dumps(values)


def _reservations_on(kind: str, values: list[str], *, scheme: str = "") -> list[dict]:
    """Reservations in force of `kind` whose value is one of `values`, with the holder code."""
    if not values:
        return []
    test, param = _json_array(sorted(set(values)))
    sql = (
        "SELECT r.id, r.kind, r.scheme, r.value, r.uses, o.code "  # noqa: S608  # nosec B608 - constant; values are params
        "FROM licensing_reservation r "
        "LEFT JOIN accounts_organisation o ON o.id = r.organisation_id "
        "WHERE r.withdrawn_at IS NULL "
        "AND (r.organisation_id IS NOT NULL OR r.verified_at IS NOT NULL) "
        f"AND r.kind = %s AND r.scheme = %s AND r.value {test} ORDER BY r.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [kind, scheme, param])
        rows = cursor.fetchall()
    found = []
    for pk, kind_, scheme_, value, uses, code in rows:
        uses = json.loads(uses) if isinstance(uses, str) else (uses or [])
        found.append(
            {
                "id": pk,
                "kind": kind_,
                "scheme": scheme_,
                "value": value,
                "uses": uses,
                "holder": code,
            }
        )
    return found


_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#]+")


def url_prefixes(url: str) -> list[str]:
    """Every string a URL-prefix reservation covering the normalised `url` could hold: each
    character prefix from the end of the origin (scheme://host[:port]) to the whole URL."""
    origin = _ORIGIN.match(url)
    if not origin:
        return [url]
    return [url[:end] for end in range(len(origin.group(0)), len(url) + 1)]


def parent_domains(host: str) -> list[str]:
    """a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]."""
    labels = host.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels))] if host else []


def url_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _effective(own: str, default: str) -> str:
    return own or default


def _consent_q(consent: str, uses: tuple[str, ...] = USES) -> Q:
    """Works whose effective consent (own, else the catalogue's default) is `consent` for any
    of `uses`."""
    q = Q()
    for use in uses:
        q |= Q(**{f"consent_{use}": consent}) | Q(
            **{f"consent_{use}": ""}, catalogue__default_consent=consent
        )
    return q


# --- look-up of URLs and domains -----------------------------------------------------------


def _url_work_rows(urls: list[str], use: str) -> dict[str, list[dict]]:
    """url -> the works carrying it as a URL identifier, with their effective consent."""
    found: dict[str, list[dict]] = defaultdict(list)
    for start in range(0, len(urls), 500):
        rows = (
            WorkIdentifier.objects.filter(
                scheme=IdentifierScheme.URL, value__in=urls[start : start + 500]
            )
            .order_by("work_id")
            .values_list(
                "value",
                "work_id",
                f"work__consent_{use}",
                "work__catalogue__default_consent",
                "work__catalogue__owner__code",
            )
        )
        for value, work_id, own, default, code in rows:
            found[value].append(
                {"work_id": work_id, "consent": _effective(own, default), "holder": code}
            )
    return found


def _decided(status: str, reason: str, holders: list[str | None], **extra) -> dict:
    codes = sorted({h for h in holders if h})
    return {
        "status": status,
        "reason": reason,
        "holder": codes[0] if len(codes) == 1 else None,
        "holders": codes,
        **extra,
    }


def _reservation_reason(reservation: dict) -> str:
    kind, value = reservation["kind"], reservation["value"]
    target = {
        ReservationKind.IDENTIFIER: f"the identifier {reservation['scheme']}:{value}",
        ReservationKind.URL_PREFIX: f"the URL prefix {value}",
        ReservationKind.DOMAIN: f"the domain {value}",
    }[kind]
    who = (
        f"rights holder {reservation['holder']}"
        if reservation["holder"]
        else "a rights holder (verified by email)"
    )
    return f"Reserved by {who}: a reservation of {target}."


def permission_lookup_urls(*, urls: list[str], use: str = Use.TRAINING) -> list[dict]:
    """For each normalised URL: licensable, reserved or unknown for `use`, why, and whose."""
    opt_out = society_settings_get().consent_regime == ConsentRegime.OPT_OUT
    works = _url_work_rows(urls, use)
    exact = _reservations_on(ReservationKind.IDENTIFIER, urls, scheme=IdentifierScheme.URL)
    prefixes = _reservations_on(
        ReservationKind.URL_PREFIX,
        [p for url in urls for p in url_prefixes(url)],
        scheme=IdentifierScheme.URL,
    )
    domains = _reservations_on(
        ReservationKind.DOMAIN, [d for url in urls for d in parent_domains(url_host(url))]
    )
    by_value: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for reservation in (*exact, *prefixes, *domains):
        if _covers(reservation["uses"], use):
            by_value[(reservation["kind"], reservation["value"])].append(reservation)

    results = []
    for url in urls:
        covering = list(by_value.get((ReservationKind.IDENTIFIER, url), []))
        # The longest prefix first, then the most specific domain.
        for prefix in reversed(url_prefixes(url)):
            covering += by_value.get((ReservationKind.URL_PREFIX, prefix), [])
        for domain in parent_domains(url_host(url)):
            covering += by_value.get((ReservationKind.DOMAIN, domain), [])
        url_works = works.get(url, [])
        registered = bool(url_works)
        reserved_works = [w for w in url_works if w["consent"] == Consent.RESERVED]
        licensed_works = [w for w in url_works if w["consent"] == Consent.LICENSED]
        if covering:
            first = covering[0]
            results.append(
                _decided(
                    RESERVED,
                    _reservation_reason(first),
                    [first["holder"]],
                    registered=registered,
                )
            )
        elif reserved_works:
            results.append(
                _decided(
                    RESERVED,
                    "Reserved by its rights holder in the society's repertoire.",
                    [w["holder"] for w in reserved_works],
                    registered=True,
                )
            )
        elif licensed_works:
            results.append(
                _decided(
                    LICENSABLE,
                    "Licensed for this use by its rights holder through the society.",
                    [w["holder"] for w in licensed_works],
                    registered=True,
                )
            )
        elif opt_out:
            results.append(
                _decided(
                    LICENSABLE,
                    "Not reserved: the society licenses every work in scope unless its holder "
                    "reserved it (opt-out, extended collective licensing).",
                    [],
                    registered=False,
                )
            )
        else:
            results.append(
                _decided(
                    UNKNOWN,
                    "Not in the society's repertoire and not reserved (opt-in: only enrolled "
                    "works are licensed).",
                    [],
                    registered=False,
                )
            )
    return results


def _host_url_q(domain: str) -> Q:
    """URL identifiers whose host is exactly `domain` (any scheme, with or without a port)."""
    q = Q()
    for scheme in ("http", "https"):
        q |= Q(value__startswith=f"{scheme}://{domain}/") | Q(
            value__startswith=f"{scheme}://{domain}:"
        )
    return q


def _url_prefix_reservations_on_host(domain: str) -> list[dict]:
    rows = (
        reservations_in_force()
        .filter(kind=ReservationKind.URL_PREFIX)
        .filter(_host_url_q(domain))
        .order_by("value", "pk")
        .values("pk", "value", "uses", "organisation__code")
    )
    return [
        {
            "id": r["pk"],
            "kind": ReservationKind.URL_PREFIX,
            "scheme": IdentifierScheme.URL,
            "value": r["value"],
            "uses": r["uses"] or [],
            "holder": r["organisation__code"],
        }
        for r in rows
        if url_host(r["value"]) == domain
    ]


def _is_root(url: str) -> bool:
    return urlsplit(url).path in ("", "/") and not urlsplit(url).query


def domain_works(domain: str, *, use: str | None) -> list[dict]:
    """The works carrying a URL identifier on host `domain`, with their path, effective
    consent for `use` (None: reserved if reserved for any use, else licensed if licensed for
    any) and holder code, one row per (work, URL)."""
    fields = [f"work__consent_{u}" for u in USES]
    rows = (
        WorkIdentifier.objects.filter(scheme=IdentifierScheme.URL)
        .filter(_host_url_q(domain))
        .order_by("value", "work_id")
        .values_list("value", "work_id", "work__catalogue__default_consent", *fields)
    )
    found = []
    work_ids = set()
    for value, work_id, default, *own in rows:
        if url_host(value) != domain:
            continue
        consents = dict(zip(USES, (_effective(o, default) for o in own), strict=True))
        if use is not None:
            consent = consents[use]
        elif Consent.RESERVED in consents.values():
            consent = Consent.RESERVED
        else:
            consent = Consent.LICENSED
        parts = urlsplit(value)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        found.append({"url": value, "path": path, "work_id": work_id, "consent": consent})
        work_ids.add(work_id)
    codes = dict(Work.objects.filter(pk__in=work_ids).values_list("pk", "catalogue__owner__code"))
    for row in found:
        row["holder"] = codes.get(row["work_id"])
    return found


@dataclass
class DomainPermissions:
    """What the registry holds about one host, for one use (None: any use)."""

    domain: str
    use: str | None
    opt_out: bool
    whole: list[dict] = field(default_factory=list)  # reservations covering the whole host
    prefixes: list[dict] = field(default_factory=list)  # partial URL-prefix reservations
    works: list[dict] = field(default_factory=list)

    @property
    def reserved_works(self) -> list[dict]:
        return [w for w in self.works if w["consent"] == Consent.RESERVED]

    def licensed_works(self) -> list[dict]:
        """Licensed works not covered by a partial reservation (a reservation wins)."""
        return [
            w
            for w in self.works
            if w["consent"] == Consent.LICENSED
            and not any(w["url"].startswith(p["value"]) for p in self.prefixes)
        ]


def domain_permissions(*, domain: str, use: str | None = Use.TRAINING) -> DomainPermissions:
    opt_out = society_settings_get().consent_regime == ConsentRegime.OPT_OUT
    found = DomainPermissions(domain=domain, use=use, opt_out=opt_out)
    for reservation in _reservations_on(ReservationKind.DOMAIN, parent_domains(domain)):
        if _covers(reservation["uses"], use):
            found.whole.append(reservation)
    for reservation in _url_prefix_reservations_on_host(domain):
        if not _covers(reservation["uses"], use):
            continue
        # A prefix of the bare origin or of its root covers the whole host.
        if _is_root(reservation["value"]) or not urlsplit(reservation["value"]).path:
            found.whole.append(reservation)
        else:
            found.prefixes.append(reservation)
    found.works = domain_works(domain, use=use)
    return found


def permission_lookup_domains(*, domains: list[str], use: str = Use.TRAINING) -> list[dict]:
    """For each domain name: reserved as a whole, licensable (some or all of it) or unknown,
    why and whose, with the counts behind the answer."""
    results = []
    for domain in domains:
        found = domain_permissions(domain=domain, use=use)
        licensed = found.licensed_works()
        counts = {
            "works_licensed": len({w["work_id"] for w in licensed}),
            "works_reserved": len({w["work_id"] for w in found.reserved_works}),
            "url_prefixes_reserved": len(found.prefixes),
        }
        if found.whole:
            first = found.whole[0]
            results.append(
                _decided(RESERVED, _reservation_reason(first), [first["holder"]], **counts)
            )
        elif licensed:
            results.append(
                _decided(
                    LICENSABLE,
                    f"{counts['works_licensed']} work(s) on this domain are licensed for this "
                    f"use by their holders through the society; {counts['works_reserved']} "
                    f"reserved, {counts['url_prefixes_reserved']} URL prefix(es) reserved.",
                    [w["holder"] for w in licensed],
                    **counts,
                )
            )
        elif found.opt_out:
            results.append(
                _decided(
                    LICENSABLE,
                    "Not reserved as a whole: the society licenses every work in scope unless "
                    f"reserved (opt-out); {counts['works_reserved']} work(s) and "
                    f"{counts['url_prefixes_reserved']} URL prefix(es) on it are reserved.",
                    [w["holder"] for w in found.reserved_works]
                    + [p["holder"] for p in found.prefixes],
                    **counts,
                )
            )
        else:
            results.append(
                _decided(
                    UNKNOWN,
                    "Nothing on this domain is licensed through the society (opt-in); "
                    f"{counts['works_reserved']} work(s) and {counts['url_prefixes_reserved']} "
                    "URL prefix(es) on it are reserved.",
                    [w["holder"] for w in found.reserved_works]
                    + [p["holder"] for p in found.prefixes],
                    **counts,
                )
            )
    return results


# --- downloadable lists ----------------------------------------------------------------------


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _uses_text(uses: list[str]) -> list[str]:
    return sorted(uses) if uses else list(USES)


def _since_utc(since: datetime | None) -> datetime | None:
    """`since` in UTC, the same moment. PostgreSQL refuses a UTC offset past 15:59 (ISO 8601
    and Python allow up to 23:59: "time zone displacement out of range"), and a moment before
    year 1 or after 9999 in UTC has no Python datetime: those are clamped to the first or the
    last one, which select the same rows (every row, or none)."""
    if since is None:
        return None
    try:
        return since.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if since.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


def reservation_entries_reservations(*, since: datetime | None) -> Iterator[dict]:
    """Registered reservations: all in force; or, with `since`, those made, verified or
    withdrawn at or after it (withdrawn ones as tombstones, unless they took effect after
    `since` too: a mirror that synced at `since` never had them)."""
    since = _since_utc(since)
    rows = Reservation.objects.filter(
        Q(organisation__isnull=False) | Q(verified_at__isnull=False)
    ).annotate(
        effective_at=Coalesce("verified_at", "created_at"),
        changed_at=Greatest(
            "created_at",
            Coalesce("verified_at", "created_at"),
            Coalesce("withdrawn_at", "created_at"),
        ),
    )
    if since is None:
        rows = rows.filter(withdrawn_at__isnull=True)
    else:
        rows = rows.filter(changed_at__gte=since).exclude(
            withdrawn_at__isnull=False, effective_at__gte=since
        )
    columns = ("pk", "kind", "scheme", "value", "uses", "organisation__code", "withdrawn_at")
    last = 0
    while True:
        chunk = list(
            rows.filter(pk__gt=last).order_by("pk").values(*columns, "changed_at")[:FEED_CHUNK]
        )
        if not chunk:
            return
        for r in chunk:
            yield {
                "id": f"reservation:{r['pk']}",
                "status": WITHDRAWN if r["withdrawn_at"] else RESERVED,
                "source": "reservation",
                "kind": r["kind"],
                "scheme": r["scheme"],
                "value": r["value"],
                "identifiers": [],
                "uses": _uses_text(r["uses"] or []),
                "holder": r["organisation__code"] or "",
                "changed_at": _iso(r["changed_at"]),
            }
        last = chunk[-1]["pk"]


def _works_changed_since(works: QuerySet[Work], since: datetime) -> QuerySet[Work]:
    """Works changed at or after `since`: their own row, or their catalogue's default consent
    when one of their uses inherits it. The few changed catalogues are read first, so the
    database can use the index on `updated_at` and the one on `catalogue_id` (an OR across
    the join would scan every work)."""
    changed = Q(updated_at__gte=since)
    catalogues = list(Catalogue.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    if catalogues:
        inherits = Q(consent_training="") | Q(consent_fine_tuning="") | Q(consent_rag="")
        changed |= Q(catalogue_id__in=catalogues) & inherits
    return works.filter(changed)


def _work_chunks(works: QuerySet[Work]) -> Iterator[tuple[list[dict], dict[int, list[str]]]]:
    """(works, work id -> ["scheme:value", ...]) by primary-key chunks."""
    columns = (
        "pk",
        "work_ref",
        "title",
        "media_type",
        "created_at",
        "updated_at",
        "consent_training",
        "consent_fine_tuning",
        "consent_rag",
        "catalogue__default_consent",
        "catalogue__updated_at",
        "catalogue__owner__code",
    )
    last = 0
    while True:
        chunk = list(works.filter(pk__gt=last).order_by("pk").values(*columns)[:FEED_CHUNK])
        if not chunk:
            return
        identifiers: dict[int, list[str]] = defaultdict(list)
        rows = (
            WorkIdentifier.objects.filter(work_id__in=[w["pk"] for w in chunk])
            .order_by("work_id", "scheme", "value")
            .values_list("work_id", "scheme", "value")
        )
        for work_id, scheme, value in rows:
            identifiers[work_id].append(f"{scheme}:{value}")
        yield chunk, identifiers
        last = chunk[-1]["pk"]


def _work_consents(row: dict) -> dict[str, str]:
    default = row["catalogue__default_consent"]
    return {use: _effective(row[f"consent_{use}"], default) for use in USES}


def _work_changed_at(row: dict) -> datetime:
    inherits = any(not row[f"consent_{use}"] for use in USES)
    if inherits and row["catalogue__updated_at"] > row["updated_at"]:
        return row["catalogue__updated_at"]
    return row["updated_at"]


def _work_entries(*, consent: str, since: datetime | None) -> Iterator[tuple[dict, dict, list]]:
    """(row, consents, identifiers) of works in the list of `consent` (any use), or with
    `since` of works changed since then (in the list now, or tombstones)."""
    since = _since_utc(since)
    works = Work.objects.all()
    if since is None:
        works = works.filter(_consent_q(consent))
    else:
        # A work created after `since` and not in the list now needs no tombstone: a mirror
        # that synced at `since` never had it.
        works = _works_changed_since(works, since).exclude(
            ~_consent_q(consent), created_at__gte=since
        )
    for chunk, identifiers in _work_chunks(works):
        for row in chunk:
            yield row, _work_consents(row), identifiers.get(row["pk"], [])


def reservation_entries_works(*, since: datetime | None) -> Iterator[dict]:
    """Works their holders reserved for at least one use (with `since`: changed works, the
    ones no longer reserved as tombstones)."""
    for row, consents, identifiers in _work_entries(consent=Consent.RESERVED, since=since):
        uses = [u for u, c in consents.items() if c == Consent.RESERVED]
        yield {
            "id": f"work:{row['pk']}",
            "status": RESERVED if uses else WITHDRAWN,
            "source": "work",
            "kind": "work",
            "scheme": "",
            "value": "",
            "identifiers": identifiers,
            "uses": uses,
            "holder": row["catalogue__owner__code"],
            "changed_at": _iso(_work_changed_at(row)),
        }


def reservation_entries(*, since: datetime | None = None) -> Iterator[dict]:
    """The reservation list: registered reservations, then reserved works."""
    yield from reservation_entries_reservations(since=since)
    yield from reservation_entries_works(since=since)


def repertoire_entries(*, since: datetime | None = None) -> Iterator[dict]:
    """The licensed repertoire: works licensed by their holders for at least one use (with
    `since`: changed works, the ones no longer licensed for any use as tombstones)."""
    for row, consents, identifiers in _work_entries(consent=Consent.LICENSED, since=since):
        uses = [u for u, c in consents.items() if c == Consent.LICENSED]
        yield {
            "id": f"work:{row['pk']}",
            "status": LICENSED if uses else WITHDRAWN,
            "work_ref": row["work_ref"],
            "title": row["title"],
            "media_type": row["media_type"],
            "identifiers": identifiers,
            "uses": uses,
            "holder": row["catalogue__owner__code"],
            "changed_at": _iso(_work_changed_at(row)),
        }


# --- public statistics -----------------------------------------------------------------------


def _licence_revenue_by_currency() -> dict[str, int]:
    """Licence money collected, per currency, from the ledger: credits to deferred revenue by
    licence payments, less the debits of refunds."""
    from royalties.models import Posting

    rows = (
        Posting.objects.filter(
            account__code__startswith="deferred_revenue:",
            entry__source_type__in=("payment", "refund"),
        )
        .values("currency")
        .annotate(total=Sum("amount_minor"))
    )
    return {r["currency"]: -int(r["total"] or 0) for r in rows}


def _paid_out_by_currency() -> dict[str, int]:
    """Royalties paid out, per currency: payouts paid (or paid then reversed), net of the
    amounts reversed."""
    from royalties.models import Payout, PayoutStatus

    rows = (
        Payout.objects.filter(status__in=(PayoutStatus.PAID, PayoutStatus.REVERSED))
        .values("currency")
        .annotate(total=Sum(F("amount_minor") - F("amount_reversed_minor")))
    )
    return {r["currency"]: int(r["total"] or 0) for r in rows}


def public_stats() -> dict:
    """The public statistics, all live. Money per currency, integer minor units."""
    works = Work.objects.count()
    reserved = Work.objects.filter(_consent_q(Consent.RESERVED, (Use.TRAINING,))).count()
    collected = _licence_revenue_by_currency()
    paid = _paid_out_by_currency()
    currencies = sorted(set(collected) | set(paid))
    by_kind = dict(
        Organisation.objects.values_list("kind").annotate(n=Count("pk")).values_list("kind", "n")
    )
    share_bp = (reserved * 10_000 // works) if works else 0
    return {
        "generated_at": timezone.now().isoformat(),
        "consent_regime": society_settings_get().consent_regime,
        "works": works,
        "works_reserved": reserved,
        "works_licensed": works - reserved,
        "reserved_share_bp": share_bp,
        "reserved_share_percent": f"{share_bp // 100}.{share_bp % 100:02d}",
        "reservations": reservations_in_force().count(),
        "catalogues": Catalogue.objects.count(),
        "rights_holders": by_kind.get(OrganisationKind.RIGHTS_HOLDER, 0),
        "licensees": by_kind.get(OrganisationKind.LICENSEE, 0),
        "licensees_licensed": Licence.objects.filter(status=LicenceStatus.ACTIVE)
        .values("licensee")
        .distinct()
        .count(),
        "products": LicenceProduct.objects.filter(active=True).count(),
        "money": [
            {
                "currency": currency,
                "collected_minor": collected.get(currency, 0),
                "paid_out_minor": paid.get(currency, 0),
            }
            for currency in currencies
        ],
    }
