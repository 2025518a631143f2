"""Notification templates rendered in a sandbox: a fixed list of plain-text variables, a few
filters, `if` and nothing else, so a manager's template can never reach model attributes.

`template_check` is the gate (a form calls it at save, the outbox at render): it refuses syntax
errors, unknown variables, dotted attribute access, any tag but `if` and any filter outside
FILTERS — each refusal names the line. The context only ever holds strings, so even a template
that slipped past the check could not reach an object."""

import functools

from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.defaulttags import IfNode
from django.utils.translation import gettext as _

VARIABLES = (
    "tenant_name", "ticket_number", "ticket_title", "ticket_status", "ticket_priority", "customer_name",
    "store_name", "assignee_name", "actor_name", "tracking_url", "ticket_url", "comment", "eta", "node_name",
    "due_at", "part_name", "stock", "settlement_period", "amount", "title", "body",
    # The CSAT alert (low_rating) and the weekly quality report (quality_report).
    "score", "followup_number", "team_name", "week", "tickets", "average", "findings", "lowest", "report_url",
    # settlement's approval message: one line per settlement line with its breakdown, capped, and
    # the link to the engineer's full list
    "settlement_lines", "settlement_url",
)
FILTERS = frozenset({"default", "truncatechars", "upper", "lower", "linebreaksbr"})
MAX_SOURCE = 4000

# debug=True gives syntax errors their line; autoescape off because SMS/WeCom are plain text
# (the email channel escapes its HTML part separately). No tag libraries can be loaded.
_ENGINE = Engine(debug=True, autoescape=False, builtins=["django.template.defaulttags",
                                                         "django.template.defaultfilters"], libraries={})


def _walk(nodelist):
    for node in nodelist:
        yield node
        for attr in getattr(node, "child_nodelists", ()):
            yield from _walk(getattr(node, attr, None) or [])
        if isinstance(node, IfNode):
            for _condition, branch in node.conditions_nodelists:
                yield from _walk(branch)


def _filter_expressions(node):
    """Every FilterExpression a node evaluates: a variable node's, or each operand of an `if`."""
    if isinstance(node, VariableNode):
        yield node.filter_expression
    elif isinstance(node, IfNode):
        for condition, _branch in node.conditions_nodelists:
            stack = [condition] if condition is not None else []
            while stack:
                item = stack.pop()
                for part in ("second", "first"):
                    child = getattr(item, part, None)
                    if child is not None:
                        stack.append(child)
                if isinstance(getattr(item, "value", None), FilterExpression):
                    yield item.value


def _variables_of(expression):
    """The variables (not literals) an expression reads: its own and its filters' arguments."""
    if isinstance(expression.var, Variable) and expression.var.lookups is not None:
        yield expression.var.var
    for _func, args in expression.filters:
        for is_lookup, arg in args:
            if is_lookup and isinstance(arg, Variable) and arg.lookups is not None:
                yield arg.var


def _syntax_error(exc):
    line = getattr(exc, "template_debug", {}).get("line", "?")
    token = getattr(exc, "token", None)
    tag = (getattr(token, "contents", "") or "").split(" ", 1)[0]
    error = _("tag libraries cannot be loaded ({% load %} is not allowed).") if tag == "load" else str(exc)
    return ValidationError(_("Line %(line)s: %(error)s") % {"line": line, "error": error}, code="syntax")


def template_check(source):
    """Compile and vet a template; raise ValidationError naming the line of the first problem."""
    source = source or ""
    if len(source) > MAX_SOURCE:
        raise ValidationError(_("Ensure this value has at most %(n)d characters.") % {"n": MAX_SOURCE},
                              code="max_length")
    return _vetted(source)


@functools.lru_cache(maxsize=1024)
def _vetted(source):
    # Every outbox row renders its subject and body: compile and vet each source once per
    # process. A compiled template is read-only and safe to share; refusals are not cached.
    try:
        template = _ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from exc
    for node in _walk(template.nodelist):
        line = _line_of(node)
        if not isinstance(node, (TextNode, VariableNode, IfNode)):
            tag = (getattr(getattr(node, "token", None), "contents", "") or "").split(" ", 1)[0]
            raise ValidationError(
                _("Line %(line)s: the tag “%(tag)s” is not allowed; use variables and {%% if %%} only.")
                % {"line": line, "tag": tag or type(node).__name__}, code="tag")
        for expression in _filter_expressions(node):
            for name in _variables_of(expression):
                if "." in name:
                    raise ValidationError(
                        _("Line %(line)s: “%(name)s”: attribute access (.) is not allowed; use a plain variable.")
                        % {"line": line, "name": name}, code="attribute")
                if name not in VARIABLES:
                    raise ValidationError(
                        _("Line %(line)s: unknown variable “%(name)s”. Known: %(known)s.")
                        % {"line": line, "name": name, "known": ", ".join(VARIABLES)}, code="variable")
            for func, _args in expression.filters:
                if func.__name__ not in FILTERS:
                    raise ValidationError(
                        _("Line %(line)s: filter “%(name)s” is not allowed. Allowed: %(allowed)s.")
                        % {"line": line, "name": func.__name__, "allowed": ", ".join(sorted(FILTERS))},
                        code="filter")
    return template


def template_variables(source):
    """The variables a (valid) template uses, in order of first use: the parameters of an SMS or
    official-account template whose wording the tenant's template mirrors."""
    template = template_check(source)
    names = []
    for node in _walk(template.nodelist):
        for expression in _filter_expressions(node):
            names.extend(n for n in _variables_of(expression) if n not in names)
    return names


def _line_of(node):
    token = getattr(node, "token", None)
    return getattr(token, "lineno", None) or 1


def template_render(source, variables):
    """Render with plain strings only (anything else is turned into its text first)."""
    template = template_check(source)
    context = {name: "" if variables.get(name) is None else str(variables.get(name)) for name in VARIABLES}
    return template.render(Context(context, autoescape=False)).strip()
