"""Edge middleware: refuse input no view can store (NUL bytes, over-deep JSON) with a 400, send
the Content-Security-Policy header, and end sessions that sat idle too long."""

import json
import time

from django.conf import settings
from django.contrib.auth import logout
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

NUL = "\x00"

def _has_nul(multi):
    return any(NUL in key or any(isinstance(value, str) and NUL in value for value in values)
               for key, values in multi.lists())


def _json_depth(value):
    """Depth of a parsed JSON value, iteratively (no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _json_has_nul(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and NUL in item:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_body_problem(body, *, max_depth):
    """Why a JSON request body must be refused at the edge, or None. Malformed JSON is left to the
    view, which answers it with its own 400."""
    # Fast path: a body with few brackets cannot be deep, and without the escape holds no NUL.
    if body.count(b"[") + body.count(b"{") <= max_depth and b"\\u0000" not in body:
        return None
    try:
        data = json.loads(body)
    except RecursionError:
        return _("The JSON is nested too deeply (at most %(n)d levels).") % {"n": max_depth}
    except ValueError:
        return None
    if _json_depth(data) > max_depth:
        return _("The JSON is nested too deeply (at most %(n)d levels).") % {"n": max_depth}
    if _json_has_nul(data):
        return _("The request contains a NUL character, which is not allowed.")
    return None


class BadInputMiddleware:
    """400 for a NUL byte in the path, the query string, a header, a form field or a JSON string,
    and for JSON nested deeper than JSON_MAX_DEPTH: no database stores NUL in text (PostgreSQL
    refuses it mid-transaction) and Python's JSON parser recurses. Runs before any view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self.problem(request)
        if problem:
            return JsonResponse({"detail": problem}, status=400)
        return self.get_response(request)

    def problem(self, request):
        if self.has_nul(request):
            return _("The request contains a NUL character, which is not allowed.")
        if request.method not in {"GET", "HEAD", "OPTIONS"}:
            content_type = request.content_type or ""
            if content_type == "application/json" or content_type.endswith("+json"):
                return json_body_problem(request.body, max_depth=settings.JSON_MAX_DEPTH)
        return None

    @staticmethod
    def has_nul(request):
        # Headers the views store (Idempotency-Key, a raw payload's User-Agent) count too. One
        # join per part: this runs on every request, the public form's included.
        if NUL in request.path or (request.GET and _has_nul(request.GET)):
            return True
        if NUL in "".join(value for key, value in request.META.items()
                          if key.startswith("HTTP_") and isinstance(value, str)):
            return True
        if request.method in {"GET", "HEAD", "OPTIONS"}:
            return False
        if request.content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
            try:
                return _has_nul(request.POST)
            except (MultiPartParserError, ValueError):
                return False  # the view's own parsing reports it
        return False


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy (settings.CONTENT_SECURITY_POLICY) to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


SESSION_SEEN_KEY = "scrm_seen_at"


class IdleTimeoutMiddleware:
    """Signs out a user whose session saw no request for SESSION_IDLE_TIMEOUT seconds (0: off).
    The last-seen time is written at most once a minute, so reading pages does not save the
    session on every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timeout = settings.SESSION_IDLE_TIMEOUT
        # No session cookie, no session to end: the public form and the API skip the user lookup.
        if timeout and settings.SESSION_COOKIE_NAME in request.COOKIES and request.user.is_authenticated:
            now = int(time.time())
            seen = request.session.get(SESSION_SEEN_KEY)
            if seen is not None and now - seen > timeout:
                logout(request)
            elif seen is None or now - seen >= 60:
                request.session[SESSION_SEEN_KEY] = now
        return self.get_response(request)
