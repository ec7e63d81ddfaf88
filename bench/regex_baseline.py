"""The regex detector the gateway used before `dataplane/privacy.py` moved to validators
(phonenumbers, python-stdnum). Kept here only as the baseline of `bench/privacy.py`; nothing
in the product imports it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Korean mobile (010-1234-5678, 01012345678, +82 10 1234 5678) and landlines (02-123-4567,
# 031-1234-5678), and international numbers written with a leading +.
_PHONE_KR = re.compile(
    r"(?<!\d)(?:\+82[\s-]?|0)(?:1[016789]|2|[3-6][1-5]|70)[\s.-]?\d{3,4}[\s.-]?\d{4}(?!\d)"
)
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\d)")
_PHONE_NANP = re.compile(r"(?<!\d)\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Resident registration number: YYMMDD-GXXXXXX, G in 1-8 (1-4 citizens, 5-8 foreigners).
_RRN = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{2})[\s-]?([1-8])\d{6}(?!\d)")
_AWS_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])")
_AWS_SECRET = re.compile(r"(?i)aws.{0,20}(?:secret|key).{0,5}[:=]\s*['\"]?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


@dataclass(frozen=True)
class PIIFinding:
    kind: str  # email | phone | card | rrn | aws_key
    start: int
    end: int


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _rrn_date_ok(match: re.Match) -> bool:
    yy, mm, dd, gender = (int(g) for g in match.groups())
    century = 1800 if gender in (9, 0) else 1900 if gender in (1, 2, 5, 6) else 2000
    try:
        date(century + yy, mm, dd)
    except ValueError:
        return False
    return True


def find_pii(text: str) -> list[PIIFinding]:
    findings: list[PIIFinding] = [PIIFinding("email", *match.span()) for match in _EMAIL.finditer(text)]
    findings.extend(PIIFinding("rrn", *match.span()) for match in _RRN.finditer(text) if _rrn_date_ok(match))
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            findings.append(PIIFinding("card", *match.span()))
    for pattern in (_PHONE_KR, _PHONE_INTL, _PHONE_NANP):
        for match in pattern.finditer(text):
            if not _overlaps(findings, match.span()):
                findings.append(PIIFinding("phone", *match.span()))
    for pattern in (_AWS_ACCESS_KEY, _AWS_SECRET):
        findings.extend(PIIFinding("aws_key", *match.span()) for match in pattern.finditer(text))
    return sorted(findings, key=lambda f: f.start)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


def redact(text: str) -> str:
    """Replace every finding by `[KIND]`; used for prompt previews in logs."""
    result, cursor = [], 0
    for finding in _merge(find_pii(text)):
        if finding.start < cursor:
            continue
        result.append(text[cursor : finding.start])
        result.append(f"[{finding.kind.upper()}]")
        cursor = finding.end
    result.append(text[cursor:])
    return "".join(result)


def _overlaps(findings: list[PIIFinding], span: tuple[int, int]) -> bool:
    return any(f.start < span[1] and span[0] < f.end for f in findings)


def _merge(findings: list[PIIFinding]) -> list[PIIFinding]:
    return sorted(findings, key=lambda f: (f.start, -(f.end - f.start)))
