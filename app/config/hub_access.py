"""One way for the app and every CLI command to reach the hub: with the token the user saved."""

from __future__ import annotations

from typing import Any

from quantdesk.config.paths import AppPaths
from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.hub.token import TOKEN_FILE_NAME, TokenStore


def token_store(paths: AppPaths) -> TokenStore:
    """Where QuantDesk keeps the Hugging Face token saved in Preferences or by `quantdesk token`."""
    return TokenStore(paths.config_dir / TOKEN_FILE_NAME)


def hub_client(paths: AppPaths, **options: Any) -> HubClient:
    """A HubClient sending the saved token (else huggingface_hub's own), caching headers."""
    saved = token_store(paths).load()
    return HubClient(
        token=saved.token if saved else None, cache_dir=paths.cache_dir / "hub-headers", **options
    )
