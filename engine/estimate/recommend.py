"""Per-quant estimates for a whole repo, and the "recommended for this machine" pick.

Shared by ``quantdesk estimate REPO`` and the Discover page. The pick is the
highest-quality quant (most bits per weight) whose fit verdict is not
"no_fit" at the chosen context, preferring a full GPU fit over a partial one
when both exist within one quality step; the reason says why in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.estimate.fit import FitResult, fit_words, free_ram_words
from quantdesk.engine.estimate.hparams import model_shape
from quantdesk.engine.estimate.load_plan import Budget, fit_within, resolve_gpu_layers
from quantdesk.engine.estimate.memory import EstimateParams, estimate
from quantdesk.engine.gguf.model_info import human_bytes, summarize
from quantdesk.engine.gguf.quant_docs import quality_rank, quant_info
from quantdesk.engine.gguf.reader import GGUFHeader, read_header_cached, read_header_from_file
from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.hub.quants import QuantGroup
from quantdesk.engine.library.discovery import split_parts
from quantdesk.engine.llama.arch_support import architectures_supported
from quantdesk.engine.params import LoadSettings

_VERDICT_ORDER = {"gpu": 3, "partial": 2, "cpu": 1, "no_fit": 0}


@dataclass(frozen=True)
class QuantEstimate:
    """One quant level of a repo: its headers (shards) and the fit, or why there is none."""

    group: QuantGroup
    headers: tuple[GGUFHeader, ...]
    fit: FitResult | None
    error: str = ""

    @property
    def quant(self) -> str:
        """The quant level's name (Q4_K_M, IQ4_XS...)."""
        return self.group.quant

    @property
    def bits_per_weight(self) -> float | None:
        """Measured bits per weight from the header's tensor table (first shard: approximate)."""
        if not self.headers:
            return None
        report = summarize(self.headers[0])
        return report.bits_per_weight


def fit_files(models: Sequence[tuple[Path, Sequence[Path]]], load: LoadSettings,
              budget: Budget) -> dict[str, tuple[str, str]]:  # fmt: skip
    """``(verdict, words)`` of each local model (its first file, all its files) at ``load``,
    from headers only; a file that cannot be read or estimated: ("unknown", "Fit unknown")."""
    params = EstimateParams.from_load_settings(load)
    out: dict[str, tuple[str, str]] = {}
    for path, parts in models:
        try:
            result = fit_within([read_header_from_file(p) for p in parts], params, budget)
        except Exception:  # noqa: BLE001 - an odd header only costs the badge
            out[str(path)] = ("unknown", "Fit unknown")
            continue
        out[str(path)] = (result.verdict, fit_words(result))
    return out


def fit_group(
    group: QuantGroup, headers: Sequence[GGUFHeader], params: EstimateParams, budget: Budget
) -> QuantEstimate:
    """Fit one quant level; estimator errors become a readable ``error``."""
    try:
        result = fit_within(headers, params, budget)
    except QuantDeskError as exc:
        return QuantEstimate(group, tuple(headers), None, exc.message)
    return QuantEstimate(group, tuple(headers), result)


