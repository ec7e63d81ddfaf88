"""The twin's tests import the CDK app (deploy/) like the deploy tests do."""
from __future__ import annotations

import tests.deploy.synth  # noqa: F401 - puts deploy/ and the repo root on sys.path
