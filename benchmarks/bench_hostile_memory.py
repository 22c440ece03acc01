"""Peak memory of `aoe-pack inspect` / `verify` on hostile bundles, as a ratio to the cap.

Run:  .venv/bin/python benchmarks/bench_hostile_memory.py [--json] [--only NAME]

Every hostile bundle stays under the limits of docs/format.md §4.8 (the
manifest under ``Limits.max_manifest_bytes``, the envelope under
``max_signatures_bytes``) and is signed by a key the verifier trusts, so
`verify` parses the manifest too: the insider of tests/bundle/_tamper.py, who
can sign anything. Each command runs as the real CLI in a child of a fresh
interpreter, whose ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that
command's peak RSS alone. The figures are that peak, the peak over the same
command on the small honest bundle the hostile ones were made from (the
interpreter and its imports), and (peak - honest) / cap: what the hostile
bytes cost per byte the format allows.

Each shape (arrays of ``{}``, ``[]``, ``0``, ``"ab"``, a files list or an
unknown field full of them, an object of distinct keys) comes twice: filling
the byte cap (refused by the value count before anything is parsed), and with
as many values as the limit lets through (parsed, and verified when the
manifest is otherwise valid): the worst an accepted manifest can cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "bundle")]

from _tamper import resign, take_apart  # noqa: E402 - after the path set-up above

from aoe_pack._jcs import canonical_json  # noqa: E402
from aoe_pack.bundle.format import DEFAULT_LIMITS, MANIFEST_ENTRY, SIGNATURES_ENTRY  # noqa: E402

CAP = DEFAULT_LIMITS.max_manifest_bytes
SIG_CAP = DEFAULT_LIMITS.max_signatures_bytes
try:
    from aoe_pack.bundle.manifest import MAX_MANIFEST_VALUES as MAX_VALUES
except ImportError:  # an aoe-pack without the value limit: measure the byte cap alone
    MAX_VALUES = None


def json_value_count(text: bytes) -> int:
    """aoe-pack's count of JSON values, or 0 where it has none (the runs before the limit)."""
    from aoe_pack import _jcs as _canonical

    count = getattr(_canonical, "json_value_count", None)
    return count(text) if count else 0


CONFIG = {
    "version": "1.0.0",
    "tag": "hostile",
    "runtime": "mnn",
    "source": "remote",
    "modelDir": ".",
    "modelName": "model.mnn",
}


def _rss_child(argv: list[str]) -> None:
    """``--rss-of``: run ``argv`` and print its exit code and peak RSS (KiB) as JSON."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    try:
        code = json.loads(p.stdout)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "ok" if p.returncode == 0 else f"exit {p.returncode}"
    print(json.dumps({"rss_kib": peak, "code": code, "wall_s": round(wall, 2)}))


def peak(argv: list[str]) -> dict[str, Any]:
    """Run ``argv`` below a fresh interpreter, so RUSAGE_CHILDREN is that command's alone."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", *argv], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- hostile manifests (raw bytes) --------------------------------------------------------


