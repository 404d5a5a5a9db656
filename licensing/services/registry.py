"""The public registry: is this work licensed, reserved or unknown to the society?

Answers depend on the consent regime. Under opt-in only works enrolled as licensed are
licensed and anything not enrolled is unknown. Under opt-out (extended collective licensing)
everything in scope is licensed unless reserved, so an identifier nobody enrolled is licensed
too, and says so with `registered: false`. A reservation (registered by identifier, URL prefix
or domain, by members or verified non-members) always wins, as does a work reserved by its
holder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd
from django.db import connection

from licensing.identifiers import IdentifierError, normalise, normalise_many
from licensing.models import (
    ConsentRegime,
    IdentifierScheme,
    ReservationKind,
    Use,
)
from licensing.services.society import society_settings_get

MAX_CHECK_PAIRS = 10_000
LICENSED, RESERVED, UNKNOWN, INVALID = "licensed", "reserved", "unknown", "invalid"


@dataclass(frozen=True)
class CheckResult:
    scheme: str
    identifier: str
    normalised: str | None
    status: str
    registered: bool
    reason: str | None = None

    def as_dict(self) -> dict:
        body = {
            "scheme": self.scheme,
            "identifier": self.identifier,
            "normalised": self.normalised,
            "status": self.status,
            "registered": self.registered,
        }
        if self.reason:
            body["reason"] = self.reason
        return body


def url_prefix_candidates(url: str) -> list[str]:
    """Every reservation prefix that could cover `url`: scheme://host/, each path segment
    boundary, and the URL itself. (A normalised URL always has a path.)"""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    candidates = [base + "/"]
    path = parts.path or "/"
    segments = [s for s in path.split("/") if s]
    for i in range(1, len(segments) + 1):
        stem = base + "/" + "/".join(segments[:i])
        candidates += [stem, stem + "/"]
    candidates.append(url)
    return candidates


def domain_candidates(url: str) -> list[str]:
    """a.b.example.com -> [a.b.example.com, b.example.com, example.com, com]."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))] if host else []


def _any(values: list[str]) -> tuple[str, object]:
    """SQL membership test with one parameter, whatever the list's length: thousands of
    separate placeholders cost more to build than the look-up itself."""
    if connection.vendor == "postgresql":
        return "IN (SELECT jsonb_array_elements_text(%s::jsonb))", json.dumps(list(values))
    return "IN (SELECT value FROM json_each(%s))", json.dumps(list(values))


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _registered_consents(
    keys: dict[str, list[str]], *, use: str
) -> dict[tuple[str, str], set[str]]:
    """(scheme, value) -> the effective consents of every work carrying it."""
    column = f"consent_{Use(use).value}"  # validated: one of three known columns
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for scheme, values in keys.items():
        test, param = _any(values)
        rows = _fetch(
            f"SELECT wi.value, w.{column}, c.default_consent "  # noqa: S608 (column validated)  # nosec B608
            "FROM licensing_workidentifier wi "
            "JOIN licensing_work w ON w.id = wi.work_id "
            "JOIN licensing_catalogue c ON c.id = w.catalogue_id "
            f"WHERE wi.scheme = %s AND wi.value {test}",
            [scheme, param],
        )
        for value, own, default in rows:
            found[(scheme, value)].add(own or default)
    return found


_EFFECTIVE = "withdrawn_at IS NULL AND (organisation_id IS NOT NULL OR verified_at IS NOT NULL)"


def _reservation_hits(kind: str, values: list[str], *, use: str, scheme: str = "") -> set[str]:
    if not values:
        return set()
    test, param = _any(values)
    rows = _fetch(
        f"SELECT value, uses FROM licensing_reservation WHERE {_EFFECTIVE} "  # noqa: S608  # nosec B608
        f"AND kind = %s AND scheme = %s AND value {test}",
        [kind, scheme, param],
    )
    hits = set()
    for value, uses in rows:
        uses = json.loads(uses) if isinstance(uses, str) else uses
        if not uses or use in uses:
            hits.add(value)
    return hits


