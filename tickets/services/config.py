"""Configuration writes for tickets: categories, templates (draft edits, publishing immutable
versions, presets, JSON/YAML export and import), classification rules and API keys."""

import datetime
import hashlib
import re
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from scrm.services import tag_get_or_create

from .. import fields as schema
from ..models import ApiKey, Category, ClassificationRule, Priority, TemplateVersion, TicketTemplate
from ..presets import preset_get
from .core import invalid_choice

EXPORT_FORMAT = "scrm.ticket-template/1"
PREFIX_RE = re.compile(r"^[A-Z]{1,8}$")


def _clean(instance):
    instance.full_clean(exclude=["tenant"], validate_unique=False, validate_constraints=False)


@transaction.atomic
def category_get_or_create(*, tenant, code, name, order=0):
    category = Category.objects.filter(code=code).first()
    if category is not None:
        return category
    if Category.objects.filter(name=name).exists():
        raise ValidationError({"name": _("A category with this name already exists.")})
    category = Category(tenant=tenant, code=code, name=name, order=order)
    _clean(category)
    category.save()
    return category


TEMPLATE_FIELDS = ("name", "slug", "category", "description", "default_priority", "number_prefix", "is_public",
                   "is_active", "site_photos_public")


def _template_save(template, values):
    if values.get("category") is not None and values["category"].tenant_id != template.tenant_id:
        raise ValidationError({"category": invalid_choice()})
    for key, value in values.items():
        setattr(template, key, value)
    template.number_prefix = (template.number_prefix or "").upper()
    if not PREFIX_RE.match(template.number_prefix):
        # Checked here so an import with a bad prefix is a form error, not the database's CHECK.
        raise ValidationError({"number_prefix": _("Use 1 to 8 letters A–Z, e.g. WX.")})
    if len(template.description or "") > 1000:  # a TextField's max_length is not a model check
        raise ValidationError({"description": _("Ensure this value has at most 1000 characters.")})
    _clean(template)
    if TicketTemplate.objects.exclude(pk=template.pk).filter(slug=template.slug).exists():
        raise ValidationError({"slug": _("A template with this slug already exists.")})
    template.save()
    return template


@transaction.atomic
def template_create(*, tenant, name, category, slug="", fields=(), **values):
    unknown = set(values) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"template_create got unknown fields {sorted(unknown)}")
    template = TicketTemplate(tenant=tenant, draft_fields=schema.schema_validate(list(fields)) if fields else [])
    slug = slug or slugify(name) or f"t{secrets.token_hex(3)}"
    return _template_save(template, {"name": name, "category": category, "slug": slug, **values})


@transaction.atomic
def template_update(*, template, **values):
    unknown = set(values) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"template_update got unknown fields {sorted(unknown)}")
    return _template_save(template, values)


@transaction.atomic
def template_draft_set(*, template, fields):
    """Replace the draft field list (builder saves, reorders, imports); validated as a whole."""
    template.draft_fields = schema.schema_validate(list(fields))
    template.save(update_fields=["draft_fields", "updated_at"])
    return template


@transaction.atomic
def template_publish(*, template, actor=None):
    """Freeze the draft into a new immutable version and make it the one new tickets use."""
    given = template
    template = TicketTemplate.objects.select_for_update().get(pk=template.pk)
    fields = schema.schema_validate(template.draft_fields)
    if not fields:
        raise ValidationError({"fields": _("Add at least one field before publishing.")})
    if template.current_version is not None and template.current_version.fields == fields:
        raise ValidationError({"fields": _("Nothing changed since version %(n)d.") % {
            "n": template.current_version.number}})
    last = template.versions.aggregate(n=Max("number"))["n"] or 0
    version = TemplateVersion.objects.create(
        tenant_id=template.tenant_id, template=template, number=last + 1, fields=fields, published_by=actor,
    )
    template.current_version = version
    template.save(update_fields=["current_version", "updated_at"])
    given.current_version = version  # the caller's instance is current too
    return version


def template_export(*, template):
    """A portable description of a template (its draft), for JSON or YAML files."""
    return {
        "format": EXPORT_FORMAT,
        "name": template.name,
        "slug": template.slug,
        "category": {"code": template.category.code, "name": template.category.name},
        "description": template.description,
        "default_priority": template.default_priority,
        "number_prefix": template.number_prefix,
        "is_public": template.is_public,
        "site_photos_public": template.site_photos_public,
        "fields": template.draft_fields,
    }


