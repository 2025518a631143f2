"""The REST API (v1) for integrators: create tickets (idempotently with an Idempotency-Key), list
and read them, list the published templates. Callers authenticate with a tenant's API key
(`Authorization: Api-Key <prefix>.<secret>`); every view then runs inside that tenant's scope.
Thin like the pages: services write, selectors read, errors are 4xx JSON and change nothing."""

import hashlib
import hmac
import json
from contextlib import ExitStack

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from scrm.config_cache import config_pinned
from scrm.models import Customer, Opportunity, Store
from scrm.phone import phone_normalize
from scrm.ratelimit import rate_limited, window_left
from scrm.tenancy import tenant_scope

from . import selectors
from .models import ApiKey, Priority, Source, Status, Ticket, TicketTemplate
from .services import (
    IdempotencyConflict,
    api_key_hash,
    api_key_mark_used,
    ticket_intake,
    ticket_intake_idempotent,
)

MAX_BODY_BYTES = 256 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 100  # IdempotencyRecord.key


# --- authentication ---------------------------------------------------------------------

class ApiClient:
    """Who is calling: an API key of one tenant. DRF puts it in `request.user`; it is not a user
    row, so services get `actor=None` and the timeline says the ticket came via the API."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, *, tenant, key_id):
        self.tenant = tenant
        self.key_id = key_id

    def __str__(self):
        return f"api-key:{self.key_id}"


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key <prefix>.<random>`. Only a SHA-256 of the secret is stored."""

    keyword = "Api-Key"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() != self.keyword.lower():
            return None  # no key at all: NotAuthenticated (401) from the permission check
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header: use “Api-Key <secret>”."))
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        prefix, dot, rest = secret.partition(".")
        if not dot or not rest or not prefix or len(prefix) > 12:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        # The one unscoped read of the API: no tenant is known yet, and finding it is the point.
        # Like the membership lookup in scrm/tenancy.py it cannot leak other rows: the prefix is
        # globally unique, it returns only that key and its tenant (one query, get(): no ORDER
        # BY), and nothing is used before the hash matches. Everything after runs inside the
        # key's tenant scope.
        try:
            key = ApiKey._base_manager.select_related("tenant").get(prefix=prefix)
        except ApiKey.DoesNotExist:
            key = None
        if key is None or not hmac.compare_digest(key.hashed_key, api_key_hash(secret)):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if not key.is_active:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."))
        tenant = key.tenant
        if not tenant.is_active:
            raise exceptions.AuthenticationFailed(_("This API key's tenant is not active."))
        with tenant_scope(tenant):
            api_key_mark_used(key_id=key.pk, last_used_at=key.last_used_at)
        return ApiClient(tenant=tenant, key_id=key.pk), None

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate), not 403, when the key is missing or bad.
        return self.keyword


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tickets.api.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>` — created by a tenant admin; the secret is shown once.",
        }


# --- errors -----------------------------------------------------------------------------

class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is larger than 256 KB.")
    default_code = "payload_too_large"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = gettext_lazy("This Idempotency-Key was already used for a different request body.")
    default_code = "idempotency_key_reused"


def _flatten(detail, prefix=""):
    """DRF's nested error detail as {"field" or "parent.child": [messages]}."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in (NON_FIELD_ERRORS, "non_field_errors") and not prefix else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    messages = [str(m) for m in (detail if isinstance(detail, list) else [detail])]
    return {prefix or "non_field_errors": messages} if messages else {}


def api_exception_handler(exc, context):
    """DRF's handler, with validation errors as {"detail": summary, "errors": {field: [messages]}}."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        response.data = {"detail": _("The request has errors; see “errors”."), "errors": errors}
    return response


# Service error keys that are API fields under another name.
_SERVICE_KEYS = {"customer": "customer_id", "opportunity": "opportunity_id", "store": "store_id",
                 "region": "store_id"}
_CONTACT_KEYS = {"name", "phone", "email", "wecom_external_userid", "wechat_openid"}


def _service_errors(exc, *, data_keys):
    """A service's Django ValidationError as API errors: custom fields as `data.<key>`, the
    contact's fields as `customer.<key>`, related objects by their `*_id` names."""
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": exc.messages}
    errors = {}
    for key, items in exc.message_dict.items():
        if key == NON_FIELD_ERRORS:
            name = "non_field_errors"
        elif key in data_keys:
            name = f"data.{key}"
        elif key in _SERVICE_KEYS:
            name = _SERVICE_KEYS[key]
        elif key in _CONTACT_KEYS:
            name = f"customer.{key}"
        else:
            name = key
        errors.setdefault(name, []).extend(items)
    return errors


# --- serializers ------------------------------------------------------------------------

class ContactSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=24, required=False, allow_blank=True,
                                  help_text="Mainland mobile or landline; stored normalised.")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    wecom_external_userid = serializers.CharField(max_length=64, required=False, allow_blank=True)
    wechat_openid = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_phone(self, value):
        if not value:
            return value
        try:
            return phone_normalize(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class TicketCreateSerializer(serializers.Serializer):
    """What an integrator sends. `data` holds the template's custom fields by key (see
    GET /api/v1/templates/); `customer` links or creates the customer when `customer_id` is absent."""

    template = serializers.SlugField(max_length=50, help_text="The slug of a published template.")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    data = serializers.DictField(required=False, allow_null=True, help_text="Custom field values by field key.")
    customer = ContactSerializer(required=False, allow_null=True)
    customer_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    opportunity_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    store_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [_("Unknown field.")] for key in unknown})
        return super().to_internal_value(data)


class TicketSerializer(serializers.ModelSerializer):
    template = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    tracking_url = serializers.SerializerMethodField()
    customer_id = serializers.IntegerField(read_only=True, allow_null=True)
    store_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Ticket
        fields = ["id", "number", "title", "status", "priority", "source", "template", "customer_id", "store_id",
                  "created_at", "updated_at", "tracking_url", "data"]
        read_only_fields = fields

    def get_tracking_url(self, ticket) -> str:
        return settings.SITE_URL.rstrip("/") + reverse("ticket-track", args=[ticket.tracking_token])


class TemplateSerializer(serializers.ModelSerializer):
    category = serializers.SerializerMethodField()
    # A plain string here: a second enum over the priorities would make drf-spectacular warn
    # (two names for one choice set), and `check --deploy` fails on warnings.
    default_priority = serializers.CharField(read_only=True, help_text="low, normal, high or urgent.")
    version = serializers.IntegerField(source="current_version.number", read_only=True)
    fields = serializers.JSONField(source="current_version.fields", read_only=True)

    class Meta:
        model = TicketTemplate
        fields = ["slug", "name", "description", "category", "default_priority", "number_prefix", "is_public",
                  "version", "fields"]
        read_only_fields = fields

    def get_category(self, template) -> dict:
        return {"code": template.category.code, "name": template.category.name}


ErrorSerializer = inline_serializer(
    name="ApiError",
    fields={
        "detail": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False),
    },
)


def _errors(*codes):
    texts = {
        400: "Invalid input: `errors` maps each field (`data.<key>` for custom fields) to its messages.",
        401: "Missing, invalid or revoked API key.",
        404: "No such ticket in this tenant.",
        413: "Body larger than 256 KB.",
        415: "Body is not JSON.",
        422: "Idempotency-Key reused with a different body.",
        429: "More than API_RATE_PER_MINUTE requests with this key this minute; retry after `Retry-After` seconds.",
    }
    # Every endpoint takes the key's rate limit.
    return {code: OpenApiResponse(ErrorSerializer, description=texts[code]) for code in (*codes, 429)}


# --- reads the API needs (tenant scope open) --------------------------------------------

def _ticket_queryset(*, status=""):
    qs = Ticket.objects.select_related("template").order_by("-created_at", "-id")
    return qs.filter(status=status) if status else qs


def _published_templates():
    return selectors.template_list(active_only=True).filter(current_version__isnull=False).order_by("slug")


def _tenant_object(model, pk, field, errors):
    """The object with pk in the open scope, or a field error (another tenant's id looks missing)."""
    if pk is None:
        return None
    obj = model.objects.filter(pk=pk).first()
    if obj is None:
        errors[field] = [_("Object %(id)s was not found.") % {"id": pk}]
    return obj


# --- views ------------------------------------------------------------------------------

class ApiKeyThrottle(BaseThrottle):
    """`API_RATE_PER_MINUTE` requests per key and minute (one Redis round trip, as the public
    form's limit); DRF answers 429 with Retry-After. Runs after authentication, so a missing or
    bad key is 401 and not counted."""

    def allow_request(self, request, view):
        return not rate_limited(scope="api", ident=f"key{request.user.key_id}", limit=settings.API_RATE_PER_MINUTE)

    def wait(self):
        return window_left()


class TenantApiView(generics.GenericAPIView):
    """Base view: API-key authentication, JSON only, a per-key rate limit, and the key's tenant
    scope around the handler."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiKeyThrottle]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self):
        return api_exception_handler

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._scope_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticates (401) before any scope opens
        tenant = request.user.tenant
        self._scope_stack.enter_context(tenant_scope(tenant))
        # The key's tenant row was just read: its stamp serves every cached read of the request.
        self._scope_stack.enter_context(config_pinned(tenant, stamp=tenant.config_stamp))
        request.tenant = request._request.tenant = tenant


class TicketPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class TicketListQuerySerializer(serializers.Serializer):
    """The list's query parameters, checked as the schema states them: `page=0`, `page=""`,
    `page_size=false` or `status=""` are a 400 with the parameter's message."""

    page = serializers.IntegerField(min_value=1, required=False, help_text="A page number, from 1.")
    page_size = serializers.IntegerField(min_value=1, max_value=TicketPagination.max_page_size, required=False,
                                         help_text="Tickets per page (default 50).")
    status = serializers.ChoiceField(choices=Status.values, required=False, help_text="Only this status.")


class TicketListCreateView(TenantApiView):
    """The tenant's tickets, newest first (paginated), and creating one."""

    serializer_class = TicketSerializer
    pagination_class = TicketPagination

    def get_queryset(self):
        # A plain dict: from a QueryDict, DRF would read an empty value as "not given".
        query = TicketListQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        return _ticket_queryset(status=query.validated_data.get("status", ""))

    @extend_schema(
        operation_id="tickets_list",
        summary="List tickets",
        parameters=[TicketListQuerySerializer],
        responses={200: TicketSerializer(many=True), **_errors(400, 401),
                   404: OpenApiResponse(ErrorSerializer, description="`page` is past the last page.")},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        operation_id="tickets_create",
        summary="Create a ticket",
        description=(
            "Creates a ticket from a published template. Send an `Idempotency-Key` header to make "
            "retries safe: the same key with the same body returns the first ticket (200, "
            "`Idempotent-Replayed: true`); the same key with another body is refused (422)."
        ),
        request=TicketCreateSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                description="Up to 100 characters, unique per request you mean to make (e.g. a UUID).",
            ),
        ],
        responses={
            201: TicketSerializer,
            200: OpenApiResponse(TicketSerializer, description="Replay of an earlier request with this key."),
            **_errors(400, 401, 413, 415, 422),
        },
    )
    def post(self, request):
        canonical = self._canonical_body(request)
        payload = request.data
        if not isinstance(payload, dict):
            raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object.")]})
        serializer = TicketCreateSerializer(data=payload)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        key = self._idempotency_key(request)

        errors = {}
        template = selectors.template_active_get(slug=values["template"])
        if template is None:
            errors["template"] = [_("No active template has the slug “%(slug)s”.") % {"slug": values["template"]}]
        customer = _tenant_object(Customer, values.get("customer_id"), "customer_id", errors)
        opportunity = _tenant_object(Opportunity, values.get("opportunity_id"), "opportunity_id", errors)
        store = _tenant_object(Store, values.get("store_id"), "store_id", errors)
        if errors:
            raise serializers.ValidationError(errors)

        contact = {k: v for k, v in (values.get("customer") or {}).items() if v}
        intake = dict(
            source=Source.API, template=template, data=values.get("data") or {}, audience="staff",
            title=values.get("title", ""), description=values.get("description", ""),
            priority=values.get("priority") or None, customer=customer, contact=contact or None,
            opportunity=opportunity, store=store, raw_payload=payload,
        )
        data_keys = {f["key"] for f in (template.current_version.fields if template.current_version else [])}
        replayed = False
        try:
            if key:
                digest = hashlib.sha256(canonical).hexdigest()
                ticket, replayed = ticket_intake_idempotent(
                    tenant=request.tenant, key=key, request_hash=digest, **intake
                )
            else:
                ticket = ticket_intake(tenant=request.tenant, **intake)
        except IdempotencyConflict:
            raise IdempotencyKeyReused() from None
        except DjangoValidationError as exc:
            raise serializers.ValidationError(_service_errors(exc, data_keys=data_keys)) from None
        body = TicketSerializer(Ticket.objects.select_related("template").get(pk=ticket.pk)).data
        if replayed:
            return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
        return Response(body, status=status.HTTP_201_CREATED)

    def _canonical_body(self, request):
        """The parsed body as canonical JSON (sorted keys, no spaces) for the idempotency hash;
        oversized bodies are refused before anything is parsed."""
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        if len(request._request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        payload = request.data  # parses: 415 for another content type, 400 for broken JSON
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def _idempotency_key(self, request):
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise serializers.ValidationError(
                {IDEMPOTENCY_HEADER: [_("Use at most %(n)d characters.") % {"n": MAX_IDEMPOTENCY_KEY}]}
            )
        return key


class TicketDetailView(TenantApiView):
    """One ticket by its number (e.g. WX-20261123-0001); 404 when this tenant has none such."""

    serializer_class = TicketSerializer
    pagination_class = None

    @extend_schema(operation_id="tickets_retrieve", summary="One ticket by number",
                   responses={200: TicketSerializer, **_errors(401, 404)})
    def get(self, request, number):
        ticket = selectors.ticket_by_number(number=number)
        if ticket is None:
            raise exceptions.NotFound()
        return Response(TicketSerializer(ticket).data)


class TemplateListView(TenantApiView):
    """The published, active templates with the fields their current version asks for: the keys
    to use in a ticket's `data`, their types, whether required, choices. Not paginated."""

    serializer_class = TemplateSerializer
    pagination_class = None

    @extend_schema(operation_id="templates_list", summary="Published templates and their fields",
                   responses={200: TemplateSerializer(many=True), **_errors(401)})
    def get(self, request):
        return Response(TemplateSerializer(_published_templates(), many=True).data)