def _reserved_keys(keys: dict[str, list[str]], *, use: str) -> set[tuple[str, str]]:
    """Keys covered by an effective reservation for `use` (identifier, URL prefix, domain)."""
    reserved = {
        (scheme, value)
        for scheme, values in keys.items()
        for value in _reservation_hits(ReservationKind.IDENTIFIER, values, use=use, scheme=scheme)
    }
    urls = keys.get(IdentifierScheme.URL, [])
    if urls:
        by_prefix = {url: url_prefix_candidates(url) for url in urls}
        by_domain = {url: domain_candidates(url) for url in urls}
        hit_prefixes = _reservation_hits(
            ReservationKind.URL_PREFIX,
            sorted({c for cs in by_prefix.values() for c in cs}),
            use=use,
            scheme=IdentifierScheme.URL,
        )
        hit_domains = _reservation_hits(
            ReservationKind.DOMAIN, sorted({c for cs in by_domain.values() for c in cs}), use=use
        )
        for url in urls:
            if hit_prefixes.intersection(by_prefix[url]) or hit_domains.intersection(
                by_domain[url]
            ):
                reserved.add((IdentifierScheme.URL, url))
    return reserved


# Below this many identifiers of one scheme, values are normalised one by one: the vectorised
# path's fixed cost (Arrow, numpy, its Series) exceeds the work for a crawler's typical 100.
# `normalise_many` gives exactly the scalar `normalise` result and reason for every value.
VECTORISE_FROM = 1_000
_ISBN13_WEIGHTS = (1, 3) * 6 + (1,)


def _plain_isbn13(value: str) -> bool:
    """13 ASCII digits starting 978/979 with a right check digit: `normalise` returns such a
    value unchanged, so it needs no other work (most of what crawlers send)."""
    return (
        len(value) == 13
        and value.isascii()
        and value.isdigit()
        and value[:3] in ("978", "979")
        and sum(int(c) * w for c, w in zip(value, _ISBN13_WEIGHTS, strict=True)) % 10 == 0
    )


def _normalise_all(scheme: str, identifiers: list[str]) -> tuple[list, list]:
    """(canonical values, reasons) for `identifiers` of a known scheme; one of each pair is
    None, as in `normalise_many`."""
    if len(identifiers) >= VECTORISE_FROM:
        values, reasons = normalise_many(scheme, pd.Series(identifiers, dtype=object))
        return values.tolist(), reasons.tolist()
    values, reasons = [], []
    for identifier in identifiers:
        if scheme == IdentifierScheme.ISBN and _plain_isbn13(identifier):
            values.append(identifier)
            reasons.append(None)
            continue
        try:
            values.append(normalise(scheme, identifier))
            reasons.append(None)
        except IdentifierError as exc:
            values.append(None)
            reasons.append(exc.reason)
    return values, reasons


def registry_check(
    *, pairs: list[dict], use: str = Use.TRAINING, consent_regime: str | None = None
) -> list[CheckResult]:
    """Status of up to 10,000 `{scheme, identifier}` pairs, in the order given.

    `consent_regime`: the society's, if the caller has already read it (it is read otherwise).
    """
    if use not in Use.values:
        raise ValueError(f"unknown use {use!r}")
    schemes = [str(p.get("scheme", "")).strip().lower() for p in pairs]
    identifiers = [str(p.get("identifier", "")) for p in pairs]
    normalised: list[str | None] = [None] * len(pairs)
    reasons: list[str | None] = [None] * len(pairs)
    rows_by_scheme: dict[str, list[int]] = defaultdict(list)
    for row, scheme in enumerate(schemes):
        rows_by_scheme[scheme].append(row)
    keys: dict[str, list[str]] = {}
    for scheme, rows in rows_by_scheme.items():
        if scheme not in IdentifierScheme.values:
            for row in rows:
                reasons[row] = f"unknown scheme {scheme!r}"
            continue
        values, why = _normalise_all(scheme, [identifiers[row] for row in rows])
        for row, value, reason in zip(rows, values, why, strict=True):
            normalised[row], reasons[row] = value, reason
        valid = {value for value in values if value is not None}
        if valid:
            keys[scheme] = sorted(valid)
    consents = _registered_consents(keys, use=use)
    reserved = _reserved_keys(keys, use=use)
    if consent_regime is None:
        consent_regime = society_settings_get().consent_regime
    opt_out = consent_regime == ConsentRegime.OPT_OUT

    results = []
    for scheme, identifier, value, reason in zip(
        schemes, identifiers, normalised, reasons, strict=True
    ):
        if value is None:
            results.append(CheckResult(scheme, identifier, None, INVALID, False, reason))
            continue
        key = (scheme, value)
        work_consents = consents.get(key, set())
        registered = bool(work_consents)
        if key in reserved or "reserved" in work_consents:
            status = RESERVED
        elif registered or opt_out:
            status = LICENSED
        else:
            status = UNKNOWN
        results.append(CheckResult(scheme, identifier, value, status, registered))
    return results
