"""Fixtures the review stage tests also offer to the review commands' tests."""

from tests.defs.s4_review.conftest import drafted  # noqa: F401
