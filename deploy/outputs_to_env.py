"""Print the deployed stack's outputs as Django `.env` lines.

    cdk deploy --outputs-file cdk-outputs.json
    python outputs_to_env.py cdk-outputs.json >> ../.env
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from gateway_infra.outputs import env_lines


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "cdk-outputs.json")
    outputs_by_stack: dict[str, dict[str, str]] = json.loads(path.read_text())
    for stack_outputs in outputs_by_stack.values():
        print("\n".join(env_lines(stack_outputs)))  # noqa: T201 - the script's output is these lines
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
