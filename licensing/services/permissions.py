"""Machine-readable permissions, published from the repertoire: the URL and domain look-up,
the downloadable reservation and licensed-repertoire lists (CSV, JSON Lines, incremental), a
TDMRep rules file per domain, the society's RSL licence and robots.txt snippets for members.

Nothing is stored or cached: every document is built from the database when it is asked
for (the reads are in `licensing.selectors_permissions`), so a reservation made or withdrawn
shows in every output on the very next request.

Standards followed:
- W3C TDMRep (Community Group Final Report, 2024): ``/.well-known/tdmrep.json`` is a JSON
  array of rules ``{"location", "tdm-reservation": 0|1, "tdm-policy"?}``; ``tdm-policy`` is
  only meaningful with ``tdm-reservation: 1``. Works licensed through the society are
  reserved from the free TDM exception *and* licensable, so their rule carries the policy
  (the society's RSL licence); works their holders reserved carry no policy (no licence is
  on offer). Rules are listed most specific first.
- RSL 1.0 (``https://rslstandard.org/rsl``): ``<rsl><content url server><license>`` with
  ``<permits type="usage">`` (ai-train, ai-input...), ``<payment type>`` with ``<standard>``
  (the rate card) and ``<amount currency>`` (ISO 4217), ``<terms>``.
- robots.txt (RFC 9309, ``*`` and ``$``) with the ``License:`` directive RSL defines.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr  # nosec B406 - to write XML only; nothing is parsed

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from licensing import selectors_permissions as sp
from licensing.errors import LicensingError
from licensing.identifiers import IdentifierError, normalise
from licensing.importing.report import csv_cell_defused
from licensing.models import IdentifierScheme, LicenceProduct, Use
from licensing.services.reservations import reservation_target_clean
from licensing.services.society import society_settings_get
from licensing.templatetags.money import ZERO_DECIMAL

MAX_LOOKUP_ITEMS = 1_000
RSL_NAMESPACE = "https://rslstandard.org/rsl"

# Blanket uses -> RSL 1.0 usage vocabulary (fine-tuning is training; RAG feeds the model's
# input at inference time).
RSL_USAGE = {Use.TRAINING: "ai-train", Use.FINE_TUNING: "ai-train", Use.RAG: "ai-input"}

# robots.txt user agents (see the reference notes, 6.2). Training crawlers and the control
# tokens for training; search, retrieval and user-triggered agents (what RAG uses).
TRAINING_AGENTS = (
    "GPTBot",
    "ClaudeBot",
    "Google-Extended",
    "Applebot-Extended",
    "CCBot",
    "Bytespider",
    "Meta-ExternalAgent",
)
RETRIEVAL_AGENTS = (
    "OAI-SearchBot",
    "Claude-SearchBot",
    "PerplexityBot",
    "ChatGPT-User",
    "Claude-User",
    "Perplexity-User",
)


# --- input ----------------------------------------------------------------------------------


def _invalid(field: str, message: str, reasons) -> LicensingError:
    return LicensingError(message, code="invalid", details={field: reasons})


def permissions_use_clean(value: str | None) -> str:
    use = (value or Use.TRAINING).strip()
    if use not in Use.values:
        raise _invalid("use", f"Unknown use {use!r}.", [f"One of {', '.join(Use.values)}."])
    return use


def permissions_since_parse(value: str | None) -> datetime | None:
    """`?since=` as an aware datetime: ISO 8601 (a date means its midnight UTC; no offset
    means UTC), or None when absent. Anything else is a 400 naming the field."""
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+")  # a `+` in a query string arrives as a space
    moment = None
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise _invalid(
            "since",
            f"since={value!r} is not an ISO 8601 timestamp.",
            ["An ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z or 2026-01-31."],
        )
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def permissions_domain_clean(value: str | None, *, field: str = "domain") -> str:
    """A domain name (or a URL, whose host is taken), lower-cased and IDNA-encoded."""
    if not value or not str(value).strip():
        raise _invalid(field, f"{field} is required.", ["A domain name, e.g. example.com."])
    try:
        _, domain = reservation_target_clean(kind="domain", value=str(value))
    except LicensingError:
        raise _invalid(
            field, f"{value!r} is not a domain name.", ["A domain name, e.g. example.com."]
        ) from None
    return domain


def permissions_url_clean(value: str, *, field: str = "url") -> str:
    try:
        return normalise(IdentifierScheme.URL, value)
    except IdentifierError as exc:
        raise _invalid(
            field, f"{value!r} is not a valid URL: {exc.reason}.", [exc.reason]
        ) from None


def permissions_lookup(
    *, urls: Iterable[str] = (), domains: Iterable[str] = (), use: str | None = None
) -> dict:
    """Look up URLs and domains (at most 1,000 together): each licensable, reserved or
    unknown, with the reason and the holder. Bad input is one error listing every bad item
    (field, index, reason), and nothing is looked up."""
    use = permissions_use_clean(use)
    urls, domains = list(urls), list(domains)
    if not urls and not domains:
        raise LicensingError(
            "Give at least one url or domain.",
            code="invalid",
            details={"urls": ["Empty."], "domains": ["Empty."]},
        )
    if len(urls) + len(domains) > MAX_LOOKUP_ITEMS:
        raise LicensingError(
            f"At most {MAX_LOOKUP_ITEMS} URLs and domains per call; got "
            f"{len(urls) + len(domains)}.",
            code="too_many",
            details={"urls": [f"{len(urls)} items."], "domains": [f"{len(domains)} items."]},
        )
    errors: dict[str, dict[str, list[str]]] = {}
    clean_urls, clean_domains = [], []
    for index, url in enumerate(urls):
        try:
            if not isinstance(url, str):
                raise _invalid("urls", "Not text.", ["value must be text"])
            clean_urls.append(permissions_url_clean(url))
        except LicensingError as exc:
            errors.setdefault("urls", {})[str(index)] = next(iter(exc.details.values()))
    for index, domain in enumerate(domains):
        try:
            if not isinstance(domain, str):
                raise _invalid("domains", "Not text.", ["value must be text"])
            clean_domains.append(permissions_domain_clean(domain))
        except LicensingError as exc:
            errors.setdefault("domains", {})[str(index)] = next(iter(exc.details.values()))
    if errors:
        count = sum(len(v) for v in errors.values())
        raise LicensingError(
            f"{count} item(s) are not valid URLs or domain names; nothing was looked up.",
            code="invalid",
            details=errors,
        )
    url_results = sp.permission_lookup_urls(urls=clean_urls, use=use)
    domain_results = sp.permission_lookup_domains(domains=clean_domains, use=use)
    return {
        "use": use,
        "consent_regime": society_settings_get().consent_regime,
        "results": [
            {"query": q, "type": "url", "normalised": n, **r}
            for q, n, r in zip(urls, clean_urls, url_results, strict=True)
        ]
        + [
            {"query": q, "type": "domain", "normalised": n, **r}
            for q, n, r in zip(domains, clean_domains, domain_results, strict=True)
        ],
    }


# --- downloadable lists -----------------------------------------------------------------------

RESERVATION_LIST_COLUMNS = (
    "id",
    "status",
    "source",
    "kind",
    "scheme",
    "value",
    "identifiers",
    "uses",
    "holder",
    "changed_at",
)
REPERTOIRE_LIST_COLUMNS = (
    "id",
    "status",
    "work_ref",
    "title",
    "media_type",
    "identifiers",
    "uses",
    "holder",
    "changed_at",
)
LISTS = {
    "reservations": (sp.reservation_entries, RESERVATION_LIST_COLUMNS),
    "repertoire": (sp.repertoire_entries, REPERTOIRE_LIST_COLUMNS),
}
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def permissions_list_entries(*, name: str, since: datetime | None = None) -> Iterator[dict]:
    entries, _ = LISTS[name]
    return entries(since=since)


def _csv_cell(value) -> str:
    if isinstance(value, list):
        value = " ".join(value)
    return csv_cell_defused(str(value))


def permissions_list_stream(*, name: str, fmt: str, since: datetime | None = None) -> Iterator[str]:
    """The list `name` (reservations | repertoire) as CSV or JSON Lines, in pieces of about
    64 kB. In CSV, lists (identifiers, uses) are space-separated."""
    entries, columns = LISTS[name]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(columns)
    for entry in entries(since=since):
        if writer is not None:
            writer.writerow([_csv_cell(entry[c]) for c in columns])
        else:
            buffer.write(json.dumps({c: entry[c] for c in columns}, ensure_ascii=False) + "\n")
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- absolute URLs ------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.BLANKET_BASE_URL.rstrip("/") + path


def rsl_licence_url() -> str:
    return _absolute(reverse("licence_rsl"))


# --- TDMRep -------------------------------------------------------------------------------------


def _path_pattern(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return path + ("?" + parts.query if parts.query else "")


def tdmrep_rules(*, domain: str, use: str = Use.TRAINING) -> list[dict]:
    """The TDMRep rules of `domain`: what the society's registry says about it, most specific
    first. Empty when the registry knows nothing about the domain (under opt-in)."""
    found = sp.domain_permissions(domain=domain, use=use)
    policy = rsl_licence_url()
    if found.whole:
        return [{"location": "/*", "tdm-reservation": 1}]
    rules: list[dict] = []
    seen: set[str] = set()

    def add(location: str, reserved_only: bool) -> None:
        if location in seen:
            return
        seen.add(location)
        rule = {"location": location, "tdm-reservation": 1}
        if not reserved_only:
            rule["tdm-policy"] = policy
        rules.append(rule)

    for work in found.reserved_works:
        add(_path_pattern(work["url"]), True)
    for prefix in found.prefixes:
        add(_path_pattern(prefix["value"]) + "*", True)
    for work in found.licensed_works():
        add(_path_pattern(work["url"]), False)
    if found.opt_out:
        add("/*", False)
    return rules


# --- robots.txt ---------------------------------------------------------------------------------


def _disallows(found: sp.DomainPermissions) -> list[str]:
    if found.whole:
        return ["/"]
    lines = [_path_pattern(p["value"]) for p in found.prefixes]
    lines += [_path_pattern(w["url"]) + "$" for w in found.reserved_works]
    return sorted(set(lines))


def robots_snippet(*, domain: str) -> str:
    """robots.txt lines for a member's site: one group for AI-training crawlers (what is
    reserved from training or fine-tuning), one for search/retrieval agents (what is reserved
    from RAG), and the RSL `License:` pointer to the society's licence."""
    training = sp.domain_permissions(domain=domain, use=Use.TRAINING)
    fine_tuning = sp.domain_permissions(domain=domain, use=Use.FINE_TUNING)
    rag = sp.domain_permissions(domain=domain, use=Use.RAG)
    training_lines = sorted(set(_disallows(training)) | set(_disallows(fine_tuning)))
    if "/" in training_lines:
        training_lines = ["/"]
    rag_lines = _disallows(rag)
    now = timezone.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    out = [
        f"# AI crawler rules for {domain}, generated {now} by {settings.BLANKET_SOCIETY_NAME}",
        "# from the reservations registered with it. Paste into "
        f"https://{domain}/robots.txt and refresh it",
        "# when your reservations change. Everything not disallowed here may be licensed",
        "# under the society's collective licence (License: below).",
        "",
        "# AI training crawlers and training control tokens",
    ]
    out += [f"User-agent: {agent}" for agent in TRAINING_AGENTS]
    out += [f"Disallow: {line}" for line in training_lines] or ["Disallow:"]
    out += ["", "# AI search, retrieval and user-triggered agents"]
    out += [f"User-agent: {agent}" for agent in RETRIEVAL_AGENTS]
    out += [f"Disallow: {line}" for line in rag_lines] or ["Disallow:"]
    out += ["", f"License: {rsl_licence_url()}", ""]
    return "\n".join(out)