def _repeat(item: bytes, open_: bytes, close: bytes, budget: int, count: int | None) -> bytes:
    """``open_ item,item,...,item close``: ``count`` items, or as many as ``budget`` bytes hold."""
    n = max(1, (budget - len(open_) - len(close) + 1) // (len(item) + 1))
    return open_ + b",".join([item] * min(n, count or n)) + close


def _splice(doc: dict[str, Any], key: str, raw: Callable[[int, int], bytes], budget: int) -> bytes:
    """Canonical ``doc`` with ``doc[key]`` the JSON ``raw(bytes_left, values_left)``."""
    marker = "\x00splice\x00"
    text = canonical_json({**doc, key: marker})
    raw_marker = canonical_json(marker)
    used = json_value_count(text)
    return text.replace(raw_marker, raw(budget - (len(text) - len(raw_marker)), used))


# (item, values per item): each shape as an array, or spliced into an honest manifest.
SHAPES: dict[str, tuple[bytes, int]] = {
    "{}": (b"{}", 1),
    "[]": (b"[]", 1),
    "0": (b"0", 1),
    '"ab"': (b'"ab"', 1),
}


def hostile_manifests(
    honest: dict[str, Any], budget: int, max_values: int | None
) -> dict[str, bytes]:
    """Manifests an insider could sign, at most ``budget`` bytes; for each shape, one that
    fills the byte cap and (when a value limit exists) one just under that limit."""

    def fits(item: bytes, per: int, used: int) -> int | None:
        return None if max_values is None else (max_values - used - 1) // per

    out: dict[str, bytes] = {}
    for under in ("bytes", "values") if max_values else ("bytes",):
        limit = "filling the byte cap" if under == "bytes" else "just under the value limit"
        for shape, (item, per) in SHAPES.items():
            count = None if under == "bytes" else fits(item, per, 1)
            out[f"array of {shape}, {limit}"] = _repeat(item, b"[", b"]", budget, count)
        for key, item in (("files", b"{}"), ("zz", b"{}"), ("zz", b'"ab"')):
            name = "files list" if key == "files" else "unknown field"
            out[f"{name} of {item.decode()}, {limit}"] = _splice(
                honest,
                key,
                lambda room, used, item=item, under=under: _repeat(
                    item, b"[", b"]", room, None if under == "bytes" else fits(item, 1, used)
                ),
                budget,
            )
        n = budget // 12
        if under == "values" and max_values:
            n = min(n, (max_values - 1) // 2)
        keys = b"{" + b",".join(b'"k%07d":0' % i for i in range(n)) + b"}"
        out[f"object of distinct keys, {limit}"] = (
            keys if len(keys) <= budget else keys[: keys.rfind(b",", 0, budget - 1)] + b"}"
        )
    return out


def build_honest(work: Path) -> tuple[Path, Path]:
    """A small signed bundle and its signer's public key, made with the real CLI."""
    (work / "m").mkdir()
    (work / "m" / "model.mnn").write_bytes(os.urandom(100_000))
    (work / "m" / "config.json").write_text(json.dumps(CONFIG))
    env = {**os.environ, "AOE_PACK_PASSWORD": ""}
    aoe = [sys.executable, "-m", "aoe_pack"]
    subprocess.run(
        [*aoe, "keygen", "--out", str(work / "signer")], check=True, capture_output=True, env=env
    )
    bundle = work / "honest.aoe"
    subprocess.run(
        [
            *aoe,
            "build",
            str(work / "m" / "config.json"),
            "--out",
            str(bundle),
            "--sign-key",
            str(work / "signer.key"),
            "--no-encrypt",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return bundle, work / "signer.pub"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    args = ap.parse_args()
    from aoe_pack._crypto.asymmetric import load_private

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aoe-hostile-") as tmp:
        work = Path(tmp)
        honest, pub = build_honest(work)
        parts = take_apart(honest)
        signer = load_private((work / "signer.key").read_bytes(), None, origin="signer")
        base = {
            cmd: peak([sys.executable, "-m", "aoe_pack", *argv, "--json"])
            for cmd, argv in {
                "inspect": ["inspect", str(honest)],
                "verify": ["verify", str(honest), "--trusted-key", str(pub)],
            }.items()
        }
        cases: dict[str, Callable[[], bytes]] = {}
        for name, manifest in hostile_manifests(parts.manifest(), CAP - 64, MAX_VALUES).items():
            cases[f"manifest: {name}"] = lambda m=manifest: resign(m, parts.payloads, [signer])
        envelope = _repeat(b"{}", b"[", b"]", SIG_CAP - 64, None)
        cases["signatures.json: array of {}"] = lambda: resign(
            parts.manifest_bytes, parts.payloads, [signer], signatures=envelope
        )
        for name, make in cases.items():
            if args.only and args.only not in name:
                continue
            path = work / "hostile.aoe"
            path.write_bytes(make())
            sizes = {e.name: e.size for e in _entries(path)}
            for cmd, argv in {
                "inspect": ["inspect", str(path)],
                "verify": ["verify", str(path), "--trusted-key", str(pub)],
            }.items():
                got = peak([sys.executable, "-m", "aoe_pack", *argv, "--json"])
                extra = (got["rss_kib"] - base[cmd]["rss_kib"]) * 1024 / CAP
                results.append(
                    {
                        "case": name,
                        "command": cmd,
                        "manifestBytes": sizes[MANIFEST_ENTRY],
                        "signaturesBytes": sizes[SIGNATURES_ENTRY],
                        "result": got["code"],
                        "wallSeconds": got["wall_s"],
                        "peakMiB": round(got["rss_kib"] / 1024, 1),
                        "honestPeakMiB": round(base[cmd]["rss_kib"] / 1024, 1),
                        "peakOverCap": round(got["rss_kib"] * 1024 / CAP, 2),
                        "extraOverCap": round(extra, 2),
                    }
                )
                if not args.json:
                    r = results[-1]
                    print(
                        f"{name:40} {cmd:8} {r['result']:16} {r['wallSeconds']:6.2f} s "
                        f"{r['peakMiB']:7.1f} MiB  peak/cap {r['peakOverCap']:5.2f}  "
                        f"(peak-honest)/cap {r['extraOverCap']:5.2f}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps({"capBytes": CAP, "results": results}, indent=2))
    else:
        worst = max(results, key=lambda r: r["extraOverCap"])
        print(
            f"cap {CAP >> 20} MiB; worst (peak-honest)/cap {worst['extraOverCap']} "
            f"({worst['case']}, {worst['command']})"
        )


def _entries(path: Path) -> Any:
    from aoe_pack.bundle.container import read_layout

    with path.open("rb") as f:
        return read_layout(f, file_size=path.stat().st_size).entries


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss-of"]:
        _rss_child(sys.argv[2:])
    else:
        main()
