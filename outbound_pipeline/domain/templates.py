"""Message templates with `{{variable}}` placeholders: the values a lead offers and the substitution that fills them.

Rendering substitutes text and nothing else. A template is scanned once; each
placeholder is replaced by its value as plain text, so a value that itself holds
`{{...}}` is printed as written, and no name is ever evaluated, formatted or
looked up as an attribute. A placeholder without a value stays visible in the
output and is listed in `Rendered.missing`, so a reviewer sees the gap instead
of a message that silently lost a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from outbound_pipeline.domain.spec import Step

# `{{ name }}`: anything but braces inside, spaces around the name allowed; `{{}}` and `{{  }}` are plain text.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s](?:[^{}]*[^{}\s])?)\s*\}\}")

# Lead columns offered to templates under their own name and as `contact.<name>`.
LEAD_FIELDS = ("first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email")

# Names every context holds (possibly empty), besides the lead's custom columns.
BUILTIN_VARIABLES: tuple[str, ...] = (
    *LEAD_FIELDS, "name", "full_name",
    *(f"contact.{f}" for f in (*LEAD_FIELDS, "name", "full_name")),
    "campaign.name", "step.name", "company.name",
)

_STATIC = "static:"
_CUSTOM = "custom."


@dataclass(frozen=True)
class Rendered:
    """A rendered text and the variables it could not fill (normalised names, first appearance first)."""

    text: str
    missing: tuple[str, ...]


def normalise_name(name: str) -> str:
    """The lookup key of a variable name: case-insensitive, spaces around dots dropped, other spaces and hyphens as `_`.

    `{{ Deal Stage }}`, `{{deal-stage}}` and `{{deal_stage}}` all name the column the importer stored as `deal_stage`.
    """
    key = re.sub(r"\s*\.\s*", ".", name.strip().lower())
    return re.sub(r"[\s-]+", "_", key)


def text_value(value: object) -> str:
    """A value as template text: None, NaN, NaT and pandas' NA become '' (missing), anything else its stripped `str`."""
    if value is None:
        return ""
    try:
        if value != value:  # NaN and NaT are the values not equal to themselves
            return ""
    except TypeError:  # pandas.NA refuses to be a boolean
        return ""
    return str(value).strip()


def template_context(
    lead: Mapping[str, object],
    custom: Mapping[str, object],
    campaign_name: str,
    step_name: str,
    organisation_name: str,
) -> dict[str, str]:
    """Every variable a template may use for one lead, as text ('' where the lead has no value).

    `name` is first and last name together; each lead field is also `contact.<field>`; a custom
    column is offered as `<column>` and `custom.<column>`, but never hides a lead field or a
    built-in name (those always mean the lead's own contact data). `company.name` is the sending
    organisation, while `company` and `contact.company` are the lead's employer.
    """
    context: dict[str, str] = {}
    for key, value in custom.items():
        name = normalise_name(str(key))
        context[f"{_CUSTOM}{name}"] = text_value(value)
        if name not in BUILTIN_VARIABLES:
            context[name] = text_value(value)
    fields = {f: text_value(lead.get(f)) for f in LEAD_FIELDS}
    full_name = " ".join(part for part in (fields["first_name"], fields["last_name"]) if part)
    for name, value in {**fields, "name": full_name, "full_name": full_name}.items():
        context[name] = value
        context[f"contact.{name}"] = value
    context["campaign.name"] = text_value(campaign_name)
    context["step.name"] = text_value(step_name)
    context["company.name"] = text_value(organisation_name)
    return context


def _lookup_table(context: Mapping[str, str]) -> dict[str, str]:
    """Context keyed by normalised name; when two keys normalise alike, a non-empty value wins over an empty one."""
    table: dict[str, str] = {}
    for key, value in context.items():
        name = normalise_name(str(key))
        if not table.get(name):
            table[name] = text_value(value)
    return table


def render(template: str, context: Mapping[str, str]) -> Rendered:
    """Fill each `{{name}}` of `template` from `context` in one pass; unknown or empty ones stay as written and are listed."""
    table = _lookup_table(context)
    missing: dict[str, None] = {}

    def fill(match: re.Match[str]) -> str:
        name = normalise_name(match.group(1))
        value = table.get(name, "")
        if not value:
            missing.setdefault(name)
            return match.group(0)
        return value

    return Rendered(PLACEHOLDER.sub(fill, template), tuple(missing))


