"""Public, machine-readable permissions and statistics: thin views over
`licensing.services.permissions` and `licensing.selectors_permissions`.

Nothing here is cached: each response is built from the database when requested, and says
so with `Cache-Control: no-cache` (mirrors may revalidate, never serve a stale copy).
"""

from __future__ import annotations

import json

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing import selectors_permissions
from licensing.api import permission_serializers as s
from licensing.api.views import RegistryThrottle
from licensing.errors import LicensingError
from licensing.services import permissions

NO_CACHE = "no-cache"


class AnyMediaRenderer(BaseRenderer):
    """Lets a client ask for text/csv, application/xml, text/plain... (these views answer
    with their own response); an error body is still JSON."""

    media_type = "*/*"
    format = "any"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else json.dumps(data).encode()


class PublicView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [RegistryThrottle]
    renderer_classes = [JSONRenderer, AnyMediaRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        # A JSON body (the statistics, or any error) goes out as application/json even when
        # the client's Accept header or ?format= picked the catch-all renderer.
        if isinstance(response, Response) and isinstance(
            getattr(request, "accepted_renderer", None), AnyMediaRenderer
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def _no_cache(response):
    response["Cache-Control"] = NO_CACHE
    return response


_ERROR = OpenApiResponse(description="Bad input: `{error: {code, message, details}}`.")
_USE = OpenApiParameter(
    "use", str, enum=["training", "fine_tuning", "rag"], description="Default training."
)


class PermissionLookupView(PublicView):
    """Public: is each URL or domain licensable, reserved or unknown, why, and whose?

    A URL matches a work carrying it as a URL identifier and reservations of it, of a URL
    prefix of it, or of its domain or a parent domain. A domain matches domain reservations
    (it or a parent) and the works whose URLs are on it; it is `reserved` only when reserved as
    a whole. At most 1,000 URLs and domains per call."""

    @extend_schema(
        parameters=[
            OpenApiParameter("url", str, many=True, description="A URL; repeat for several."),
            OpenApiParameter("domain", str, many=True, description="A domain; repeat."),
            _USE,
        ],
        responses={(200, "application/json"): s.PermissionLookupResultSerializer, 400: _ERROR},
        operation_id="v1_permissions_lookup_retrieve",
    )
    def get(self, request):
        params = request.query_params
        body = permissions.permissions_lookup(
            urls=params.getlist("url"), domains=params.getlist("domain"), use=params.get("use")
        )
        return _no_cache(Response(body))

    @extend_schema(
        request=s.PermissionLookupRequestSerializer,
        responses={(200, "application/json"): s.PermissionLookupResultSerializer, 400: _ERROR},
        operation_id="v1_permissions_lookup_create",
    )
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise LicensingError(
                'Send {"urls": [...], "domains": [...], "use": "training"}.',
                code="invalid",
                details={"body": ["A JSON object."]},
            )
        for field in ("urls", "domains"):
            if not isinstance(body.get(field, []), list):
                raise LicensingError(
                    f"{field} must be a list.", code="invalid", details={field: ["A list."]}
                )
        use = body.get("use")
        if use is not None and not isinstance(use, str):
            raise LicensingError("use must be text.", code="invalid", details={"use": ["Text."]})
        result = permissions.permissions_lookup(
            urls=body.get("urls", []), domains=body.get("domains", []), use=use
        )
        return _no_cache(Response(result))


_SINCE = OpenApiParameter(
    "since",
    OpenApiTypes.DATETIME,
    description=(
        "Only the entries changed at or after this ISO 8601 time (new, changed or withdrawn; "
        "a withdrawn entry is a tombstone row with `status=withdrawn`: delete it). Use the "
        "`X-Blanket-Snapshot` header of the previous download as the next `since`."
    ),
)


class PermissionListView(PublicView):
    """Base of the four list downloads; `name` and `fmt` are set per route."""

    name = "reservations"
    fmt = "csv"

    def get(self, request):
        since = permissions.permissions_since_parse(request.query_params.get("since"))
        snapshot = timezone.now()
        response = StreamingHttpResponse(
            permissions.permissions_list_stream(name=self.name, fmt=self.fmt, since=since),
            content_type=permissions.FORMATS[self.fmt],
        )
        filename = f"blanket-{self.name}{'-since' if since else ''}.{self.fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Blanket-Snapshot"] = snapshot.isoformat().replace("+00:00", "Z")
        return _no_cache(response)


_RESERVATIONS_DOC = (
    "Everything reserved: registered reservations (identifier, URL prefix, domain; "
    "`id` reservation:<n>) and works their holders reserved for at least one use "
    "(`id` work:<n>, `identifiers` scheme:value, space-separated in CSV). Columns: "
    + ", ".join(permissions.RESERVATION_LIST_COLUMNS)
    + "."
)
_REPERTOIRE_DOC = (
    "The licensed repertoire: works their holders licensed for at least one use (`uses`). "
    "Reservations still win (see the reservation list). Columns: "
    + ", ".join(permissions.REPERTOIRE_LIST_COLUMNS)
    + "."
)


def _list_view(name: str, fmt: str, doc: str):
    media = permissions.FORMATS[fmt].split(";")[0]

    class View(PermissionListView):
        __doc__ = doc

        @extend_schema(
            parameters=[_SINCE],
            responses={(200, media): OpenApiTypes.STR, 400: _ERROR},
            operation_id=f"v1_permissions_{name}_{fmt}",
            description=doc + (" One JSON object per line." if fmt == "jsonl" else ""),
        )
        def get(self, request):
            return super().get(request)

    View.name, View.fmt = name, fmt
    View.__name__ = View.__qualname__ = f"{name.title()}{fmt.title()}ListView"
    return View


ReservationsCsvView = _list_view("reservations", "csv", _RESERVATIONS_DOC)
ReservationsJsonlView = _list_view("reservations", "jsonl", _RESERVATIONS_DOC)
RepertoireCsvView = _list_view("repertoire", "csv", _REPERTOIRE_DOC)
RepertoireJsonlView = _list_view("repertoire", "jsonl", _REPERTOIRE_DOC)


class TdmrepView(PublicView):
    """A W3C TDMRep rules file (`/.well-known/tdmrep.json`) for a member's domain, from the
    registry: reserved works and URL prefixes (`tdm-reservation: 1`, no policy), works licensed
    through the society (`tdm-reservation: 1` with `tdm-policy`: the society's RSL licence),
    most specific first; the whole domain when it is reserved as a whole."""

    @extend_schema(
        parameters=[_USE],
        responses={(200, "application/json"): s.TdmrepRuleSerializer(many=True), 400: _ERROR},
        operation_id="v1_permissions_tdmrep_retrieve",
    )
    def get(self, request, domain: str):
        domain = permissions.permissions_domain_clean(domain)
        use = permissions.permissions_use_clean(request.query_params.get("use"))
        rules = permissions.tdmrep_rules(domain=domain, use=use)
        return _no_cache(Response(rules))


class RslView(PublicView):
    """The society's blanket licence as an RSL 1.0 document (XML): permitted AI uses of each
    active licence product, the payment model and where to buy, the licence server."""

    @extend_schema(
        responses={(200, "application/rsl+xml"): OpenApiTypes.STR},
        operation_id="v1_permissions_rsl_retrieve",
    )
    def get(self, request):
        response = HttpResponse(
            permissions.rsl_document(), content_type="application/rsl+xml; charset=utf-8"
        )
        return _no_cache(response)


class RobotsSnippetView(PublicView):
    """robots.txt lines for a member's site: the AI crawlers' user agents with Disallow lines
    for what is reserved there, and the RSL `License:` directive."""

    @extend_schema(
        parameters=[OpenApiParameter("domain", str, required=True)],
        responses={(200, "text/plain"): OpenApiTypes.STR, 400: _ERROR},
        operation_id="v1_permissions_robots_retrieve",
    )
    def get(self, request):
        domain = permissions.permissions_domain_clean(request.query_params.get("domain"))
        response = HttpResponse(
            permissions.robots_snippet(domain=domain), content_type="text/plain; charset=utf-8"
        )
        return _no_cache(response)


class PublicStatsView(PublicView):
    """Public statistics of the society, from live data (no cache): works, rights holders,
    licensees, money collected and paid out per currency, share of works reserved."""

    @extend_schema(
        responses={(200, "application/json"): s.PublicStatsSerializer},
        operation_id="v1_public_stats_retrieve",
    )
    def get(self, request):
        return _no_cache(Response(selectors_permissions.public_stats()))
