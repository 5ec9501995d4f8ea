"""``quantdesk estimate FILE|REPO[/FILE]``: memory a model needs on this machine, before loading.

A local file is read from disk (header only); ``owner/name`` estimates every quant level of a
Hub repo from range reads of the headers; ``owner/name/path.gguf`` one file of it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from quantdesk.engine.gguf.model_info import human_bytes

NAME = "estimate"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    parser = sub.add_parser(NAME, help="Estimate RAM/VRAM a model needs, before downloading it.")
    parser.add_argument("target", help="a .gguf file, a Hub repo owner/name, or owner/name/FILE")
    parser.add_argument("--ctx", type=int, default=None,
                        help="Context length in tokens (default: the app's setting).")  # fmt: skip
    parser.add_argument(
        "--gpu-layers",
        type=int,
        default=None,
        help="Layers on the GPU (default: the most that fit).",
    )
    parser.add_argument("--kv-type", default=None, choices=("f16", "q8_0", "q4_0"),
                        help="KV cache type (default: the app's setting).")  # fmt: skip
    parser.add_argument(
        "--flash-attn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Flash attention (needed for a quantized KV cache; default: the app's setting).",
    )
    parser.add_argument("--json", action="store_true", help="Machine-readable output.")


def _params(args: argparse.Namespace):  # noqa: ANN202 - EstimateParams
    """The app's load settings (as the Chat panel and Discover estimate with them), with what
    the command line sets instead."""
    import dataclasses

    from quantdesk.config.paths import resolve_paths
    from quantdesk.config.settings import Settings
    from quantdesk.engine.estimate.memory import EstimateParams

    load = Settings(resolve_paths().settings_file).load_settings()
    kv_type = args.kv_type or load.kv_type
    flash = load.flash_attn if args.flash_attn is None else args.flash_attn
    load = dataclasses.replace(
        load, n_ctx=args.ctx or load.n_ctx, kv_type=kv_type, flash_attn=flash or kv_type != "f16",
        n_gpu_layers=args.gpu_layers or 0,
    )  # fmt: skip
    return EstimateParams.from_load_settings(load)


def _local(args: argparse.Namespace, path: Path) -> int:
    from quantdesk.engine.estimate.fit import fit_words
    from quantdesk.engine.estimate.format import format_estimate
    from quantdesk.engine.estimate.load_plan import machine_budget
    from quantdesk.engine.estimate.memory import estimate
    from quantdesk.engine.estimate.recommend import fit_group
    from quantdesk.engine.gguf.reader import read_header_from_file
    from quantdesk.engine.hub.quants import QuantGroup, RemoteFile

    headers = [read_header_from_file(path)]
    budget = machine_budget()
    group = QuantGroup(
        path.name,
        (RemoteFile(str(path), path.stat().st_size, None, ""),),
        path.stat().st_size,
        False,
        path.name,
        path.stem,
    )
    result = fit_group(group, headers, _params(args), budget)
    chosen = estimate(headers, _params(args)) if args.gpu_layers is not None else None
    shown = chosen or (result.fit.estimate if result.fit else estimate(headers, _params(args)))
    if args.json:
        out = {"file": str(path), "estimate": shown.to_dict()}
        if result.fit is not None:
            out["verdict"] = result.fit.verdict
            out["max_gpu_layers"] = result.fit.max_gpu_layers
            out["max_context"] = result.fit.max_context
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(format_estimate(shown))
    if result.fit is not None:
        print(
            f"\nOn this machine: {fit_words(result.fit)}; largest context that fits: "
            f"{result.fit.max_context:,} tokens. {result.fit.reason}"
        )
    return 0


def _remote(args: argparse.Namespace) -> int:
    from quantdesk.config.hub_access import hub_client
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.estimate.fit import fit_words
    from quantdesk.engine.estimate.load_plan import machine_budget
    from quantdesk.engine.estimate.recommend import estimate_repo

    parts = args.target.split("/")
    repo_id = "/".join(parts[:2])
    client = hub_client(resolve_paths())
    started = time.monotonic()
    params = _params(args)
    result = estimate_repo(client, repo_id, params, machine_budget())
    if len(parts) > 2:
        wanted = "/".join(parts[2:])
        keep = [e for e in result.estimates if any(f.path == wanted for f in e.group.files)]
        if not keep:
            from quantdesk.engine.errors import QuantDeskError

            raise QuantDeskError(f"'{wanted}' is not a GGUF file of {repo_id}.")
        result = result.__class__(
            **{**result.__dict__, "estimates": tuple(keep), "recommended": None}
        )
    seconds = time.monotonic() - started
    rows = []
    for i, e in enumerate(result.estimates):
        fit = e.fit
        rows.append(
            {
                "quant": e.quant,
                "files": [f.path for f in e.group.files],
                "size": e.group.total_size,
                "bits_per_weight": e.bits_per_weight,
                "verdict": fit.verdict if fit else None,
                "badge": fit_words(fit) if fit else e.error,
                "peak_ram": fit.estimate.peak_ram if fit else None,
                "vram": fit.estimate.vram if fit else None,
                "max_context": fit.max_context if fit else None,
                "recommended": i == result.recommended,
            }
        )
    if args.json:
        print(
            json.dumps(
                {
                    "repo": repo_id,
                    "n_ctx": params.n_ctx,
                    "quants": rows,
                    "recommended_reason": result.reason,
                    "bytes_read": result.bytes_read,
                    "total_size": result.total_size,
                    "seconds": round(seconds, 3),
                    "warnings": list(result.warnings),
                },
                indent=2,
            )
        )
        return 0
    print(f"{repo_id} at context {params.n_ctx:,}:")
    print(f"  {'Quant':<12}{'Size':>10}{'bpw':>7}{'Est. RAM':>11}{'Est. VRAM':>11}  Fit")
    for row in rows:
        bpw = f"{row['bits_per_weight']:.2f}" if row["bits_per_weight"] else "-"
        ram = human_bytes(row["peak_ram"]) if row["peak_ram"] else "-"
        vram = human_bytes(row["vram"]) if row["vram"] else "-"
        star = " *" if row["recommended"] else ""
        print(
            f"  {row['quant']:<12}{human_bytes(row['size']):>10}{bpw:>7}{ram:>11}{vram:>11}"
            f"  {row['badge']}{star}"
        )
    print(f"\n* {result.reason}")
    for warning in result.warnings:
        print(f"! {warning}")
    print(
        f"Read {human_bytes(result.bytes_read)} of headers for {human_bytes(result.total_size)}"
        f" of files in {seconds:.2f} s."
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Estimate a local file or a Hub repo."""
    path = Path(args.target)
    looks_remote = "/" in args.target and not path.is_absolute() and not args.target.startswith(".")
    if path.exists() or not looks_remote:
        return _local(args, path)
    return _remote(args)