@transaction.atomic
def template_import(*, tenant, payload, publish=False, actor=None):
    """Create or update a template from an export (or a preset). Everything is validated before
    anything is written; an existing template with the slug gets a new draft."""
    if not isinstance(payload, dict):
        raise ValidationError(_("The file does not describe a ticket template."))
    if payload.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise ValidationError(_("Unknown template format “%(format)s”.") % {"format": payload.get("format")})
    missing = [key for key in ("name", "category", "fields") if not payload.get(key)]
    if missing:
        raise ValidationError(_("The file lacks: %(keys)s.") % {"keys": ", ".join(missing)})
    category_data = payload["category"]
    if not isinstance(category_data, dict) or not category_data.get("code") or not category_data.get("name"):
        raise ValidationError(_("The category needs a code and a name."))
    priority = payload.get("default_priority", Priority.NORMAL)
    if priority not in Priority.values:
        raise ValidationError(_("Unknown priority “%(p)s”.") % {"p": priority})
    fields = schema.schema_validate(payload["fields"])
    category = category_get_or_create(tenant=tenant, code=str(category_data["code"])[:30],
                                      name=str(category_data["name"])[:30])
    values = {
        "name": str(payload["name"])[:60], "category": category, "description": str(payload.get("description", "")),
        "default_priority": priority, "number_prefix": str(payload.get("number_prefix", "GD"))[:8],
        "is_public": bool(payload.get("is_public", False)),
        "site_photos_public": bool(payload.get("site_photos_public", True)),
    }
    slug = str(payload.get("slug") or slugify(values["name"]) or f"t{secrets.token_hex(3)}")[:50]
    template = TicketTemplate.objects.filter(slug=slug).first()
    if template is None:
        template = template_create(tenant=tenant, slug=slug, fields=fields, **values)
    else:
        template_update(template=template, **values)
        template_draft_set(template=template, fields=fields)
    if publish:
        template_publish(template=template, actor=actor)
    return template


@transaction.atomic
def template_from_preset(*, tenant, preset_slug, actor=None, publish=True):
    preset = preset_get(preset_slug)
    if preset is None:
        raise ValidationError({"preset": _("Unknown preset.")})
    return template_import(tenant=tenant, payload=preset, publish=publish, actor=actor)


@transaction.atomic
def category_ensure(*, tenant, name):
    """The tenant's category called `name`, created (with a code made from the name) if there is
    none: the builder's "new category" box, where a manager types 巡检 and expects no code."""
    name = (name or "").strip()
    if not name or len(name) > 30:
        raise ValidationError({"name": _("Give the category a name of 1 to 30 characters.")})
    category = Category.objects.filter(name=name).first()
    if category is not None:
        return category
    base = slugify(name)[:22] or f"c-{secrets.token_hex(3)}"
    code, n = base, 2
    while Category.objects.filter(code=code).exists():
        code, n = f"{base}-{n}", n + 1
    return category_get_or_create(tenant=tenant, code=code, name=name,
                                  order=(Category.objects.aggregate(n=Max("order"))["n"] or 0) + 1)


def _free_slug(base):
    base = base[:46]
    slug, n = base, 2
    while TicketTemplate.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def template_preset_create(*, tenant, preset_slug, actor=None, publish=False):
    """A new template from an industry preset, whatever the tenant already has: a free slug
    (canyin_tousu, canyin_tousu-2 …) and the tenant's own category when one has the preset's
    code or name, so starting from a preset twice, or in a tenant with a 投诉 category, works."""
    preset = preset_get(preset_slug)
    if preset is None:
        raise ValidationError({"preset": _("Unknown preset.")})
    wanted = preset["category"]
    category = (Category.objects.filter(code=wanted["code"]).first()
                or Category.objects.filter(name=wanted["name"]).first())
    if category is not None:
        preset["category"] = {"code": category.code, "name": category.name}
    preset["slug"] = _free_slug(preset["slug"])
    return template_import(tenant=tenant, payload=preset, publish=publish, actor=actor)


@transaction.atomic
def template_import_into(*, template, payload, publish=False, actor=None):
    """Import a file into this template (the builder's Import): the file's settings and fields
    replace the template's, whatever slug the file names."""
    if isinstance(payload, dict):
        payload = {**payload, "slug": template.slug}
    return template_import(tenant=template.tenant, payload=payload, publish=publish, actor=actor)


def _draft_locked(template):
    return TicketTemplate.objects.select_for_update().get(pk=template.pk)


def _draft_store(template, locked, fields):
    template_draft_set(template=locked, fields=fields)
    template.draft_fields, template.updated_at = locked.draft_fields, locked.updated_at
    return template


