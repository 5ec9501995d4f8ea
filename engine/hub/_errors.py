"""Turning ``huggingface_hub`` HTTP errors into QuantDesk's hub errors with readable messages."""

from __future__ import annotations

from urllib.parse import urlsplit

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from quantdesk.engine.errors import AuthRequired, HubError, HubUnreachable, RepoNotFound

_TOKEN_HINT = (
    "paste an access token from your Hugging Face account settings in Preferences → "
    "Hugging Face (or run `quantdesk token set`, or set HF_TOKEN)"
)


def translate_http_error(
    exc: HfHubHTTPError,
    status: int | None,
    endpoint: str,
    repo_id: str | None,
    path: str | None,
    revision: str | None,
    tries: int,
    *,
    token_sent: bool = False,
) -> HubError:
    """The HubError to raise for an HTTP error answer of the hub (after any retries)."""
    host = urlsplit(endpoint).netloc or endpoint
    repo = f"'{repo_id}'" if repo_id else "this repository"
    details = str(exc)
    if isinstance(exc, GatedRepoError):
        return AuthRequired(
            f"{repo} is a gated model: accept its conditions on its page on {host}, then "
            f"{_TOKEN_HINT}.",
            details,
        )
    if isinstance(exc, RevisionNotFoundError):
        return RepoNotFound(
            f"{repo} has no branch, tag or commit named '{revision or 'main'}'.", details
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        at = f" at revision '{revision}'" if revision else ""
        return RepoNotFound(f"{repo} has no file '{path}'{at}.", details)
    if status == 401:
        token_state = (
            "the access token that was sent is not valid for it"
            if token_sent
            else "no access token is set"
        )
        return AuthRequired(
            f"{host} refused access to {repo}: it is private or gated (or does not exist) and "
            f"{token_state}. If you should have access, {_TOKEN_HINT}.",
            details,
        )
    if status == 403:
        return AuthRequired(
            f"Your access token does not give access to {repo}: request access on its page "
            f"on {host}, or use a token with read permission (Preferences → Hugging Face).",
            details,
        )
    if status == 404 or isinstance(exc, RepositoryNotFoundError):
        if repo_id is None:
            return HubError(
                f"{endpoint} has no model search here (HTTP 404); check the HF_ENDPOINT setting.",
                details,
            )
        return RepoNotFound(
            f"There is no model repository {repo} on {host}. Check the name (owner/model).",
            details,
        )
    if status is not None and (status >= 500 or status in (408, 429)):
        return HubUnreachable(
            f"The model hub at {endpoint} is not answering properly (HTTP {status}, "
            f"{tries} tries); it may be down or overloaded. Try again in a few minutes.",
            details,
        )
    if status == 416:
        return HubError(
            f"The hub could not send the part of a file of {repo} that was asked for "
            "(HTTP 416): the file is shorter than the hub's listing says.",
            details,
        )
    return HubError(f"The model hub at {endpoint} answered HTTP {status} for {repo}.", details)
