"""``quantdesk doctor [--json]``: versions, llama.cpp build, machine, folders and files, for a
bug report (the Hugging Face token is never shown, only whether one is configured)."""

from __future__ import annotations

import argparse
import json

NAME = "doctor"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(
        NAME, help="Print the environment for a bug report (versions, build, machine, folders)."
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def run(args: argparse.Namespace) -> int:
    """Collect and print the report."""
    from quantdesk import __version__
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.diagnostics.doctor import doctor_report, format_doctor
    from quantdesk.engine.hardware.machine import probe_hardware
    from quantdesk.engine.hardware.text import format_text

    paths = resolve_paths()
    folders = {"data": paths.data_dir, "models": paths.models_dir, "config": paths.config_dir,
               "cache": paths.cache_dir, "logs": paths.log_dir}  # fmt: skip
    files = {"settings": paths.settings_file, "library": paths.library_db,
             "chats": paths.chats_db, "presets": paths.presets_db,
             "model index": paths.model_index_db, "log": paths.log_file}  # fmt: skip
    hardware = probe_hardware()
    report = doctor_report(hardware, folders, files)
    if args.json:
        print(json.dumps({"version": __version__, **report}, indent=2))
    else:
        print(format_doctor(report, __version__, format_text(hardware)))
    return 0
