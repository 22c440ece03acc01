"""The Java snippets of docs/android.md compile against the library, at Java 8.

Each block marked ``<!-- compiled by tests/jvm/test_android_docs.py -->`` becomes
the body of a method in a class of its own that supplies what an app has from
its Context and its build (``readAsset``, ``filesDir``, ``BuildConfig``...), so a
renamed class, method or builder option fails here before it misleads a reader.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests._jvm import ROOT, JvmBuild

MARK = "<!-- compiled by tests/jvm/test_android_docs.py -->"
BLOCK = re.compile(re.escape(MARK) + r"\s*```java\n(.*?)```", re.DOTALL)

PRELUDE = """
import dev.aoepack.AlgorithmUnavailableException;
import dev.aoepack.AoeException;
import dev.aoepack.bundle.BundleVerifier;
import dev.aoepack.bundle.VerifiedBundle;
import dev.aoepack.keys.DecryptionKey;
import dev.aoepack.keys.TrustedKey;
import dev.aoepack.repo.Decision;
import dev.aoepack.repo.Device;
import dev.aoepack.repo.UpdateChecker;
import dev.aoepack.update.ModelUpdater;
import java.io.File;

final class {name} {{
  static final class BuildConfig {{
    static final long AOE_MIN_MANIFEST_VERSION = 1L;
    static final String VERSION_NAME = "1.0.0";
  }}
  File filesDir = new File("files");
  File noBackupDir = new File("no_backup");
  String installId = "install-id";
  ModelUpdater updater;
  Device device;

  byte[] readAsset(String name) {{
    return new byte[0];
  }}

  void report(String what, Throwable e) {{}}

  boolean snippet() throws Exception {{
{body}
  }}
}}
"""


def _snippets() -> list[str]:
    return BLOCK.findall((ROOT / "docs" / "android.md").read_text(encoding="utf-8"))


def test_the_page_has_compiled_snippets() -> None:
    assert len(_snippets()) >= 5


def test_every_marked_snippet_compiles_against_the_library(jvm: JvmBuild, tmp_path: Path) -> None:
    assert jvm.returncode == 0, jvm.log[-3000:]
    sources = []
    for n, snippet in enumerate(_snippets()):
        returns = re.search(r"^\s*return\b", snippet, re.MULTILINE)
        body = snippet if returns else snippet + "return false;\n"
        name = f"AndroidDocsSnippet{n}"
        source = tmp_path / f"{name}.java"
        source.write_text(PRELUDE.format(name=name, body=body), encoding="utf-8")
        sources.append(str(source))
    out = subprocess.run(
        [
            "javac",
            "--release",
            "8",
            "-Xlint:-options",
            "-cp",
            str(jvm.out / "classes"),
            "-d",
            str(tmp_path / "classes"),
            *sources,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
