"""The CDK app synthesized offline, as the deploy tests and the AWS twin read it.

Importing this module makes the CDK app (deploy/) and the data plane (repo root) importable.
Synth runs the same validation plugins as `cdk synth` (cdk-nag's AWS Solutions pack and CDK's
CloudFormation validation), so a successful synth already means no unacknowledged finding.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
CDK_JSON = DEPLOY_DIR / "cdk.json"

for _path in (REPO_ROOT, DEPLOY_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# jsii prints a banner when Node is past end-of-life (the dev machines have Node 20); it is
# noise in test output, not a failure. The value lists the silenced major versions.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def cdk_json_context() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())["context"]


class Synth:
    """One synthesized app: its template, the raw JSON and the cloud assembly directory."""

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        import aws_cdk as cdk
        from aws_cdk.assertions import Template
        from gateway_infra.application import build_app

        app, self.stack = build_app(cdk.App(context=context or cdk_json_context()))
        # Raises (ValidationFailed) on any unacknowledged cdk-nag or CloudFormation finding.
        self.assembly = app.synth()
        self.template = Template.from_stack(self.stack)
        self.json: dict[str, Any] = dict(self.template.to_json())
        self.template_path = Path(self.assembly.directory) / self.stack.template_file

    @property
    def stack_name(self) -> str:
        return self.stack.stack_name

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def one(self, resource_type: str, id_contains: str = "") -> tuple[str, dict[str, Any]]:
        found = {k: v for k, v in self.resources(resource_type).items() if id_contains in k}
        assert len(found) == 1, f"expected one {resource_type} matching {id_contains!r}: {list(found)}"
        return next(iter(found.items()))
