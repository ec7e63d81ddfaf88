"""The detector against the corpus: every personal value found with its kind, every clean
look-alike left alone, and redaction that leaves no part of a value behind."""
from __future__ import annotations

import re

import pytest

from dataplane.privacy import find_pii, normalise, pii_kinds, redact
from tests.privacy_corpus import CASES, Case


def test_the_corpus_is_large_and_mixed() -> None:
    assert len(CASES) >= 150
    assert sum(c.clean for c in CASES) >= 40
    assert sum(bool(re.search("[가-힣]", c.text)) for c in CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.text[:40])
def test_detector_on_the_corpus(case: Case) -> None:
    if case.clean:
        assert find_pii(case.text) == []
    else:
        assert case.kind in pii_kinds(case.text)


@pytest.mark.parametrize("case", [c for c in CASES if not c.clean], ids=lambda c: c.text[:40])
def test_redaction_removes_the_whole_value(case: Case) -> None:
    assert case.value is not None
    assert case.kind is not None
    redacted = redact(case.text)
    value = normalise(case.value)
    assert value not in redacted
    # No run of 4+ digits or 8+ key characters of the value survives.
    for fragment in re.findall(r"\d{4,}|[A-Za-z0-9_]{8,}", value):
        assert fragment not in redacted, fragment
    assert f"[{case.kind.upper()}]" in redacted or any(f"[{k.upper()}]" in redacted for k in pii_kinds(case.text))
