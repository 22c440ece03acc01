"""The JVM library uses only what Android offers to the apps that still run on API 21.

`.ci/jvm` compiles at `--release 8`, which refuses any API newer than Java 8.
Android lacks some Java 8 API at the levels apps still target, and javac cannot
know that; this test names them. It reads the sources, so it fails on the first
import or use, whatever the build machine's JDK offers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "clients" / "jvm" / "src" / "main" / "java"

# Each: a pattern in the library's sources, and why Android apps cannot use it.
FORBIDDEN = {
    r"\bjava\.nio\.file\b": "java.nio.file: Android API 26+",
    r"\bjava\.time\b": "java.time: Android API 26+",
    r"\bjava\.util\.Base64\b": "java.util.Base64: Android API 26+ (use internal.Codec)",
    r"\bjava\.util\.stream\b": "streams: Android API 24+",
    r"\bjava\.util\.function\b": "java.util.function: Android API 24+",
    r"\bString\.join\(": "String.join: Android API 26+",
    r"\bjava\.lang\.reflect\b": "reflection: no reflection tricks",
    r"\bClass\.forName\(": "reflection: no reflection tricks",
    r"\bjavax\.crypto\.KEM\b": "javax.crypto.KEM: Java 21, absent from Android",
    r"\bjava\.util\.concurrent\.CompletableFuture\b": "CompletableFuture: Android API 24+",
}
ALLOWED_IMPORT = re.compile(r"^import (static )?(java|javax|dev\.aoepack)\.")


def _sources() -> list[Path]:
    return sorted(MAIN.rglob("*.java"))


def _code(line: str) -> bool:
    """False for a comment line: Javadoc may name what the code must not use."""
    return not line.lstrip().startswith(("*", "/*", "//"))


def test_the_library_has_sources() -> None:
    assert len(_sources()) >= 5


@pytest.mark.parametrize("pattern", sorted(FORBIDDEN))
def test_no_api_android_lacks_at_level_21(pattern: str) -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _code(line) and re.search(pattern, line)
    ]
    assert not hits, FORBIDDEN[pattern] + "\n" + "\n".join(hits)


def test_no_third_party_imports() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.startswith("import ") and not ALLOWED_IMPORT.match(line)
    ]
    assert not hits, "the library takes no third-party dependency:\n" + "\n".join(hits)
