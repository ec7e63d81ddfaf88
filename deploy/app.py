#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy|destroy` run this (see cdk.json and README.md)."""
from __future__ import annotations

import sys
from pathlib import Path

# The Glue table is generated from `dataplane.telemetry.schema`, so the repo root (which holds
# the `dataplane` package) must be importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway_infra.application import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