# --- RSL ----------------------------------------------------------------------------------------


def _major_units(amount_minor: int, currency: str) -> str:
    if currency.upper() in ZERO_DECIMAL:
        return str(amount_minor)
    major, minor = divmod(abs(amount_minor), 100)
    return f"{'-' if amount_minor < 0 else ''}{major}.{minor:02d}"


_ISO_TERRITORY = re.compile(r"^[A-Z]{2}$")


def _comment(text: str) -> str:
    """Text safe inside an XML comment (which may not hold `--`, nor end with `-`): a space
    after every dash that a dash follows, and after a final dash."""
    safe = re.sub(r"-(?=-)", "- ", escape(str(text)))
    return safe + " " if safe.endswith("-") else safe


def rsl_products() -> list[LicenceProduct]:
    return list(
        LicenceProduct.objects.filter(active=True).prefetch_related("tiers").order_by("code")
    )


def rsl_document() -> str:
    """The society's blanket licence as an RSL 1.0 document: one `<license>` per active
    product (its uses, territory, payment: a fee per term from the tariff, bought on the
    society's site), for `content url="/"` of any member site that points to it."""
    products = rsl_products()
    server = _absolute("/api/v1/")
    rate_card = _absolute(reverse("licence_products"))
    buy = _absolute(reverse("licence_quote"))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<rsl xmlns={quoteattr(RSL_NAMESPACE)}>",
        f"  <!-- The collective (blanket) licence of {_comment(settings.BLANKET_SOCIETY_NAME)}:"
        " the works of its",
        "       repertoire, except what their holders reserved: "
        f"{_comment(_absolute(reverse('permissions-reservations-csv')))} -->",
        f'  <content url="/" server={quoteattr(server)}>',
        f'    <copyright type="organization">{escape(settings.BLANKET_SOCIETY_NAME)}</copyright>',
        f"    <terms>{escape(rate_card)}</terms>",
    ]
    for product in products:
        usages = sorted({RSL_USAGE[u] for u in product.uses if u in RSL_USAGE})
        withheld = sorted({"ai-train", "ai-input"} - set(usages))
        lines.append(
            f"    <!-- {_comment(product.name)} ({_comment(product.code)}); the amount is the "
            "minimum fee per term, the tariff sets the price -->"
        )
        lines.append("    <license>")
        if usages:
            lines.append(f'      <permits type="usage">{",".join(usages)}</permits>')
        if withheld:
            lines.append(f'      <prohibits type="usage">{",".join(withheld)}</prohibits>')
        territories = [t.strip().upper() for t in product.territory.split(",") if t.strip()]
        if territories and all(_ISO_TERRITORY.match(t) for t in territories):
            lines.append(f'      <permits type="geo">{",".join(territories)}</permits>')
        lines.append('      <payment type="subscription">')
        lines.append(f"        <standard>{escape(rate_card)}</standard>")
        lines.append(f"        <custom>{escape(buy)}</custom>")
        lines.append(
            f"        <amount currency={quoteattr(product.currency)}>"
            f"{_major_units(product.minimum_fee_minor, product.currency)}</amount>"
        )
        lines.append("      </payment>")
        lines.append("    </license>")
    if not products:
        lines += [
            "    <!-- No licence is on offer at the moment. -->",
            "    <license>",
            '      <prohibits type="usage">ai-all</prohibits>',
            "    </license>",
        ]
    lines += [
        "  </content>",
        "</rsl>",
        "",
    ]
    return "\n".join(lines)
