"""The chat page's token estimate (static/chat/tokens.js) is the gateway's (dataplane/tokens.py),
so the bars move during an answer by the figure the gateway will bill when the model sends none.
Runs the module in Node.js (installed for the CDK tests); skipped without it."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dataplane.tokens import estimate

MODULE = Path(__file__).resolve().parents[2] / "static/chat/tokens.js"
NODE = shutil.which("node")
TEXTS = [
    "",
    "Hello, world.",
    "def f(x):\n    return {'a': [x, x ** 2]}  # code and markup",
    "안녕하세요, 게이트웨이입니다. 토큰 한도를 확인하세요.",
    "Ça coûte combien? Привет, мир! Γειά σου κόσμε",
    "東京の天気は? 北京 🙂🚀 — “quotes” …",
    "tabs\tand\u00a0non-breaking\u2003spaces",
    "𠀀𠀁 supplementary ideographs",
]


@pytest.mark.skipif(NODE is None, reason="no Node.js")
def test_the_page_estimates_tokens_as_the_gateway_does():
    script = (
        f"import {{ estimateTokens }} from {json.dumps(MODULE.as_uri())};"
        "let input = ''; process.stdin.on('data', (chunk) => { input += chunk; });"
        "process.stdin.on('end', () => console.log(JSON.stringify(JSON.parse(input).map(estimateTokens))));"
    )
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        input=json.dumps(TEXTS), capture_output=True, text=True, timeout=30, check=True,
    )
    assert json.loads(result.stdout) == [estimate(text) for text in TEXTS]
