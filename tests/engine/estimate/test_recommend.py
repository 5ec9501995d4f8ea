"""Whole-repo estimates from range reads, the recommended pick, and `quantdesk estimate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from quantdesk.engine.estimate.load_plan import Budget
from quantdesk.engine.estimate.memory import EstimateParams
from quantdesk.engine.estimate.recommend import fit_files, fit_repo, repo_headers
from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.params import LoadSettings
from tests.support.hub_fixtures import MINI
from tests.support.tiny_models import write_tiny_model

GIB = 1024**3


def test_estimate_cli_reads_headers_only_and_recommends(fake_hub, tmp_path: Path) -> None:
    env = {**os.environ, "HF_ENDPOINT": fake_hub.endpoint, "QUANTDESK_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "quantdesk", "estimate", MINI, "--ctx", "2048", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    quants = [q["quant"] for q in out["quants"]]
    assert {"Q2_K", "Q4_K_M", "Q8_0", "F16"} <= set(quants)
    assert all(q["verdict"] in ("cpu", "gpu", "partial") for q in out["quants"])
    assert out["bytes_read"] * 20 < out["total_size"]  # headers only, never the weights
    assert sum(q["recommended"] for q in out["quants"]) == 1
    split = [q for q in out["quants"] if len(q["files"]) > 1]
    assert split and split[0]["peak_ram"] > 0  # a split model is estimated as one unit


def test_the_pick_follows_the_memory_budget(fake_hub, tmp_path: Path) -> None:
    client = HubClient(cache_dir=tmp_path / "cache")
    items, _ = repo_headers(client, MINI)
    params = EstimateParams(n_ctx=2048)
    roomy = fit_repo(MINI, items, params, Budget(16 * GIB, None, False))
    best = roomy.estimates[roomy.recommended]
    assert best.quant == "F16"
    # a budget between the smallest and the largest quant's needs: a smaller quant is picked
    needs = sorted(e.fit.estimate.peak_ram for e in roomy.estimates)
    middle = (needs[0] + needs[-1]) // 2
    reserve = 512 * 1024**2  # the estimator keeps max(512 MiB, 10 %) of RAM for the system
    tight = fit_repo(MINI, items, params, Budget(middle + reserve, None, False))
    pick = tight.estimates[tight.recommended]
    assert pick.fit.verdict == "cpu" and pick.fit.estimate.peak_ram < needs[-1]
    assert any(e.fit.verdict == "no_fit" for e in tight.estimates)
    hopeless = fit_repo(MINI, items, params, Budget(64 * 1024**2, None, False))
    assert hopeless.recommended is None and "No quant level" in hopeless.reason


def test_unknown_architectures_are_flagged_before_download() -> None:
    from quantdesk.engine.estimate.recommend import warnings_for
    from quantdesk.engine.gguf.reader import read_header
    from quantdesk.engine.llama.arch_support import architectures_supported
    from tests.support.gguf_fixtures import VT, build_gguf

    answers = architectures_supported(["llama", "gemma3", "no-such-arch"])
    assert answers == {"llama": True, "gemma3": True, "no-such-arch": False}
    header = read_header(build_gguf([("general.architecture", VT.STRING, "no-such-arch")]))
    notes = warnings_for([header])
    assert any("'no-such-arch' is not supported" in n for n in notes)
    assert any("no chat template" in n for n in notes)


def test_a_local_model_and_a_hub_quant_are_worded_alike(tmp_path: Path) -> None:
    """Issue 22: the library and Discover said one verdict two ways ("Fits in RAM" / "CPU
    only"); both now take estimate.fit.fit_words."""
    model = write_tiny_model(tmp_path / "tiny.gguf")
    load = LoadSettings(n_ctx=512)
    roomy = Budget(ram_available=8 << 30, vram_free=None, gpu_offload=False)
    none = Budget(ram_available=1 << 20, vram_free=None, gpu_offload=False)
    assert fit_files([(model, (model,))], load, roomy) == {str(model): ("cpu", "Fits in RAM")}
    assert fit_files([(model, (model,))], load, none) == {
        str(model): ("no_fit", "Too big at 512 ctx")}
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 8)
    assert fit_files([(broken, (broken,))], load, roomy)[str(broken)] == ("unknown", "Fit unknown")
