"""Personal-data detection: requests (and answers) that hold personal data never touch the cache.

Text is normalised first (Unicode NFKC, zero-width characters dropped, every dash and space
variant made ASCII), because the same phone number typed in full-width digits or with an en
dash is the same personal data. Then validators decide instead of loose patterns:
`phonenumbers` (Google's libphonenumber) for phone numbers in running text, `python-stdnum`
for check-digit identifiers (cards by Luhn, IBAN, Korean resident and business numbers, US
SSN), `ipaddress` for IP addresses, anchored patterns for secrets whose formats are fixed
by their issuers (AWS, GitHub, Slack, Google, OpenAI, JWT, PEM private keys), Korean
passport, driver's licence and bank-account layouts, and names where the text introduces
them (general name finding needs a language model: the Bedrock guardrail's job). The
coverage follows Microsoft Presidio's predefined recognizers for these entity types.

The detector is deliberately conservative about *misses* (a false positive only costs a cache
hit; a false negative could cache someone's card number). Each finding names its kind so the
log can say why a request bypassed the cache without repeating the data itself.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.exceptions import ValidationError as StdnumInvalid
from stdnum.kr import brn, rrn
from stdnum.us import ssn

# Regions whose national formats (no +country code) count as phone numbers; everything
# written with a leading + is parsed whatever the region.
PHONE_REGIONS = ("KR", "US")

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"))
# NFKC leaves these dashes alone; they all separate digit groups the way "-" does.
_DASHES = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d\u30fc"}
# The ideographic full stop separates the labels of a typed e-mail domain (NFKC leaves it).
_DASHES[ord("\u3002")] = "."
# A separator with spaces around it ("010 - 1234") is still one separator.
_SPACED_SEPARATOR = re.compile(r"(?<=\d)[ \t]*([-./])[ \t]*(?=\d)")
_SPACES_BETWEEN_DIGITS = re.compile(r"(?<=\d) {2,}(?=\d)")
# Typed as separators between digit groups too: a tilde, an underscore, and the Hangul vowel
# ㅡ that Korean keyboards offer where a dash would be.
_OTHER_SEPARATORS = re.compile(r"(?<=\d)[ \t]*[~_\u3161\u1173][ \t]*(?=\d)")  # NFKC turns ㅡ into U+1173


def normalise(text: str) -> str:
    """The text as the detectors read it (and as a redacted preview shows it)."""
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).translate(_DASHES)
    # NFKC maps most space variants to U+0020 already; the rest (and tabs between digits) too.
    text = re.sub(r"[^\S\n]", " ", text)
    text = _OTHER_SEPARATORS.sub("-", text)
    text = _SPACED_SEPARATOR.sub(r"\1", text)
    return _SPACES_BETWEEN_DIGITS.sub(" ", text)


@dataclass(frozen=True)
class PIIFinding:
    kind: str  # see KINDS
    start: int  # offsets into `normalise(text)`
    end: int


KINDS = (
    "name", "email", "phone", "card", "iban", "rrn", "business_number", "ssn", "passport",
    "driver_licence", "bank_account", "ip_address", "mac_address", "secret",
)

# Local part and domain may be Hangul or any letters (EAI/IDN addresses); the top-level domain
# is letters or an A-label (xn--).
_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.(?:xn--[a-z0-9-]+|[^\W\d_]{2,})(?![\w-])", re.IGNORECASE)
# Digit groups separated by one space, dot, slash or dash: a card may be written in any of
# these, and may follow another number ("order 12 4111 1111 1111 1111").
_DIGIT_GROUPS = re.compile(r"(?<![\d])\d+(?:[ ./-]\d+)*(?![\d])")
_RRN = re.compile(r"(?<!\d)(\d{6}) ?-? ?([1-8]\d{6})(?!\d)")
_BRN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{5}(?!\d)")
_BRN_CONTEXT = re.compile(
    r"(?:사업자(?:등록)?\s?번호|business (?:registration )?number|BRN)[^\d\n]{0,20}(\d{10})(?!\d)", re.IGNORECASE
)
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
# Nine bare digits are an SSN only when the text says so.
_SSN_CONTEXT = re.compile(r"(?:SSN|social security(?: number)?|사회보장번호)[^\d\n]{0,20}(\d{9})(?!\d)", re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{1,4}){3,8}\b")
# Korean passports: M/S/R/G/D + 8 digits, or since 2021 + 3 digits, a letter, 4 digits.
_KR_PASSPORT = re.compile(r"(?<![A-Za-z0-9])[MSRGDmsrgd][ -]?\d{3}(?:\d|[A-Za-z])\d{4}(?![A-Za-z0-9])")
_KR_REGIONS = "서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산"
_KR_DRIVER_LICENCE = re.compile(rf"(?<!\d)(?:\d{{2}}|{_KR_REGIONS}) ?-?\d{{2}}-\d{{6}}-\d{{2}}(?!\d)")
# Korean bank accounts have per-bank layouts (110-123-456789, 123456-01-123456,
# 3333-01-1234567); three or four dash-separated groups of 10-14 digits, or any 10-14 digit
# run right after an account word.
_BANK_ACCOUNT = re.compile(r"(?<![\d-])\d{3,6}-\d{2,6}-\d{2,7}(?:-\d{1,3})?(?![\d-])")
_ACCOUNT_CONTEXT = re.compile(
    r"(?:계좌|통장|입금|송금|이체|은행|account|acct|bank)[^\d\n]{0,20}(\d[\d -]{8,18}\d)", re.IGNORECASE
)
# Digits with the separators phone numbers are written with: 8 to 17 digits in all (the
# shortest Korean number, 02-123-4567, has 9).
_PHONE_CANDIDATE = re.compile(r"\+?\(?\d(?:[ ().\-/]{0,3}\d){7,16}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_CONTEXT = 8
_NANP_GROUPS = re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
# Not glued to Latin letters: "v1.2.3.4" and "1.2.3.4a" are versions.
_IPV4 = re.compile(r"(?<![\d.A-Za-z])\d{1,3}(?:\.\d{1,3}){3}(?![\d.A-Za-z])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_MAC = re.compile(
    r"(?<![\w:.-])(?:[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:.-])"  # and Cisco's 001a.2b3c.4d5e
)
_SECRETS = re.compile(
    "|".join(  # noqa: FLY002 - one alternative a line, each with its comment
        (
            r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])",  # AWS key id
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
            r"\bxapp-\d-[A-Za-z0-9-]{10,}",
            r"hooks\.slack\.com/services/[A-Za-z0-9/]+",
            r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
            r"\bya29\.[0-9A-Za-z_-]{20,}",  # Google OAuth access token
            r"\bGOCSPX-[0-9A-Za-z_-]{20,}",  # Google OAuth client secret
            r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic keys
            r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}",  # Stripe
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWT
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[^-]*-----|$)",
            r"(?i:aws).{0,20}(?i:secret|key).{0,5}[:=]\s*['\"]?[A-Za-z0-9/+=]{40}",  # a labelled AWS secret
            r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s@/]+@",  # credentials in a URL
            # A password typed after its label; "password reset" or "비밀번호를" are not.
            r"(?i:password|passwd|pwd|passcode|비밀번호|비번|암호)\s*[:=]\s*\S{4,}",
        )
    )
)
# Names need a language model to find in general (the Bedrock guardrail has one); the detector
# finds the ones a prompt introduces: after "my name is", a title or a label, and Korean names
# (a common surname and one or two syllables) after 이름/성명/저는, or before 님/씨.
_KR_SURNAMES = (
    "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄변채원천방공현함염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부"
)
_NAME_EN = re.compile(
    r"(?:\b(?i:my name is|my name's|name\s*:|full name\s*:|signed,?|regards,?|dear)\s+"
    r"|\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)"
    r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})"
)
_NAME_KR_LABELLED = re.compile(
    r"(?:이름은|이름\s*:|성명은?|성명\s*:|성함은?|성함\s*:|받는 ?사람\s*:?|수신인\s*:?)"
    rf"\s*([{_KR_SURNAMES}][가-힣]{{1,2}})"
    r"(?=입니다|이에요|예요|이고|이며|라고|이라고|씨|님|[\s.,!?)]|$)"
)
# "저는 …" introduces a name only with a copula ("저는 김민수예요"), not "저는 오늘 바빠요".
_NAME_KR_SELF = re.compile(
    rf"(?:저는|나는|전)\s*([{_KR_SURNAMES}][가-힣]{{1,2}})(?=입니다|이에요|예요|이라고 합니다|라고 합니다)"
)
_NAME_KR_HONORIFIC = re.compile(rf"(?<![가-힣])([{_KR_SURNAMES}][가-힣]{{2}})\s?(?:님|씨)")

# An AWS secret access key is 40 base64 characters; alone (on its own line, say) it has no
# prefix to anchor on. Requiring upper, lower and a digit keeps hex digests (git SHAs) clean.
_BASE64_40 = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        yield match.span()


def _phones(text: str) -> Iterator[tuple[int, int]]:
    # libphonenumber's matcher is thorough and slow (tens of microseconds per call, milliseconds
    # per kilobyte); it reads only the stretches that could hold a phone number, with a little
    # context on either side for its own checks of what surrounds a number.
    for candidate in _PHONE_CANDIDATE.finditer(text):
        if _ISO_DATE.fullmatch(candidate.group()):
            continue
        start = max(0, candidate.start() - _PHONE_CONTEXT)
        window = text[start : candidate.end() + _PHONE_CONTEXT]
        for match_start, match_end in _phones_in(window, international=candidate.group().startswith("+")):
            yield start + match_start, start + match_end


def _phones_in(text: str, *, international: bool) -> Iterator[tuple[int, int]]:
    # A number written with + parses the same in any region; national forms are tried as
    # Korean, and as American only when written in the US 3-3-4 grouping: ten bare digits are
    # as often an order number as a US phone number.
    regions = PHONE_REGIONS[:1] if international or not _NANP_GROUPS.search(text) else PHONE_REGIONS
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if region == "US" and not _NANP_GROUPS.fullmatch(match.raw_string):
                continue
            yield match.start, match.end


# Payment card numbers have 13 to 19 digits; resident registration numbers 13; Korean bank
# accounts 10 to 14 (up to 16 after a label such as 계좌).
_CARD_DIGITS = range(13, 20)
_RRN_DIGITS = 13
_BANK_ACCOUNT_DIGITS = range(10, 15)
_LABELLED_ACCOUNT_DIGITS = range(10, 17)
# An IPv6 address in full form has at least three colons; a group has up to four hex digits.
_IPV6_FULL_FORM_COLONS = 3
_IPV6_GROUP_DIGITS = 4


def _cards(text: str) -> Iterator[tuple[int, int]]:
    """Every run of digit groups whose 13-19 digits pass Luhn, also inside a longer run."""
    for run in _DIGIT_GROUPS.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in re.finditer(r"\d+", run.group())]
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += text[groups[last][0] : groups[last][1]]
                if len(digits) > _CARD_DIGITS[-1]:
                    break
                if len(digits) in _CARD_DIGITS and digits[0] in "23456" and luhn.is_valid(digits):
                    yield groups[first][0], groups[last][1]


def _resident_numbers(text: str) -> Iterator[tuple[int, int]]:
    # Numbers issued since October 2020 carry no check digit, so a valid birth date and
    # century/sex digit are enough; stdnum checks both (and the old check digit when present).
    for match in _RRN.finditer(text):
        number = match.group(1) + match.group(2)
        # Written without a separator it could be a barcode (Korean EANs start 880...):
        # only the check digit tells them apart.
        separated = len(match.group()) > _RRN_DIGITS
        if rrn.is_valid(number) or (separated and _rrn_date_ok(number)):
            yield match.span()


def _rrn_date_ok(number: str) -> bool:
    try:
        rrn.get_birth_date(number)
    except StdnumInvalid:
        return False
    return True


def _validated(pattern: re.Pattern[str], is_valid: Callable[[str], bool]) -> Callable[[str], Iterator[tuple[int, int]]]:
    def detect(text: str) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(text):
            if is_valid(match.group()):
                yield match.span()

    return detect


def _matches(pattern: re.Pattern[str]) -> Callable[[str], Iterator[tuple[int, int]]]:
    return _validated(pattern, lambda _: True)


def _bank_accounts(text: str) -> Iterator[tuple[int, int]]:
    for match in _BANK_ACCOUNT.finditer(text):
        if sum(c.isdigit() for c in match.group()) in _BANK_ACCOUNT_DIGITS:
            yield match.span()
    for match in _ACCOUNT_CONTEXT.finditer(text):
        if sum(c.isdigit() for c in match.group(1)) in _LABELLED_ACCOUNT_DIGITS:
            yield match.span(1)


def _names(text: str) -> Iterator[tuple[int, int]]:
    for pattern in (_NAME_EN, _NAME_KR_LABELLED, _NAME_KR_SELF, _NAME_KR_HONORIFIC):
        for match in pattern.finditer(text):
            yield match.span(1)


def _ip_ok(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    # Loopback and "any" addresses name no one's machine; they are everyday technical text.
    return not (address.is_loopback or address.is_unspecified)


def _ipv6_ok(candidate: str) -> bool:
    # Two colons are a time of day or C++ (`std::vector`) as often as an address: a short
    # form counts only with a full group in it (fe80::1).
    full_form = candidate.count(":") >= _IPV6_FULL_FORM_COLONS
    short_form = "::" in candidate and any(len(group) == _IPV6_GROUP_DIGITS for group in candidate.split(":"))
    return (full_form or short_form) and _ip_ok(candidate)


def _in_context(
    pattern: re.Pattern[str], is_valid: Callable[[str], bool]
) -> Callable[[str], Iterator[tuple[int, int]]]:
    """Bare digits that a label before them names (`SSN: 536221234`), when they validate."""
    def detect(text: str) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(text):
            if is_valid(match.group(1)):
                yield match.span(1)

    return detect


def _aws_secret_ok(candidate: str) -> bool:
    return any(c.isupper() for c in candidate) and any(c.islower() for c in candidate) and any(
        c.isdigit() for c in candidate
    )


_DETECTORS: tuple[tuple[str, Callable[[str], Iterator[tuple[int, int]]]], ...] = (
    ("secret", _matches(_SECRETS)),
    ("secret", _validated(_BASE64_40, _aws_secret_ok)),
    ("email", _emails),
    ("rrn", _resident_numbers),
    ("business_number", _validated(_BRN, brn.is_valid)),
    ("ssn", _validated(_SSN, lambda s: ssn.is_valid(s.replace(" ", "-")))),
    ("ssn", _in_context(_SSN_CONTEXT, ssn.is_valid)),
    ("business_number", _in_context(_BRN_CONTEXT, brn.is_valid)),
    ("card", _cards),
    ("iban", _validated(_IBAN, iban.is_valid)),
    ("driver_licence", _matches(_KR_DRIVER_LICENCE)),
    ("passport", _matches(_KR_PASSPORT)),
    ("mac_address", _matches(_MAC)),
    ("ip_address", _validated(_IPV4, _ip_ok)),
    ("ip_address", _validated(_IPV6, _ipv6_ok)),
    ("phone", _phones),
    ("bank_account", _bank_accounts),
    ("name", _names),
)


def find_pii(text: str) -> list[PIIFinding]:
    """Every finding in `normalise(text)`, by position; overlapping findings keep the first
    detector's kind (secrets and validated identifiers before looser formats)."""
    normalised = normalise(text)
    findings: list[PIIFinding] = []
    for kind, detect in _DETECTORS:
        for start, end in detect(normalised):
            if not any(f.start < end and start < f.end for f in findings):
                findings.append(PIIFinding(kind, start, end))
    return sorted(findings, key=lambda f: f.start)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


def pii_kinds(text: str) -> list[str]:
    """The kinds found, sorted and without repeats (for a log line that must not hold the data)."""
    return sorted({finding.kind for finding in find_pii(text)})


def redact(text: str) -> str:
    """`normalise(text)` with every finding replaced, whole, by `[KIND]`."""
    normalised = normalise(text)
    result, cursor = [], 0
    for finding in find_pii(text):
        result.append(normalised[cursor : finding.start])
        result.append(f"[{finding.kind.upper()}]")
        cursor = finding.end
    result.append(normalised[cursor:])
    return "".join(result)
