"""The `dispatch` handler rule kind (智能派单): its summary, the reasons it stores on the task
(codes and parameters, rendered in the reader's language) and the choice the engine asks for.
Its parameter form is workflow/dispatch_form.py, what it reads workflow/dispatch_loader.py,
the ranking workflow/dispatch.py (a pure function)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.models import Role, Skill

from . import dispatch
from .dispatch_form import DispatchRuleForm
from .dispatch_loader import dispatch_evaluate, rule_key
from .routing import MAX_REASONS, HandlerChoice, HandlerRuleKind, handler_rule_register

STEP_LABELS = {"store": gettext_lazy("the ticket's store"), "region": gettext_lazy("the ticket's region"),
               "nearby": gettext_lazy("within %(km)s km"), "tenant": gettext_lazy("the whole company")}


def _km(value: float | str | None) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return f"{value:g}"


@handler_rule_register
class DispatchRule(HandlerRuleKind):
    """Smart dispatch: the best eligible person by distance, load and recent speed, widening
    from the ticket's store to its region, nearby stores and the whole company."""

    name = "dispatch"
    label = gettext_lazy("Smart dispatch")
    form_class = DispatchRuleForm
    reason_texts = {
        "picked": gettext_lazy("Picked"),
        "ranked": gettext_lazy("Lower score than the one picked"),
        "tie": gettext_lazy("Same score as the one picked; round-robin chose the other"),
        "off_duty": gettext_lazy("Off duty"),
        "full": gettext_lazy("Full: %(load)d open, limit %(cap)d"),
        "no_skill": gettext_lazy("Lacks the skill %(missing)s"),
        "not_senior": gettext_lazy("Not senior: this customer's tier is served by senior staff only"),
        "nobody": gettext_lazy("Nobody eligible (looked in %(steps)s; %(n)d considered, mostly: %(main)s)"),
        "nobody_empty": gettext_lazy("Nobody with the role %(role)s in %(steps)s"),
    }
    cause_texts = {"off_duty": gettext_lazy("off duty"), "full": gettext_lazy("full"),
                   "no_skill": gettext_lazy("lacking the skill"), "not_senior": gettext_lazy("not senior")}
    piece_texts = {
        "where_store": gettext_lazy("works in the ticket's store %(place)s"),
        "where_region": gettext_lazy("covers the ticket's region %(place)s"),
        "where_nearby": gettext_lazy("within %(radius)s km"),
        "where_tenant": gettext_lazy("elsewhere in the company"),
        "overflow": gettext_lazy("cross-store support: nobody eligible in %(first)s"),
        "distance": gettext_lazy("%(km)s km away"),
        "no_distance": gettext_lazy("distance unknown"),
        "load": gettext_lazy("%(load)d open now (limit %(cap)d)"),
        "skills": gettext_lazy("skills %(skills)s"),
        "speed": gettext_lazy("first action after %(min)s min (median over 3 days)"),
        "no_speed": gettext_lazy("no responses in 3 days"),
        "senior": gettext_lazy("senior staff for a VIP customer"),
        "score": gettext_lazy("score %(score)s"),
        "best": gettext_lazy("the one picked scored %(best)s"),
    }

    def form_data(self, rule):
        data = super().form_data(rule)
        if isinstance(data.get("overflow"), list):
            data["overflow"] = ", ".join(str(s) for s in data["overflow"])
        mapping = data.get("skill_map")
        if isinstance(mapping, dict):
            ids = [v for v in mapping.values() if isinstance(v, int)]
            names = dict(Skill.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
            # An id that is not this tenant's skill stays "#id", which the form refuses by name.
            data["skill_map"] = "\n".join(f"{k}={names.get(v, f'#{v}')}" for k, v in mapping.items())
        return data

    def params(self, cleaned_data):
        params = {"role": cleaned_data["role"], "overflow": cleaned_data["overflow"],
                  "on_duty_only": bool(cleaned_data.get("on_duty_only")),
                  "under_capacity": bool(cleaned_data.get("under_capacity")),
                  "round_robin": bool(cleaned_data.get("round_robin"))}
        for key in ("radius_km", "w_distance", "w_load", "w_speed", "senior_bonus"):
            if cleaned_data.get(key) is not None:
                params[key] = cleaned_data[key]
        if cleaned_data.get("skills"):
            params["skills"] = sorted(s.pk for s in cleaned_data["skills"])
        for key in ("skill_by", "skill_field", "senior_for"):
            if cleaned_data.get(key):
                params[key] = cleaned_data[key]
        if cleaned_data.get("skill_map"):
            params["skill_map"] = cleaned_data["skill_map"]
        if cleaned_data.get("senior_skill") is not None:
            params["senior_skill"] = cleaned_data["senior_skill"].pk
        return params

    def summary(self, rule, users=None):
        role = dict(Role.choices).get(rule.get("role"), rule.get("role"))
        steps = " → ".join(self._step_label(s, rule.get("radius_km") or 30) for s in rule.get("overflow") or [])
        return _("Smart dispatch: %(role)s, %(steps)s") % {"role": role, "steps": steps}

    @staticmethod
    def _step_label(step, radius):
        label = STEP_LABELS.get(step)
        return str(label) % {"km": _km(radius)} if label is not None and step == "nearby" else str(label or step)

    # --- reasons ---

    def reason_why(self, reason):
        code = reason.get("code")
        params = dict(reason.get("params") or {})
        # Step and role names are stored as codes and named here, in the reader's language.
        if params.get("cause") in self.cause_texts:
            params["main"] = str(self.cause_texts[params["cause"]])
        if isinstance(params.get("tried"), list):
            params["steps"] = " → ".join(self._step_label(s, params.get("radius")) for s in params["tried"])
        if isinstance(params.get("first_step"), str):
            params["first"] = self._step_label(params["first_step"], params.get("radius"))
        if params.get("role_code"):
            params["role"] = str(dict(Role.choices).get(params["role_code"], params["role_code"]))
        head = self.reason_texts.get(code)
        if head is None:
            return ""
        try:
            head_text = str(head) % params if "%(" in str(head) else str(head)
        except (KeyError, TypeError, ValueError):
            head_text = str(head)
        pieces = []
        for key in params.get("pieces") or []:
            text = self.piece_texts.get(key)
            if text is None:
                continue
            try:
                pieces.append(str(text) % params)
            except (KeyError, TypeError, ValueError):
                continue
        if not pieces:
            return head_text
        if code in ("picked", "ranked", "tie"):
            return _("%(head)s: %(pieces)s") % {"head": head_text, "pieces": _(", ").join(pieces)}
        return _("%(head)s (%(pieces)s)") % {"head": head_text, "pieces": _(", ").join(pieces)}

    def _reason(self, scored: dispatch.Scored, code: str, context: dict, decision: dispatch.Decision, **params):
        c = scored.candidate
        pieces = [f"where_{scored.step}"]
        params.update(place=context["store"] if scored.step == "store" else context["region"],
                      radius=_km(context["radius"]))
        if code in ("picked", "ranked", "tie") and decision.overflowed and scored.step == decision.step:
            pieces.append("overflow")
            params["first_step"] = decision.tried[0]
        if scored.distance_km is not None:
            pieces.append("distance")
            params["km"] = _km(scored.distance_km)
        elif code in ("picked", "ranked", "tie"):
            pieces.append("no_distance")
        pieces.append("load")
        params.update(load=c.load, cap=c.capacity)
        if context["skills"] and code in ("picked", "ranked", "tie"):
            pieces.append("skills")
            params["skills"] = "、".join(context["skills"].values())
        if code == "no_skill":
            params["missing"] = "、".join(context["skills"].get(s, f"#{s}") for s in scored.missing)
        if c.speed_minutes is not None:
            pieces.append("speed")
            params["min"] = _km(c.speed_minutes)
        elif code in ("picked", "ranked", "tie"):
            pieces.append("no_speed")
        if "senior" in scored.parts:
            pieces.append("senior")
        if code in ("picked", "ranked", "tie"):
            pieces.append("score")
            params["score"] = f"{scored.score:g}"
            params["parts"] = scored.parts
        if code == "ranked" and decision.picked is not None:
            pieces.append("best")
            params["best"] = f"{decision.picked.score:g}"
        params["pieces"] = pieces
        reason = {"user_id": c.user_id, "name": c.name, "picked": scored.picked, "rule": self.name, "code": code,
                  "params": params}
        reason["why"] = self.reason_why(reason)
        return reason

    def reasons_for(self, decision: dispatch.Decision, context: dict, rule: dict) -> list[dict]:
        reasons = []
        # Only the first MAX_REASONS are kept, so only they are worded (a walk to the whole
        # company leaves out thousands).
        for scored in decision.ranked[:MAX_REASONS]:
            code = "picked" if scored.picked else ("tie" if scored.tie else "ranked")
            reasons.append(self._reason(scored, code, context, decision))
        for scored in decision.excluded[:MAX_REASONS - len(reasons)]:
            reasons.append(self._reason(scored, scored.excluded, context, decision))
        if decision.picked is None:
            where = {"tried": list(decision.tried), "radius": _km(context["radius"])}
            if decision.excluded:
                params = {**where, "n": len(decision.excluded), "cause": decision.why_nobody}
                code = "nobody"
            else:
                params = {**where, "role_code": rule.get("role") or "", "cause": "nobody"}
                code = "nobody_empty"
            reason = {"user_id": None, "name": "", "picked": False, "rule": self.name, "code": code, "params": params}
            reason["why"] = self.reason_why(reason)
            reasons.insert(0, reason)
        return reasons

    # --- choosing ---

    def choose(self, rule, ctx, *, many):
        from .models import DispatchRotation

        ticket = ctx.ticket
        key = rule_key(rule, ticket.template_id)

        def rotation():  # read only when equal scores need the round-robin
            return DispatchRotation.objects.filter(rule_key=key).values_list("last_user_id", flat=True).first()

        decision, context = dispatch_evaluate(rule, ticket, rotation_after=rotation)
        reasons = self.reasons_for(decision, context, rule)
        if decision.picked is None:
            return HandlerChoice(reasons=reasons, summary=reasons[0]["why"])
        ids = [s.candidate.user_id for s in decision.ranked] if many else [decision.picked.candidate.user_id]
        users = {u.pk: u for u in get_user_model().objects.filter(pk__in=ids)}
        picked_id = decision.picked.candidate.user_id
        if not many and any(s.tie for s in decision.ranked):
            DispatchRotation.objects.update_or_create(tenant_id=ticket.tenant_id, rule_key=key,
                                                      defaults={"last_user_id": picked_id})
        return HandlerChoice(users=[users[i] for i in ids if i in users], reasons=reasons,
                             summary=_("%(name)s: %(why)s") % {"name": decision.picked.candidate.name,
                                                               "why": reasons[0]["why"]})