def fit_all(
    items: Sequence[tuple[QuantGroup, Sequence[GGUFHeader]]],
    params: EstimateParams,
    budget: Budget,
) -> list[QuantEstimate]:
    """Fit every quant level (in parallel: each fit is a few hundred ms of estimator work)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda item: fit_group(item[0], item[1], params, budget), items))


def recommend(estimates: Sequence[QuantEstimate]) -> tuple[int | None, str]:
    """Index of the recommended quant and the reason, or (None, why nothing fits)."""
    fitting = [
        (i, e) for i, e in enumerate(estimates) if e.fit is not None and e.fit.verdict != "no_fit"
    ]
    if not fitting:
        return None, "No quant level of this model fits this machine at this context length."

    def key(item: tuple[int, QuantEstimate]) -> tuple[float, int]:
        est = item[1]
        return (quality_rank(est.quant), _VERDICT_ORDER[est.fit.verdict])  # type: ignore[union-attr]

    best_index, best = max(fitting, key=key)
    # A full-GPU fit one quality step below beats a partial offload (far faster).
    if best.fit.verdict == "partial":  # type: ignore[union-attr]
        gpu = [(i, e) for i, e in fitting if e.fit.verdict == "gpu"]  # type: ignore[union-attr]
        if gpu:
            alt_index, alt = max(gpu, key=key)
            if quality_rank(best.quant) - quality_rank(alt.quant) <= 1.0:
                best_index, best = alt_index, alt
    result = best.fit
    assert result is not None
    info = quant_info(best.quant)
    quality = f" {info.summary}" if info else ""
    return best_index, (
        f"{best.quant} is the highest quality that fits ({fit_words(result)}), needing "
        f"about {human_bytes(result.estimate.peak_ram)} at this context of the "
        f"{free_ram_words(result.ram_free, result.ram_budget)}.{quality}"
    )


@dataclass(frozen=True)
class RepoEstimate:
    """Every quant level of a repo fitted against this machine, and the pick."""

    repo_id: str
    estimates: tuple[QuantEstimate, ...]
    recommended: int | None
    reason: str
    bytes_read: int
    total_size: int
    warnings: tuple[str, ...]
    trained_context: int = 0  # the longest context the quants were trained on (0: unknown)


def repo_headers(
    client: HubClient, repo_id: str
) -> tuple[list[tuple[QuantGroup, list[GGUFHeader]]], int]:
    """Each quant group of ``repo_id`` with its headers (all read in parallel) and bytes read."""
    groups = client.list_quants(repo_id)
    files = [f for g in groups for f in g.files]
    remote = client.fetch_headers(repo_id, files)
    by_path = {f.path: r for f, r in zip(files, remote, strict=True)}
    items = [(g, [by_path[f.path].header for f in g.files]) for g in groups]
    return items, sum(r.bytes_read for r in remote)


def warnings_for(headers: Sequence[GGUFHeader]) -> tuple[str, ...]:
    """What a user should know before downloading (unsupported architecture, no template)."""
    if not headers:
        return ()
    report = summarize(headers[0])
    notes = []
    arch = report.architecture or ""
    if architectures_supported([arch]).get(arch) is False:
        notes.append(
            f"The architecture '{arch}' is not supported by the llama.cpp inside QuantDesk: "
            "the files would download but not load. Wait for an update that supports it."
        )
    if not report.has_chat_template:
        notes.append(
            "These files have no chat template: QuantDesk will use completion mode (the model "
            "continues your text) unless it is a base model you want for that."
        )
    return tuple(notes)


def estimate_repo(
    client: HubClient, repo_id: str, params: EstimateParams, budget: Budget
) -> RepoEstimate:
    """Read every quant level's header by range requests and fit each against ``budget``."""
    items, bytes_read = repo_headers(client, repo_id)
    return fit_repo(repo_id, items, params, budget, bytes_read)


def fit_repo(
    repo_id: str,
    items: Sequence[tuple[QuantGroup, Sequence[GGUFHeader]]],
    params: EstimateParams,
    budget: Budget,
    bytes_read: int = 0,
) -> RepoEstimate:
    """Fit already-read headers (a context change re-fits without any network)."""
    estimates = fit_all(items, params, budget)
    index, reason = recommend(estimates)
    first = next((h for _, h in items if h), [])
    return RepoEstimate(
        repo_id=repo_id,
        estimates=tuple(estimates),
        recommended=index,
        reason=reason,
        bytes_read=bytes_read,
        total_size=sum(g.total_size for g, _ in items),
        warnings=warnings_for(first),
        trained_context=max((_trained(h) for _, h in items if h), default=0),
    )


def _trained(headers: Sequence[GGUFHeader]) -> int:
    try:
        return model_shape(headers).n_ctx_train
    except QuantDeskError:  # an architecture the estimator does not know
        return 0


def settings_estimate_text(path: Path, load: LoadSettings, budget: Budget) -> str:
    """One line for the load-settings panel: what these settings need, and if that fits."""
    headers = [read_header_cached(p) for p in split_parts(path)]
    load = resolve_gpu_layers(headers, load, budget)
    params = EstimateParams.from_load_settings(load)
    est = estimate(headers, params, offload=budget.gpu_offload)
    result = fit_within(headers, params, budget)
    vram = f" + {human_bytes(est.vram)} VRAM" if est.vram else ""
    ok = est.peak_ram <= result.ram_budget
    free = free_ram_words(result.ram_free, result.ram_budget)
    verdict = f"it fits: {free}" if ok else f"more than fits: {free}"
    return (
        f"These settings need about {human_bytes(est.peak_ram)} of RAM{vram} "
        f"({verdict}); the largest context that fits is {result.max_context:,} tokens."
    )
