"""Cost of the personal-data detector per 1 KB prompt, beside the regexes it replaced.

Builds prompts of about 1 KB (UTF-8) from the privacy corpus — clean prose with look-alikes
(order numbers, dates, prices, versions), half of them with one personal value somewhere —
and times `contains_pii` (the pipeline's question) and `redact` (the preview) of the current
detector, and `contains_pii` of the old regexes (`bench/regex_baseline.py`). Also prints how
many corpus cases each detector gets right. Not a test: it asserts nothing.

    .venv/bin/python bench/privacy.py [--prompts 2000]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import regex_baseline

from dataplane import privacy
from tests.privacy_corpus import CASES

PROMPT_BYTES = 1024
FILLER = (
    "이번 분기 보고서를 요약해 주세요. The release notes mention version 2.10.4 and the meeting on "
    "2024-03-15 at 10:30. 가격은 ₩12,500 이고 주문번호 ORD-20241103-5521 입니다. "
)


def prompts(count: int, rng: random.Random) -> list[str]:
    clean = [c.text for c in CASES if c.clean]
    personal = [c.text for c in CASES if not c.clean]
    built = []
    for index in range(count):
        parts: list[str] = []
        if index % 2:
            parts.append(rng.choice(personal))
        while len(" ".join(parts).encode()) < PROMPT_BYTES:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice([*clean, FILLER]))
        built.append(" ".join(parts).encode()[:PROMPT_BYTES].decode(errors="ignore"))
    return built


def timings_us(detect: Callable[[str], object], texts: list[str]) -> list[float]:
    for text in texts[:50]:  # warm caches (regex compilation, phonenumbers metadata)
        detect(text)
    spent = []
    for text in texts:
        started = time.perf_counter_ns()
        detect(text)
        spent.append((time.perf_counter_ns() - started) / 1000)
    return spent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def corpus_score(contains: Callable[[str], bool]) -> tuple[int, int, int, int]:
    found = sum(contains(c.text) for c in CASES if not c.clean)
    clean_kept = sum(not contains(c.text) for c in CASES if c.clean)
    return found, sum(not c.clean for c in CASES), clean_kept, sum(c.clean for c in CASES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2000)
    args = parser.parse_args()
    texts = prompts(args.prompts, random.Random(12))
    size = statistics.mean(len(t.encode()) for t in texts)
    print(f"{len(texts)} prompts, {size:.0f} bytes on average, half with one personal value\n")
    print(f"{'detector':42} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for name, detect in (
        ("regexes (before): contains_pii", regex_baseline.contains_pii),
        ("validators (now): contains_pii", privacy.contains_pii),
        ("validators (now): redact", privacy.redact),
    ):
        spent = timings_us(detect, texts)
        print(f"{name:42} {percentile(spent, 0.5):9.0f} {percentile(spent, 0.99):9.0f} {statistics.mean(spent):9.0f}")
    print("\ncorpus of", len(CASES), "cases:")
    for name, contains in (
        ("regexes (before)", regex_baseline.contains_pii),
        ("validators (now)", privacy.contains_pii),
    ):
        found, personal, kept, clean = corpus_score(contains)
        print(f"  {name:18} personal found {found}/{personal}, clean look-alikes left cacheable {kept}/{clean}")


if __name__ == "__main__":
    main()
