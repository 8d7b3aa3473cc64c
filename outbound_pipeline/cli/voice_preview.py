"""`outbound campaign preview` of a voice step: each contact's opening line and voicemail message, as the agent says them."""

from __future__ import annotations

from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.templates import render, text_value
from outbound_pipeline.engine.compose import lead_context, organisation_name


def voice_preview(spec: CampaignSpec, shown: list[dict], total: int, source: str) -> str:
    step, voice = spec.steps[0], spec.voice
    assert step.agent is not None and voice is not None
    organisation = organisation_name(spec)
    lines = [f"{spec.name} · step {spec.step_names[0]} · a call held by agent {step.agent.name} ({step.agent.prompt_path}) · "
             f"channels: voice · max_concurrent {voice.max_concurrent}, retry_attempts {voice.retry_attempts}",
             f"{len(shown)} of {total} contacts, from {source}; nothing is written."]
    for lead in shown:
        context = lead_context(lead, spec, spec.step_names[0], organisation)
        phone = text_value(lead.get("phone"))
        lines += ["", "-" * 78, f"{context.get('name') or lead.get('lead_id')} · call to {phone or 'FAILED: no phone number'}"]
        for label, template in (("opening", step.agent.opening_line), ("voicemail", step.agent.voicemail_message)):
            rendered = render(template, context)
            lines.append(f"    {label}: {rendered.text}" + (f"  (missing: {', '.join(rendered.missing)})" if rendered.missing else ""))
    return "\n".join(lines)
