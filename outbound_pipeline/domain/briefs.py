"""What each A/B variant of a step asks the composer for."""

from __future__ import annotations

from outbound_pipeline.domain.spec import Step


def variant_steps(step: Step) -> dict[str | None, Step]:
    """The step as the leads of each variant see it (key None: leads without a variant).

    A variant's `intent`, `tone` and `cta` replace the step's own; what it leaves out stays the step's.
    """
    steps: dict[str | None, Step] = {None: step}
    for v in step.variants:
        steps[v.name] = step.model_copy(update={"intent": v.intent or step.intent, "tone": v.tone or step.tone, "cta": v.cta or step.cta})
    return steps