@transaction.atomic
def template_field_save(*, template, field, original_key=""):
    """Add `field` to the draft, or replace the field called `original_key` with it. A renamed
    key is renamed in the formulas that use it too. The whole draft is validated; on any problem
    nothing is written."""
    locked = _draft_locked(template)
    fields = [dict(f) for f in locked.draft_fields]
    if original_key:
        index = next((i for i, f in enumerate(fields) if f.get("key") == original_key), None)
        if index is None:
            raise ValidationError(_("The field “%(key)s” is no longer in the draft; reload the page.")
                                  % {"key": original_key})
        fields[index] = field
        new_key = field.get("key") if isinstance(field, dict) else None
        if new_key and new_key != original_key:
            for other in fields:
                formula = (other.get("options") or {}).get("formula") if other.get("type") == "computed" else None
                if not formula:
                    continue
                formula = dict(formula)
                if formula.get("field") == original_key:
                    formula["field"] = new_key
                if isinstance(formula.get("fields"), list):
                    formula["fields"] = [new_key if k == original_key else k for k in formula["fields"]]
                other["options"] = {**other["options"], "formula": formula}
    else:
        fields.append(field)
    return _draft_store(template, locked, fields)


@transaction.atomic
def template_field_delete(*, template, key):
    """Remove a field from the draft (a formula still using it makes this an error)."""
    locked = _draft_locked(template)
    fields = [f for f in locked.draft_fields if f.get("key") != key]
    if len(fields) == len(locked.draft_fields):
        raise ValidationError(_("The field “%(key)s” is no longer in the draft; reload the page.") % {"key": key})
    return _draft_store(template, locked, fields)


@transaction.atomic
def template_fields_reorder(*, template, keys):
    """Put the draft's fields in the order of `keys`, which must name each field exactly once."""
    locked = _draft_locked(template)
    by_key = {f.get("key"): f for f in locked.draft_fields}
    keys = list(keys)
    if len(keys) != len(set(keys)) or set(keys) != set(by_key):
        raise ValidationError(_("The field order does not match the draft; reload the page and try again."))
    return _draft_store(template, locked, [by_key[k] for k in keys])


# --- classification rules ---------------------------------------------------------------

def _keywords(raw):
    words = raw.replace("，", ",").replace("、", ",").split(",") if isinstance(raw, str) else list(raw or [])
    words = [str(w).strip() for w in words if str(w).strip()]
    if not words:
        raise ValidationError({"keywords": _("Give at least one keyword.")})
    if len(words) > 50 or any(len(w) > 30 for w in words):
        raise ValidationError({"keywords": _("At most 50 keywords of up to 30 characters each.")})
    return words


@transaction.atomic
def classification_rule_save(*, tenant, rule=None, name, keywords, match="any", set_template=None,
                             set_category=None, set_priority="", tag_names=(), order=100, is_active=True):
    for obj, field in ((set_template, "set_template"), (set_category, "set_category")):
        if obj is not None and obj.tenant_id != tenant.pk:
            raise ValidationError({field: invalid_choice()})
    if set_priority and set_priority not in Priority.values:
        raise ValidationError({"set_priority": _("Unknown priority.")})
    if not (set_template or set_category or set_priority or tag_names):
        raise ValidationError({"set_priority": _("A rule must set a template, category, priority or tags.")})
    rule = rule or ClassificationRule(tenant=tenant)
    rule.name, rule.keywords, rule.match = name, _keywords(keywords), match
    rule.set_template, rule.set_category, rule.set_priority = set_template, set_category, set_priority
    rule.order, rule.is_active = order, is_active
    _clean(rule)
    rule.save()
    rule.add_tags.set([tag_get_or_create(tenant=tenant, name=n) for n in tag_names if n.strip()])
    return rule


# --- API keys ---------------------------------------------------------------------------

def api_key_hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, tenant, name, actor=None):
    """A new key; the full secret is returned once and only its hash is kept."""
    prefix = secrets.token_hex(4)
    secret = f"{prefix}.{secrets.token_urlsafe(32)}"
    key = ApiKey(tenant=tenant, name=name, prefix=prefix, hashed_key=api_key_hash(secret), created_by=actor)
    _clean(key)
    key.save()
    return key, secret


# How fresh "last used" on the API keys page is: a write on every call would cost each request
# an UPDATE (and serialise a busy integrator's calls on the key's row) for a date shown to the minute.
API_KEY_USE_RESOLUTION = datetime.timedelta(minutes=5)


def api_key_mark_used(*, key_id, last_used_at, now=None):
    """Record that a key authenticated a request, at most once per API_KEY_USE_RESOLUTION (one
    UPDATE, in the key's tenant scope). Returns whether it wrote."""
    now = now or timezone.now()
    if last_used_at is not None and now - last_used_at < API_KEY_USE_RESOLUTION:
        return False
    ApiKey.objects.filter(pk=key_id).update(last_used_at=now)
    return True


@transaction.atomic
def api_key_revoke(*, key):
    key.is_active = False
    key.save(update_fields=["is_active"])
    return key
