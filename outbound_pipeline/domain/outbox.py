"""What a draft's review decision and a send's status mean for the outbox, named once for every stage that asks."""

from __future__ import annotations

# The review decisions that let a draft go out (an edited draft goes out with the reviewer's text).
SENDABLE_DECISIONS = ("approved", "edited")
# In the outbox: not handed to a provider yet (`pending`), or handed over with no answer recorded (`sending`).
QUEUED_STATUSES = ("pending", "sending")
