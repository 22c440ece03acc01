"""Files and variables a user names as keys or trusted roots, made hostile.

Each must end in its named error, never in a traceback or a process that
reads until memory runs out. Reads that today's code would never finish run
in a child with a 1 GiB address space, so that a regression fails as a
MemoryError rather than taking the machine down (on macOS, which has no such
cap, the child's time limit alone stops it).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import Cli, aoe

ONE_MIB = 1 << 20
DEV_ZERO = Path("/dev/zero")
# OS facilities, not dependencies: Windows has neither an endless device file nor
# FIFOs, so there is nothing of the kind to hand in. The caps on regular files
# are tested everywhere.
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
# Process substitution (``<(...)``) names a pipe as /dev/fd/N; Windows has no such path.
needs_dev_fd = pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")
# Only POSIX environments hold bytes; Windows' hold UTF-16 text, which no byte can break.
needs_bytes_environ = pytest.mark.skipif(
    not os.supports_bytes_environ, reason="environment variables are text here (Windows)"
)


# The child caps its own address space, then runs the CLI: no preexec_fn in a threaded parent.
# macOS refuses RLIMIT_AS (EINVAL, a ValueError) and would not enforce it either.
_CAPPED = """\
import resource, runpy, sys
if sys.platform != "darwin":
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
sys.argv[0] = "aoe-pack"
runpy.run_module("aoe_pack", run_name="__main__", alter_sys=True)
"""


aoe_in_child = Cli(program=(sys.executable, "-c", _CAPPED), timeout=60)
"""The CLI in a child with a 1 GiB address space and a minute to finish."""


def error(doc: dict) -> tuple[str, str]:
    assert "error" in doc, doc
    return doc["error"]["code"], doc["error"]["message"]


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Path]:
    """A FIFO that, once opened, yields 2 MiB + 1 of PEM-looking text, then ends.

    stat() says 0 bytes; a reader that believes it reads the whole stream.
    """
    path = tmp_path / "stream"
    os.mkfifo(path)

    def feed() -> None:
        try:
            with path.open("wb") as w:
                w.write(b"-----BEGIN PUBLIC KEY-----\n" + b"A" * (2 * ONE_MIB))
        except BrokenPipeError:
            pass  # the reader stopped at its cap: what we want

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    yield path
    if writer.is_alive():  # the command never opened it: unblock the writer
        with path.open("rb") as r:
            r.read()
    writer.join(timeout=10)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder


# --- keys ---------------------------------------------------------------------------------

KEY_TOO_LARGE = "{ref} holds more than 1048576 bytes; a key file is at most 1 MiB"


@needs_dev_zero
@pytest.mark.parametrize("option", ["--trusted-key", "--decryption-key"])
def test_endless_key_file_is_refused_at_its_cap(
    option: str, built_bundle, signer, tmp_path: Path
) -> None:
    bundle = built_bundle()
    pub = tmp_path / "signer.pub"
    pub.write_bytes(signer.public.pem)
    trusted = DEV_ZERO if option == "--trusted-key" else pub
    extra = ["--decryption-key", DEV_ZERO] if option == "--decryption-key" else []
    r = aoe_in_child("verify", bundle, "--trusted-key", trusted, *extra, json=True)
    expected = ("key-format", KEY_TOO_LARGE.format(ref=DEV_ZERO))
    assert (r.exit_code, error(r.doc)) == (1, expected)


@needs_dev_zero
def test_endless_encryption_key_file_is_refused_at_its_cap(signer, tmp_path: Path) -> None:
    from aoe_pack._crypto.asymmetric import private_pem

    config = {"version": "1.0.0", "tag": "t", "runtime": "mnn", "source": "remote", "modelDir": "."}
    (tmp_path / "config.json").write_text(json.dumps({**config, "modelName": "m.mnn"}))
    (tmp_path / "m.mnn").write_bytes(b"model")
    (tmp_path / "signer.key").write_bytes(private_pem(signer, None))
    sign = ["--sign-key", tmp_path / "signer.key", "--out", tmp_path / "out.aoe"]
    kek = ["--encryption-key-file", DEV_ZERO]
    r = aoe_in_child("build", tmp_path / "config.json", *sign, *kek, json=True)
    expected = ("key-format", KEY_TOO_LARGE.format(ref=DEV_ZERO))
    assert (r.exit_code, error(r.doc)) == (1, expected)


@needs_fifo
def test_key_file_longer_than_its_stat_size_is_refused_at_its_cap(pipe: Path, built_bundle) -> None:
    r = aoe("verify", built_bundle(), "--trusted-key", pipe, json=True)
    assert (r.exit_code, error(r.doc)) == (1, ("key-format", KEY_TOO_LARGE.format(ref=pipe)))


@needs_dev_fd
def test_key_through_a_pipe_still_loads(tmp_path: Path, built_bundle, signer) -> None:
    """Process substitution (``--trusted-key <(...)``) hands over a pipe: it must keep working."""
    read_end, write_end = os.pipe()
    os.write(write_end, signer.public.pem)
    os.close(write_end)
    try:
        r = aoe("verify", built_bundle(), "--trusted-key", f"/dev/fd/{read_end}", json=True)
    finally:
        os.close(read_end)
    assert (r.exit_code, r.doc.get("verified")) == (0, True), r.doc


@needs_dev_fd
def test_decryption_key_through_a_pipe_is_read_once(tmp_path: Path, built_bundle, signer) -> None:
    """A pipe yields its bytes once: a private key read twice (once to sniff) came back empty."""
    from aoe_pack._crypto import asymmetric as keys

    device = keys.generate(keys.KeyKind.X25519)
    bundle = built_bundle(recipients=[device.public])
    (tmp_path / "signer.pub").write_bytes(signer.public.pem)
    read_end, write_end = os.pipe()
    os.write(write_end, keys.private_pem(device, None))
    os.close(write_end)
    try:
        r = aoe(
            "verify", bundle, "--trusted-key", tmp_path / "signer.pub",
            "--decryption-key", f"/dev/fd/{read_end}", json=True,
        )  # fmt: skip
    finally:
        os.close(read_end)
    assert (r.exit_code, r.doc.get("decrypted")) == (0, True), r.doc


@needs_bytes_environ
@pytest.mark.parametrize("option", ["--trusted-key", "--decryption-key"])
def test_env_key_reference_holding_non_utf8_bytes_is_key_format(
    option: str, built_bundle, signer
) -> None:
    env = {"AOE_KEY": os.fsdecode(b"\xff\xfe not text"), "AOE_PUB": signer.public.pem.decode()}
    trusted = "env://AOE_KEY" if option == "--trusted-key" else "env://AOE_PUB"
    extra = ["--decryption-key", "env://AOE_KEY"] if option == "--decryption-key" else []
    r = aoe("verify", built_bundle(), "--trusted-key", trusted, *extra, env=env, json=True)
    message = {
        "--trusted-key": "env://AOE_KEY: no PEM public key found",
        "--decryption-key": "env://AOE_KEY: an encryption key file holds 32 random bytes "
        "as 64 hex characters (found 11 bytes)",
    }[option]
    assert (r.exit_code, error(r.doc)) == (1, ("key-format", message))


@needs_bytes_environ
def test_password_variable_holding_non_utf8_bytes_is_used_as_bytes(
    tmp_path: Path, built_bundle, signer
) -> None:
    """A password typed in a Latin-1 terminal is those bytes; it must not crash the tool."""
    from aoe_pack._crypto import asymmetric as keys

    password = b"caf\xe9"
    key = keys.generate(keys.KeyKind.X25519)
    (tmp_path / "dev.key").write_bytes(keys.private_pem(key, password))
    bundle = built_bundle(recipients=[key.public])
    (tmp_path / "signer.pub").write_bytes(signer.public.pem)
    env = {"AOE_PACK_PASSWORD": os.fsdecode(password)}
    r = aoe(
        "verify",
        bundle,
        "--trusted-key",
        tmp_path / "signer.pub",
        "--decryption-key",
        tmp_path / "dev.key",
        env=env,
        json=True,
    )
    assert (r.exit_code, r.doc.get("decrypted")) == (0, True), r.doc


# --- trusted roots --------------------------------------------------------------------------

ROOT_TOO_LARGE = "--trusted-root {path} holds more than 1048576 bytes; a root is at most 1 MiB"
DEVICE = ["--tag", "t", "--app-version", "1.0.0", "--device-id", "d", "--installed-version"]


@needs_dev_zero
def test_endless_trusted_root_is_refused_at_its_cap_by_manifest_verify(repo: Path) -> None:
    r = aoe_in_child("manifest", "verify", "--repo", repo, "--trusted-root", DEV_ZERO, json=True)
    expected = ("repository-format", ROOT_TOO_LARGE.format(path=DEV_ZERO))
    assert (r.exit_code, error(r.doc)) == (1, expected)


@needs_dev_zero
def test_endless_trusted_root_is_refused_at_its_cap_by_client_check(
    repo: Path, tmp_path: Path
) -> None:
    state = ["--state", tmp_path / "state.json"]
    args = ["client", "check", *DEVICE, "1.0.0", "--repo", repo, *state]
    r = aoe_in_child(*args, "--trusted-root", DEV_ZERO, json=True)
    expected = ("repository-format", ROOT_TOO_LARGE.format(path=DEV_ZERO))
    assert (r.exit_code, error(r.doc)) == (1, expected)


@needs_fifo
def test_trusted_root_longer_than_its_stat_size_is_refused_at_its_cap(
    pipe: Path, repo: Path
) -> None:
    r = aoe("manifest", "verify", "--repo", repo, "--trusted-root", pipe, json=True)
    expected = ("repository-format", ROOT_TOO_LARGE.format(path=pipe))
    assert (r.exit_code, error(r.doc)) == (1, expected)
