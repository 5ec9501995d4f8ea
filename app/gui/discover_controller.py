"""Wires the Discover page to the Hub client, the estimator and the hardware budget.

Network and estimator work run through :func:`run_job`; a context change re-fits
the headers already read (no network).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from quantdesk.config.settings import Settings
from quantdesk.engine.errors import AuthRequired, QuantDeskError
from quantdesk.engine.estimate.fit import fit_words
from quantdesk.engine.estimate.load_plan import Budget, machine_budget
from quantdesk.engine.estimate.memory import EstimateParams
from quantdesk.engine.estimate.recommend import RepoEstimate, fit_repo, repo_headers
from quantdesk.engine.gguf.model_info import human_bytes, parameter_label
from quantdesk.engine.gguf.quant_docs import quant_info
from quantdesk.engine.gguf.reader import GGUFHeader
from quantdesk.engine.hub.client import HubClient, ModelSummary
from quantdesk.engine.hub.quants import QuantGroup
from quantdesk.ui.discover.memory_chart import MemoryBar
from quantdesk.ui.discover.page import DiscoverPage, SearchHit
from quantdesk.ui.discover.quant_table import VERDICT_UNKNOWN, QuantRow
from quantdesk.ui.jobs import run_job

Items = list[tuple[QuantGroup, list[GGUFHeader]]]


def _hit(model: ModelSummary) -> SearchHit:
    parts = [f"↓ {model.downloads:,}", f"♥ {model.likes:,}"]
    if model.parameter_count:
        parts.append(parameter_label(model.parameter_count))
    if model.architecture:
        parts.append(model.architecture)
    if model.last_modified:
        parts.append(f"updated {model.last_modified[:10]}")
    return SearchHit(model.repo_id, " · ".join(parts))


def _row(estimate, recommended: bool) -> QuantRow:  # noqa: ANN001 - recommend.QuantEstimate
    info = quant_info(estimate.quant)
    tooltip = f"{estimate.quant}: {info.summary}" if info else estimate.group.label
    fit = estimate.fit
    if fit is None:
        return QuantRow(
            estimate.quant,
            estimate.group.total_size,
            estimate.bits_per_weight,
            None,
            None,
            VERDICT_UNKNOWN,
            "",
            recommended,
            tooltip,
            estimate.error,
            files=tuple(f.path for f in estimate.group.files),
        )
    tooltip += f"\n{fit.reason}"
    return QuantRow(
        quant=estimate.quant,
        size=estimate.group.total_size,
        bits_per_weight=estimate.bits_per_weight,
        ram=fit.estimate.peak_ram,
        vram=fit.estimate.vram,
        verdict=fit.verdict,
        badge=fit_words(fit),
        recommended=recommended,
        tooltip=tooltip,
        files=tuple(f.path for f in estimate.group.files),
    )


def _bar(estimate) -> MemoryBar | None:  # noqa: ANN001 - recommend.QuantEstimate
    if estimate.fit is None:
        return None
    est = estimate.fit.estimate
    devices = est.devices.values()
    weights = sum(d.weights + d.repack for d in devices)
    kv = sum(d.kv_cache for d in devices)
    # the bar's length is the table's Est. RAM (+ VRAM): "other" holds the compute buffers
    # and the runtime's own memory, so the chart and the table never disagree
    total = est.peak_ram + (est.vram or 0)
    return MemoryBar(estimate.quant, weights, kv, max(total - weights - kv, 0))


def _mark_in_library(rows: list[QuantRow], names: set[str]) -> list[QuantRow]:
    """Rows whose (first) file is in the library already say so."""
    return [dataclasses.replace(r, in_library=bool(r.files) and Path(r.files[0]).name in names)
            for r in rows]  # fmt: skip


def _explain_larger(rows: list[QuantRow], estimate: RepoEstimate) -> list[QuantRow]:
    """A quant that needs more memory than one with more bits per weight says why (the bars
    and the Est. RAM column would look wrong otherwise)."""
    out = []
    for row, quant in zip(rows, estimate.estimates, strict=True):
        bigger = [o for o in rows if row.ram and o.ram and row.bits_per_weight
                  and o.bits_per_weight and o.bits_per_weight > row.bits_per_weight
                  and o.ram < row.ram]  # fmt: skip
        if not bigger or quant.fit is None:
            out.append(row)
            continue
        repack = sum(d.repack for d in quant.fit.estimate.devices.values())
        why = (f"llama.cpp repacks its weights for this CPU's vector units, a second copy of "
               f"{human_bytes(repack)}" if repack else "its tensors keep larger types in "
               "memory (e.g. an untied output tensor)")  # fmt: skip
        note = (f"\nNeeds more memory than {bigger[0].quant}, which has more bits per weight: "
                f"{why}.")  # fmt: skip
        out.append(dataclasses.replace(row, tooltip=row.tooltip + note))
    return out


def _kv_per_token(estimate) -> float:  # noqa: ANN001 - recommend.QuantEstimate
    if estimate.fit is None or not estimate.fit.estimate.n_ctx:
        return 0.0
    kv = sum(d.kv_cache for d in estimate.fit.estimate.devices.values())
    return kv / estimate.fit.estimate.n_ctx


class DiscoverController(QObject):
    """Search, open a repo, estimate every quant; results land on the page."""

    repoShown = Signal(object)  # RepoEstimate (GUI thread), for tests and other views
    searchShown = Signal(int)

    def __init__(self, page: DiscoverPage, settings: Settings, client: HubClient,
                 library_files: Callable[[], set[str]] = set) -> None:  # fmt: skip
        """``library_files``: the file names of the models in the library (to mark them)."""
        super().__init__()
        self.library_files = library_files
        self.page = page
        self.settings = settings
        self.client = client
        self._items: Items = []
        self._repo_id = ""
        self._refused_for_token = False  # the open repo was refused: it needs an access token
        self._bytes_read = 0
        self._budget: Budget | None = None
        page.set_context_length(settings.get("load.n_ctx"))
        page.searchRequested.connect(self.search)
        page.repoRequested.connect(self.open_repo)
        page.contextChanged.connect(lambda _n: self._refit())

    def _params(self) -> EstimateParams:
        """The chat's load settings (KV type, flash attention, batch…) at the slider's context:
        Discover, the Chat panel and `quantdesk estimate` give one figure for one setting."""
        load = dataclasses.replace(self.settings.load_settings(), n_ctx=self.page.context_length())
        return EstimateParams.from_load_settings(load)

    def _get_budget(self) -> Budget:
        """The budget measured when the repo was opened (the free RAM the status bar showed
        then), for re-estimates at another context; probed off the GUI thread."""
        return self._budget or machine_budget()

    def search(self, query: str, sort: str, gguf_only: bool) -> None:
        """Search the Hub in the background."""

        def done(models: list[ModelSummary]) -> None:
            hits = [_hit(m) for m in models]
            status = (
                f"{len(hits)} models"
                if hits
                else (f"No models match “{query}”. Try fewer words, or turn off “GGUF only”.")
            )
            self.page.show_results(hits, status)
            self.searchShown.emit(len(hits))

        run_job(
            lambda: self.client.search(query, gguf_only=gguf_only, sort=sort),
            on_done=done,
            on_error=self._failed_search,
        )

    def open_repo(self, repo_id: str) -> None:
        """Read every quant file's header and fit each against this machine."""
        self._repo_id = repo_id
        self.page.show_repo_loading(repo_id)
        params = self._params()

        def work() -> tuple[Items, int, RepoEstimate, Budget]:
            items, read = repo_headers(self.client, repo_id)
            budget = machine_budget()  # free memory now, as the status bar shows it
            return items, read, fit_repo(repo_id, items, params, budget, read), budget

        def done(result: tuple[Items, int, RepoEstimate, Budget]) -> None:
            items, read, estimate, budget = result
            if estimate.repo_id != self._repo_id:
                return  # the user opened another repo meanwhile
            self._items, self._bytes_read, self._budget = items, read, budget
            self._show(estimate)

        run_job(work, on_done=done, on_error=self._failed_repo)

    def _refit(self) -> None:
        if not self._items:
            return
        items, repo_id, read, params = self._items, self._repo_id, self._bytes_read, self._params()
        self.page.repo_status.setText("Re-estimating for the new context length…")
        run_job(
            lambda: fit_repo(repo_id, items, params, self._get_budget(), read),
            on_done=lambda est: self._show(est) if est.repo_id == self._repo_id else None,
            on_error=self._failed_repo,
        )

    def _show(self, estimate: RepoEstimate) -> None:
        if self._cap_context(estimate):
            self._refit()  # the slider was past the trained context: estimated again at it
            return
        rows = [_row(e, i == estimate.recommended) for i, e in enumerate(estimate.estimates)]
        rows = _explain_larger(_mark_in_library(rows, self.library_files()), estimate)
        self.page.table_model.set_rows(rows)
        if not rows:
            self.page.repo_status.setText("This repository has no GGUF files QuantDesk can run.")
        else:
            notes = [
                estimate.reason,
                *estimate.warnings,
                f"Read {human_bytes(estimate.bytes_read)} of headers for "
                f"{human_bytes(estimate.total_size)} of files.",
            ]
            self.page.repo_status.setText("\n".join(notes))
        bars = [b for b in (_bar(e) for e in estimate.estimates) if b is not None]
        budget = self._budget
        self.page.chart.set_data(
            bars,
            ram_free=budget.ram_available if budget else 0,
            vram_free=budget.vram_free if budget else None,
        )
        if estimate.recommended is not None:
            self.page.table.selectRow(estimate.recommended)
        self.repoShown.emit(estimate)

    def _cap_context(self, estimate: RepoEstimate) -> bool:
        """End the slider at the trained context and say what a longer one would need; True
        when the chosen length came down to it."""
        trained = estimate.trained_context
        note = ""
        if trained:
            per_token = [_kv_per_token(e) for e in estimate.estimates]
            kv = max((k for k in per_token if k), default=0)
            extra = (f" and about {human_bytes(kv * trained)} more memory for each further "
                     f"{trained:,} tokens (KV cache)" if kv else "")  # fmt: skip
            note = (f"Trained on {trained:,} tokens of context: the slider ends there. A longer "
                    f"context needs RoPE scaling (answers get worse past it){extra}.")  # fmt: skip
        return self.page.set_trained_context(trained, note)

    def _failed_search(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, QuantDeskError) else f"Search failed: {exc}"
        self.page.show_results([], message)
        self.searchShown.emit(-1)

    def _failed_repo(self, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, QuantDeskError) else f"Reading failed: {exc}"
        self._refused_for_token = isinstance(exc, AuthRequired)
        self.page.show_repo_refusal(message, offer_token=self._refused_for_token)
        self.repoShown.emit(None)

    def token_changed(self) -> None:
        """The access token changed: a repository refused for want of one is read again."""
        if self._refused_for_token and self._repo_id:
            self.open_repo(self._repo_id)