def variables_in(template: str) -> list[str]:
    """The normalised variable names a template uses, each once, in order of first appearance."""
    return list(dict.fromkeys(normalise_name(m.group(1)) for m in PLACEHOLDER.finditer(template)))


def unknown_variables(template: str, available: Iterable[str]) -> list[str]:
    """Variables of `template` that no lead can fill: not built in and not among `available` (e.g. a lead list's custom columns).

    Lets a campaign file be refused for a typo such as `{{frist_name}}` before any draft is written.
    """
    known = {normalise_name(n) for n in (*BUILTIN_VARIABLES, *available)}
    known |= {f"{_CUSTOM}{normalise_name(n)}" for n in available}
    return [name for name in variables_in(template) if name not in known]


def _slot_order(slot: str) -> tuple[bool, int, str]:
    return (not slot.isdigit(), int(slot) if slot.isdigit() else 0, slot)


def whatsapp_slots(mapping: Mapping[str, str], context: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Values for a WhatsApp template's positional slots, and the slots left unfilled.

    Each slot names its source: a variable (`first_name`, `contact.company`, `deal_stage`), a custom
    attribute (`custom.deal_stage`) or a literal (`static:Friday`, taken as written). An unfilled slot
    keeps its own placeholder (`{{2}}`) so the gap shows in the message rather than an empty word.
    """
    table = _lookup_table(context)
    values: dict[str, str] = {}
    missing: list[str] = []
    for slot in sorted(mapping, key=_slot_order):
        source = str(mapping[slot])
        if source.startswith(_STATIC):
            value = source[len(_STATIC):]
        else:
            wrapped = PLACEHOLDER.fullmatch(source.strip())
            value = table.get(normalise_name(wrapped.group(1) if wrapped else source), "")
        if value.strip():
            values[slot] = value
        else:
            values[slot] = "{{" + slot + "}}"
            missing.append(slot)
    return values, tuple(missing)


# ------------------------------------------------------------------------------------------ template steps

# WhatsApp accepts free text only within 24 hours of the customer's last message; outside it, an approved template.
WHATSAPP_WINDOW = timedelta(hours=24)
MISSING_FLAG = "template_variable_missing:"  # + variable name: a draft whose text still shows a placeholder


def whatsapp_window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """True when the lead wrote to us on WhatsApp within the last 24 hours (free text allowed)."""
    return last_inbound_at is not None and timedelta(0) <= now - last_inbound_at < WHATSAPP_WINDOW


def reachable_channel(channels: Sequence[str], email: str | None, phone: str | None, opted_out: Iterable[str] = ()) -> str | None:
    """The first of the step's channels the lead has an address for and did not opt out of; None when there is none.

    A template step is never rerouted beyond its own channels: a lead the step cannot reach fails.
    """
    blocked = set(opted_out)
    if "all" in blocked:
        return None
    have = {"email": bool(email), "whatsapp": bool(phone), "sms": bool(phone)}
    return next((c for c in channels if have.get(c) and c not in blocked), None)


def unreachable_reason(channels: Sequence[str], email: str | None = None, phone: str | None = None,
                       opted_out: Iterable[str] = ()) -> str:
    """Why a lead cannot receive a step, in the words the funnel shows: an opt-out of its channels, or a missing address."""
    blocked = set(opted_out)
    have = {"email": bool(email), "whatsapp": bool(phone), "sms": bool(phone)}
    if "all" in blocked or any(have.get(c) for c in channels):
        refused = "every channel" if "all" in blocked else ", ".join(c for c in channels if c in blocked)
        return f"opted out of {refused}"
    wanted = set(channels)
    if wanted <= {"whatsapp", "sms"}:
        return "no phone number"
    if wanted == {"email"}:
        return "no email address"
    return "no email address or phone number"


@dataclass(frozen=True)
class TemplateMessage:
    """One lead's rendered message for a template step.

    `kind` says what goes out: "text" (the step's template as free text) or "whatsapp_template"
    (WhatsApp outside the 24-hour window: the approved Content template, its body filled from the slots).
    `missing` holds the variables left visible; `flags` are the draft's reviewer warnings.
    """

    channel: str
    kind: str
    subject: str | None
    body: str
    missing: tuple[str, ...]
    media_url: str | None = None  # WhatsApp: the step's free-text media, or the Content template's media with its slots filled
    buttons: tuple[str, ...] = ()  # WhatsApp: the Content template's quick-reply titles, slots filled

    @property
    def flags(self) -> list[str]:
        return [f"{MISSING_FLAG}{name}" for name in self.missing]


def _slot_source(source: str) -> str:
    """The variable name a WhatsApp slot reads, for the missing-variable flag."""
    wrapped = PLACEHOLDER.fullmatch(source.strip())
    return normalise_name(wrapped.group(1) if wrapped else source)


def render_step(step: Step, variant: str | None, channel: str, context: Mapping[str, str], window_open: bool) -> TemplateMessage:
    """The message a template step sends one lead on `channel`: subject and text rendered in one pass each.

    On WhatsApp outside the 24-hour window the provider sends the step's Content template; when the
    campaign file gives that template's `body`, the draft records it filled, so the reviewer approves
    and the sends table keeps the words the lead actually receives.
    """
    text, subject = step.message_template(variant)
    content = step.template_for(variant)
    if channel == "whatsapp" and not window_open and content is not None and content.body:
        values, unfilled = whatsapp_slots(content.variables, context)
        body = render(content.body, values)  # slot values are text, not re-read as placeholders
        media = render(content.media_url, values).text if content.media_url else None
        buttons = tuple(render(title, values).text for title in content.buttons)
        missing = [_slot_source(content.variables[s]) for s in unfilled] + [m for m in body.missing if m not in content.variables]
        return TemplateMessage(channel, "whatsapp_template", None, body.text, tuple(dict.fromkeys(missing)), media, buttons)
    rendered = render(text, context)
    title = render(subject, context) if channel == "email" and subject else None
    both = (*(title.missing if title else ()), *rendered.missing)
    media = step.media_url if channel == "whatsapp" else None
    return TemplateMessage(channel, "text", title.text if title else None, rendered.text, tuple(dict.fromkeys(both)), media)


def composed_steps(steps: Sequence[Step], names: Sequence[str]) -> list[str]:
    """The names of the steps whose messages are composed per lead (an `intent`, no `template`): the only ones research serves.

    A campaign of template steps alone needs no research at launch, and costs none.
    """
    return [name for name, step in zip(names, steps, strict=True) if step.template is None and step.intent.strip()]


def _template_texts(step: Step) -> list[tuple[str, str]]:
    """(where, text) of every `{{variable}}` text of a step: template and subject, its variants' own, WhatsApp slot sources."""
    texts: list[tuple[str, str]] = []
    if step.template is not None:
        texts += [("template", step.template), *([("subject", step.subject)] if step.subject else [])]
    for variant in step.variants:
        texts += [(f"variant {variant.name} template", variant.template)] if variant.template else []
        texts += [(f"variant {variant.name} subject", variant.subject)] if variant.subject else []
    contents = [("whatsapp_template", step.whatsapp_template)] + [
        (f"variant {v.name} whatsapp_template", v.whatsapp_template) for v in step.variants]
    for where, content in contents:
        for slot, source in (content.variables.items() if content else ()):
            if not source.startswith(_STATIC):
                texts.append((f"{where} slot {slot}", "{{" + _slot_source(source) + "}}"))
    return texts


def unfillable_variables(steps: Sequence[Step], names: Sequence[str], columns: Iterable[str]) -> list[str]:
    """One line per step and variable that no contact can fill: not a contact field, not a built-in name (`campaign.name`,
    `company.name`, ...), and not a custom column with a value in the campaign's lists (`columns`). Empty when all can be filled.
    """
    columns = sorted({normalise_name(c) for c in columns})
    shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "") if columns else "none"
    problems: list[str] = []
    for name, step in zip(names, steps, strict=True):
        for where, text in _template_texts(step):
            for variable in unknown_variables(text, columns):
                problems.append(f"step {name!r} ({where}): {{{{{variable}}}}} is not a contact field, a built-in name or a custom "
                                f"column of the campaign's lists (their columns: {shown})")
    return problems
