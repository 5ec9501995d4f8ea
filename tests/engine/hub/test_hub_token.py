"""The Hugging Face token QuantDesk keeps: the desktop's secret store, else a 0600 file."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quantdesk.engine.hub.token import TokenRefused, TokenStore, check_token

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz012345"


def test_without_a_secret_store_the_token_goes_to_a_file_only_the_user_reads(tmp_path) -> None:
    store = TokenStore(tmp_path / "config" / "hf-token")
    saved = store.save(f"  {TOKEN}\n")  # pasted with spaces and a newline around it
    assert saved.token == TOKEN and saved.hint == "…2345"
    assert "a file only you can read" in saved.place and str(store.file) in saved.place
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600
    assert store.file.read_text().strip() == TOKEN
    assert not list(store.file.parent.glob("*.part"))
    assert TokenStore(store.file).load() == saved  # a later run reads it back
    store.clear()
    assert not store.file.exists() and store.load() is None
    store.clear()  # nothing saved: no error


def test_a_token_file_others_can_read_is_closed_again(tmp_path) -> None:
    store = TokenStore(tmp_path / "hf-token")
    store.save(TOKEN)
    os.chmod(store.file, 0o644)
    assert store.load().token == TOKEN
    assert stat.S_IMODE(store.file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "empty"), ("   ", "empty"), ("hf_abc def", "not an access token"),
     ("hf_\x00abc", "not an access token"), ("x" * 600, "not an access token")],
)  # fmt: skip
def test_what_is_not_a_token_is_refused_and_nothing_is_written(tmp_path, text, says) -> None:
    store = TokenStore(tmp_path / "hf-token")
    with pytest.raises(TokenRefused, match=says):
        store.save(text)
    assert not store.file.exists()
    assert check_token(" hf_ok ") == "hf_ok"


def test_a_folder_that_cannot_be_written_is_said_in_words(tmp_path) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the config folder should be")
        store = TokenStore(blocked / "hf-token")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        store = TokenStore(folder / "hf-token")
    with pytest.raises(TokenRefused, match="Could not save the token"):
        store.save(TOKEN)


_IN_SESSION = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from quantdesk.engine.hub.token import TokenStore
    store = TokenStore(Path(sys.argv[1]))
    action = sys.argv[2]
    if action == "save":
        saved = store.save(sys.argv[3])
        print(json.dumps({"place": saved.place, "file": store.file.exists()}))
    elif action == "load":
        saved = store.load()
        print(json.dumps(saved and {"token": saved.token, "place": saved.place}))
    else:
        store.clear()
        print(json.dumps(None))
    """
)


def _in_desktop_session(tmp_path: Path, script: str, *, unlocked: bool = True) -> str:
    """Run ``script`` (shell) in a private D-Bus session with GNOME Keyring's Secret Service."""
    unlock = "echo -n login-password | gnome-keyring-daemon --unlock" if unlocked else (
        "gnome-keyring-daemon")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"}
    env["HOME"] = str(tmp_path / "home")  # the keyring's files live under the test's home
    env["XDG_DATA_HOME"] = str(tmp_path / "home" / ".local" / "share")
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    (tmp_path / "inside.py").write_text(_IN_SESSION)
    done = subprocess.run(
        ["dbus-run-session", "--", "bash", "-c",
         f"{unlock} --components=secrets --daemonize >/dev/null && {script}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring-daemon (scripts/test_tools.sh installs them)",
)
def test_with_the_desktop_keyring_the_token_lives_there_and_not_in_a_file(tmp_path) -> None:
    import json

    file = tmp_path / "config" / "hf-token"
    run = f"{sys.executable} {tmp_path / 'inside.py'} {file}"
    out = _in_desktop_session(
        tmp_path, f"{run} save {TOKEN} && {run} load && {run} clear && {run} load"
    ).splitlines()
    saved, loaded, _cleared, after = (json.loads(line) for line in out)
    assert saved == {"place": "the desktop's keyring (SecretService Keyring)", "file": False}
    assert loaded == {"token": TOKEN, "place": saved["place"]}  # read back by another process
    assert after is None
    assert not file.exists()
    # a locked keyring that cannot ask for its password: the file, not a failure
    out = _in_desktop_session(tmp_path, f"{run} save {TOKEN}", unlocked=False)
    assert "a file only you can read" in json.loads(out)["place"]
    assert file.read_text().strip() == TOKEN


def test_the_cli_saves_the_token_from_stdin_and_every_command_sends_it(fake_hub) -> None:
    from tests.support.fake_hub import FAKE_TOKEN
    from tests.support.hub_fixtures import GATED

    def quantdesk(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "quantdesk", *args], input=stdin,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    refused = quantdesk("estimate", GATED)  # reads the GGUF headers: the token is needed
    assert refused.returncode == 2 and "quantdesk token set" in refused.stderr
    bad = quantdesk("token", "set", stdin="not a token\n")
    assert bad.returncode == 2 and "not an access token" in bad.stderr
    saved = quantdesk("token", "set", stdin=FAKE_TOKEN + "\n")
    assert saved.returncode == 0 and "ending in …oken" in saved.stdout
    assert FAKE_TOKEN not in saved.stdout + saved.stderr
    listed = quantdesk("estimate", GATED)
    assert listed.returncode == 0, listed.stderr
    assert "F16" in listed.stdout
    assert "a file only you can read" in quantdesk("token").stdout
    assert quantdesk("token", "remove").returncode == 0
    assert "No token is saved" in quantdesk("token", "status").stdout
