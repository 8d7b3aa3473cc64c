"""Rule-based reply intent: the offline classifier."""

from __future__ import annotations

from outbound_pipeline.domain.intents import classify_intent


class RuleIntentClassifier:
    """IntentClassifier applying the keyword rules of `domain.intents`."""

    name = "rules"

    def classify(self, text: str) -> str:
        return classify_intent(text)
