"""The deploy tests read the stack synthesized once per session (`stack_synth`, tests/aws)."""
from __future__ import annotations

import tests.deploy.synth  # noqa: F401 - puts deploy/ and the repo root on sys.path
