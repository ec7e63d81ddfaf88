"""Make the CDK app (deploy/) and the data plane (repo root) importable for the deploy tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"

for path in (REPO_ROOT, DEPLOY_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# jsii prints a banner when Node is past end-of-life (the dev machines have Node 20); it is
# noise in test output, not a failure. The value lists the silenced major versions.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
