"""Write `.env.example` from the settings table: `python -m gateway_project.settings.env_example`.

`--check` writes nothing and exits 1 when the file differs from what the table says (CI and
`tests/foundation/test_env_example.py` run it). Values are the defaults, so copying the file
to `.env` changes nothing; a setting whose default depends on the mode is left empty (empty
means "the default") and its comment names each mode's value.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from dataplane.settings_table import Setting
from gateway_project.settings.table import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
HEADER = """\
# Every environment variable the project reads, generated from the settings table
# (gateway_project/settings/table.py and dataplane/settings_table.py) by
# `python -m gateway_project.settings.env_example`; edit the table, not this file.
# Copy to `.env` (read at start-up; real environment variables win). The values are the
# defaults: the embedded default (`make run`) needs none of them. Empty means the default.
"""
WIDTH = 100


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def _comment(setting: Setting) -> list[str]:
    notes = [setting.help] if setting.help else []
    if setting.mode_defaults or setting.required_in:
        modes = [f"default {_text(setting.default) or '(empty)'}"]
        modes += [f"{mode}: {_text(value)}" for mode, value in setting.mode_defaults.items()]
        modes += [f"{mode}: required" for mode in setting.required_in]
        notes.append("; ".join(modes) + ".")
    text = " ".join(notes)
    return [f"# {line}" for line in textwrap.wrap(text, WIDTH - 2)] if text else []


def _value(setting: Setting) -> str:
    # A default that differs between modes cannot be written once: empty keeps each mode's.
    if setting.mode_defaults or setting.required_in or setting.depends_on:
        return ""
    return _text(setting.default)


def env_example() -> str:
    lines = [HEADER.rstrip("\n")]
    section = None
    for setting in SETTINGS:
        if setting.section != section:
            section = setting.section
            lines += ["", f"# --- {section} ".ljust(WIDTH, "-")]
        lines += _comment(setting)
        lines.append(f"{setting.name}={_value(setting)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if .env.example is stale; write nothing")
    args = parser.parse_args(argv)
    expected = env_example()
    current = ENV_EXAMPLE.read_text(encoding="utf-8") if ENV_EXAMPLE.is_file() else ""
    if args.check:
        if current != expected:
            sys.stderr.write(".env.example is stale: run `python -m gateway_project.settings.env_example`.\n")
            return 1
        return 0
    if current != expected:
        ENV_EXAMPLE.write_text(expected, encoding="utf-8")
        sys.stdout.write(f"wrote {ENV_EXAMPLE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
