"""The public registry: is this work licensed, reserved or unknown to the society?

Answers depend on the consent regime. Under opt-in only works enrolled as licensed are
licensed and anything not enrolled is unknown. Under opt-out (extended collective licensing)
everything in scope is licensed unless reserved, so an identifier nobody enrolled is licensed
too, and says so with `registered: false`. A reservation (registered by identifier, URL prefix
or domain, by members or verified non-members) always wins, as does a work reserved by its
holder.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd
from django.db.models import F, Q

from licensing.identifiers import normalise_many
from licensing.models import (
    ConsentRegime,
    IdentifierScheme,
    Reservation,
    ReservationKind,
    Use,
    WorkIdentifier,
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


def _registered_consents(
    keys: dict[str, list[str]], *, use: str
) -> dict[tuple[str, str], set[str]]:
    """(scheme, value) -> the effective consents of every work carrying it."""
    consent_field = f"work__consent_{use}"
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for scheme, values in keys.items():
        for start in range(0, len(values), 2_000):
            rows = (
                WorkIdentifier.objects.filter(scheme=scheme, value__in=values[start : start + 2_000])
                .annotate(
                    own=F(consent_field), default=F("work__catalogue__default_consent")
                )
                .values_list("value", "own", "default")
            )
            for value, own, default in rows:
                found[(scheme, value)].add(own or default)
    return found


def _reserved_keys(
    keys: dict[str, list[str]], *, use: str
) -> set[tuple[str, str]]:
    """Keys covered by an effective reservation for `use` (identifier, URL prefix, domain)."""
    effective = Q(withdrawn_at__isnull=True) & (
        Q(organisation__isnull=False) | Q(verified_at__isnull=False)
    )
    reserved: set[tuple[str, str]] = set()

    def applies(uses: list[str]) -> bool:
        return not uses or use in uses

    for scheme, values in keys.items():
        rows = Reservation.objects.filter(
            effective, kind=ReservationKind.IDENTIFIER, scheme=scheme, value__in=values
        ).values_list("value", "uses")
        reserved |= {(scheme, value) for value, uses in rows if applies(uses)}

    urls = keys.get(IdentifierScheme.URL, [])
    if urls:
        by_prefix = {url: url_prefix_candidates(url) for url in urls}
        by_domain = {url: domain_candidates(url) for url in urls}
        prefixes = {c for cs in by_prefix.values() for c in cs}
        domains = {c for cs in by_domain.values() for c in cs}
        hit_prefixes = {
            value
            for value, uses in Reservation.objects.filter(
                effective, kind=ReservationKind.URL_PREFIX, value__in=prefixes
            ).values_list("value", "uses")
            if applies(uses)
        }
        hit_domains = {
            value
            for value, uses in Reservation.objects.filter(
                effective, kind=ReservationKind.DOMAIN, value__in=domains
            ).values_list("value", "uses")
            if applies(uses)
        }
        for url in urls:
            if hit_prefixes.intersection(by_prefix[url]) or hit_domains.intersection(
                by_domain[url]
            ):
                reserved.add((IdentifierScheme.URL, url))
    return reserved


def registry_check(*, pairs: list[dict], use: str = Use.TRAINING) -> list[CheckResult]:
    """Status of up to 10,000 `{scheme, identifier}` pairs, in the order given."""
    if use not in Use.values:
        raise ValueError(f"unknown use {use!r}")
    frame = pd.DataFrame(
        {
            "scheme": [str(p.get("scheme", "")).strip().lower() for p in pairs],
            "identifier": [str(p.get("identifier", "")) for p in pairs],
        }
    )
    frame["normalised"] = None
    frame["reason"] = None
    for scheme, group in frame.groupby("scheme", sort=False):
        if scheme not in IdentifierScheme.values:
            frame.loc[group.index, "reason"] = f"unknown scheme {scheme!r}"
            continue
        values, reasons = normalise_many(scheme, group["identifier"])
        frame.loc[group.index, "normalised"] = values
        frame.loc[group.index, "reason"] = reasons

    valid = frame[frame["normalised"].notna()]
    keys = {
        scheme: sorted(set(group["normalised"]))
        for scheme, group in valid.groupby("scheme", sort=False)
    }
    consents = _registered_consents(keys, use=use)
    reserved = _reserved_keys(keys, use=use)
    opt_out = society_settings_get().consent_regime == ConsentRegime.OPT_OUT

    results = []
    for scheme, identifier, value, reason in frame[
        ["scheme", "identifier", "normalised", "reason"]
    ].itertuples(index=False):
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
