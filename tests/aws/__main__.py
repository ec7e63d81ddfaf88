"""Start the AWS twin by hand: `python -m tests.aws [--once]`.

Synthesizes the stack, starts moto's server on 127.0.0.1, creates the template's tables,
stream, buckets and work group on it, and prints the endpoint, the resources and the chat
Lambda's environment as `KEY=value` lines (source them to run the data plane against the
twin). Runs until interrupted; `--once` prints and stops (for scripts and the test of this).

IAM is enforced in this process only (botocore calls inside `acting_as`); a separate process
using the printed environment reaches the same resources without enforcement.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.aws", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="print the endpoints and environment, then stop")
    args = parser.parse_args(argv)

    from tests.aws.template import Template
    from tests.aws.twin import AwsTwin
    from tests.deploy.synth import Synth  # also puts deploy/ on sys.path
    from tests.servers.dynamodb import moto_server

    synth = Synth()
    with moto_server() as endpoint_url:
        twin = AwsTwin.start(Template(synth.json, stack_name=synth.stack_name), endpoint_url)
        try:
            print(f"# AWS twin of stack {synth.stack_name}: account {twin.template.account}, {twin.template.region}")
            print(f"# moto endpoint (all services): {endpoint_url}")
            for name, value in vars(twin.resources).items():
                if name != "arns":
                    print(f"# {name.replace('_', ' ')}: {value}")
            for principal in twin.enforcer.principals.values():
                print(f"# principal {principal.name}: {principal.arn} ({len(principal.statements)} statements)")
            print("# the chat Lambda's environment, resolved from the template, with twin endpoints:")
            for name, value in twin.lambda_environment().items():
                print(f"{name}={value}")
            sys.stdout.flush()
            if not args.once:
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
        finally:
            twin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
