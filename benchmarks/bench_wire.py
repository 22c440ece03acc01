"""Bytes on the wire per device check, measured on nginx, for 100 tags x 100 releases.

Run:  .venv/bin/python benchmarks/bench_wire.py [--tags 100] [--releases 100]
      [--other-releases N] [--scale 10,100,1000] [--json]

A folder repository is published with the real publisher
(:mod:`aoe_pack.publish.workflow`: one edit adding every release, then one
edit per scenario, each writing the index, the tag documents, their tag
document patches and the ``.gz`` siblings), and served by Debian's nginx as
tests/_server_nginx.py configures it (``etag on``, ``gzip_static on``). The
device is the real ``aoe-pack client check`` flow (:func:`aoe_pack.client.
check.check` over :class:`~aoe_pack.storage.http.HttpStore`, in process,
deciding without downloading the bundle), with its state and document cache
in a folder of its own.

Bytes come from nginx's access log: per request, ``$bytes_sent`` (the whole
answer: status line, headers, body) plus ``$request_length`` (the whole
request: request line and headers). The table's total is both directions;
``received`` is ``$bytes_sent`` alone, what the earlier figures counted.

Scenarios, in order, each one device check: first contact (no state); the
repository unchanged (index ``304``); another tag changed; the device's tag
changed (one new release), through a patch; the same with the patch missing
(removed: the device's ``404``, then the full document, what a repository
published without patches costs this client); the device's tag three
versions behind (three edits of its tag between two checks: a patch from
each of the 3 documents before a new one is published), and four behind
(no patch from that far back: ``404``, then the full document); and, for
reference, ``manifest.json`` as devices read it before the index.

``--scale`` runs the changed-tag scenario for each number of tags, with the
device's tag at ``--releases`` releases and every other tag at
``--other-releases`` (1 by default there: 1000 tags x 100 releases would pass
the manifest's 32 MiB cap), and prints how the figure and the index move.

Goals (issue 12): <= 1 KB unchanged, <= 8 KB when the device's tag changed,
independent of the number of other tags.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' nginx

from _server_nginx import NginxServer, serve_with_nginx

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.client.check import check
from aoe_pack.client.decide import Device
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, ModelReleases, Models, Release
from aoe_pack.repository.tag_patch import make_patch
from aoe_pack.storage.http import HttpStore
from aoe_pack.storage.local import LocalStore
from aoe_pack.versions import Version

GOAL_UNCHANGED = 1000
GOAL_TAG_CHANGED = 8000
LEVELS = (3, 9, 15, 19, 22)
DEVICE = Device(
    device_id="bench-device",
    app_version="1.0.0",
    runtimes=frozenset({"tflite"}),
    local_version="0.0.1",
)


def _release(tag: str, i: int) -> Release:
    version = f"{1 + i // 100}.{i % 100}.0"
    sha = hashlib.sha256(f"{tag} {version}".encode()).hexdigest()
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=1_000_000 + i,
        sha256=sha,
        runtimes=("tflite",),
        artifacts=({"runtime": "tflite"},),
        salt=hashlib.sha256(f"salt {tag} {i}".encode()).hexdigest()[:32],
        signers=(),
    )


@dataclass(frozen=True)
class Cost:
    """What one device check cost on the wire, from nginx's access log."""

    received: int
    sent: int
    requests: list[str]

    @property
    def total(self) -> int:
        return self.received + self.sent

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "received": self.received,
            "sent": self.sent,
            "requests": self.requests,
        }


class Bench:
    """A published repository on nginx, and one device checking it."""

    def __init__(self, work: Path, server: NginxServer, folder: Path) -> None:
        self.work, self.server, self.folder = work, server, folder
        self.key = keys.generate(keys.KeyKind.ED25519)
        self.store = LocalStore(folder)
        init_repository(self.store, root_keys=[self.key.public], threshold=1, sign_keys=[self.key])
        self.trusted_root = (folder / "root.json").read_bytes()
        self.count: dict[str, int] = {}
        self.marks = 0
        self.state = work / "device" / "state.json"

    def fill(self, tags: list[str], releases: dict[str, int]) -> None:
        def edit(m: Manifest) -> Models:
            return Models(
                {
                    t: ModelReleases(releases=tuple(_release(t, i) for i in range(releases[t])))
                    for t in tags
                }
            )

        edit_manifest(self.store, edit, sign_keys=[self.key])
        self.count = dict(releases)

    def bump(self, tag: str) -> None:
        """Publish one new release of ``tag``."""
        i = self.count[tag]
        self.count[tag] += 1

        def edit(m: Manifest) -> Models:
            return m.models.updated(
                tag, ModelReleases(releases=(*m.models[tag].releases, _release(tag, i)))
            )

        edit_manifest(self.store, edit, sign_keys=[self.key])

    def measure(self, run: Callable[[], object]) -> Cost:
        before = len(self.server.wire())
        run()
        # nginx logs a request once its last byte is out, so a client can be done
        # before the line is written: a marker request, logged after every request of
        # the check (one worker, requests one after the other), says the log is complete.
        self.marks += 1
        mark = f"bench-mark-{self.marks}"
        HttpStore(self.server.url).read(mark, max_bytes=1024)
        while (lines := self.server.wire(at_least=before + 1))[-1].path != mark:
            time.sleep(0.01)
        lines = lines[before:-1]
        return Cost(
            received=sum(r.bytes_sent for r in lines),
            sent=sum(r.request_length for r in lines),
            requests=[f"{r.path} {r.status}" for r in lines],
        )

    def check(self, tag: str) -> Cost:
        store = HttpStore(self.server.url)
        return self.measure(
            lambda: check(
                store, tag=tag, device=DEVICE, trusted_root=self.trusted_root, state_path=self.state
            )
        )

    def manifest_read(self) -> Cost:
        store = HttpStore(self.server.url)

        def read() -> None:
            store.read("roots/2.root.json", max_bytes=1 << 20)
            store.read("manifest.json", max_bytes=32 << 20)

        return self.measure(read)

    def index_version(self, tag: str) -> int:
        v: int = _payload(self.folder / "index.json")["tags"][tag]
        return v


def _payload(path: Path) -> dict[str, Any]:
    env = envelope.parse(path.read_bytes(), _type_of(path), what=path.name)
    doc: dict[str, Any] = env.document()
    return doc


def _type_of(path: Path) -> str:
    return envelope.INDEX_TYPE if path.name == "index.json" else envelope.TAG_TYPE


def _envelope(path: Path) -> envelope.Envelope:
    return envelope.parse(path.read_bytes(), envelope.TAG_TYPE, what=path.name)


def _index_with_digests(path: Path) -> int:
    """The gzip of the index if it listed a SHA-256 per tag (docs §15.12 say why not)."""
    index = _payload(path)
    tags = {
        t: {"version": v, "sha256": hashlib.sha256(t.encode()).hexdigest()}
        for t, v in index["tags"].items()
    }
    return len(gzip.compress(json.dumps({**index, "tags": tags}).encode(), mtime=0))


@contextmanager
def _bench(tmp: Path) -> Iterator[Bench]:
    folder = tmp / "www"
    folder.mkdir()
    with serve_with_nginx(folder, tmp / "nginx") as server:
        yield Bench(tmp, server, folder)


def scenarios(n_tags: int, n_releases: int, other_releases: int) -> dict[str, Any]:
    """Every scenario of the module docstring on one repository."""
    tags = [f"model-{t:04d}" for t in range(n_tags)]
    mine, other = tags[0], tags[-1]
    results: dict[str, Cost] = {}
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, _bench(Path(tmp)) as b:
        b.fill(tags, {t: n_releases if t == mine else other_releases for t in tags})
        results["first contact"] = b.check(mine)
        results["unchanged"] = b.check(mine)
        b.bump(other)
        results["another tag changed"] = b.check(mine)
        old = b.index_version(mine)
        b.bump(mine)
        new = b.index_version(mine)
        results["the device's tag changed (patch)"] = b.check(mine)
        b.bump(mine)
        patch = b.folder / f"tags/{mine}/{b.index_version(mine)}.from-{new}.zst"
        extra["patch bytes"] = patch.stat().st_size
        patch.rename(patch.with_suffix(".held"))
        results["the device's tag changed, patch missing"] = b.check(mine)
        patch.with_suffix(".held").rename(patch)
        held = b.index_version(mine)
        for _ in range(3):
            b.bump(mine)
        results["the device's tag 3 versions behind"] = b.check(mine)
        extra["patch from 3 back"] = (
            (b.folder / f"tags/{mine}/{b.index_version(mine)}.from-{held}.zst").stat().st_size
        )
        for _ in range(4):
            b.bump(mine)
        results["the device's tag 4 versions behind"] = b.check(mine)
        results["manifest.json (before the index)"] = b.manifest_read()
        newest = b.folder / f"tags/{mine}/{b.index_version(mine)}.json"
        prev = _envelope(b.folder / f"tags/{mine}/{old}.json").payload
        target = _envelope(b.folder / f"tags/{mine}/{new}.json")
        levels = {}
        for level in LEVELS:
            start = time.perf_counter()
            size = len(make_patch(prev, target, level=level))
            levels[str(level)] = {
                "bytes": size,
                "ms": round((time.perf_counter() - start) * 1e3, 1),
            }
        extra["patch by zstd level"] = levels
        sizes = {
            "index.json.gz": (b.folder / "index.json.gz").stat().st_size,
            "tag document": newest.stat().st_size,
            "tag document .gz": (newest.parent / (newest.name + ".gz")).stat().st_size,
            "tag document payload, gzip": len(gzip.compress(_envelope(newest).payload, mtime=0)),
            "manifest.json": (b.folder / "manifest.json").stat().st_size,
            "manifest.json.gz": (b.folder / "manifest.json.gz").stat().st_size,
            "index with a SHA-256 per tag, gzip": _index_with_digests(b.folder / "index.json"),
        }
    return {
        "tags": n_tags,
        "releases in the device's tag": n_releases,
        "releases in other tags": other_releases,
        "bytes per check": {k: v.to_dict() for k, v in results.items()},
        "document sizes": sizes,
        **extra,
    }


def scale(counts: list[int], n_releases: int, other_releases: int) -> list[dict[str, Any]]:
    """The changed-tag check (with a patch) and the index, by the number of tags."""
    out = []
    for n in counts:
        tags = [f"model-{t:04d}" for t in range(n)]
        mine = tags[0]
        with tempfile.TemporaryDirectory() as tmp, _bench(Path(tmp)) as b:
            b.fill(tags, {t: n_releases if t == mine else other_releases for t in tags})
            b.check(mine)
            b.bump(mine)
            cost = b.check(mine)
            out.append(
                {
                    "tags": n,
                    "the device's tag changed (patch)": cost.to_dict(),
                    "index.json.gz": (b.folder / "index.json.gz").stat().st_size,
                    "index.json": (b.folder / "index.json").stat().st_size,
                }
            )
    return out


def _verdict(name: str, total: int) -> str:
    goal = GOAL_UNCHANGED if name == "unchanged" else None
    if name in ("the device's tag changed (patch)", "the device's tag 3 versions behind"):
        goal = GOAL_TAG_CHANGED
    return "" if goal is None else f"  goal <= {goal}: {'ok' if total <= goal else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--other-releases", type=int, default=None)
    parser.add_argument("--scale", default="", help="comma-separated tag counts, e.g. 10,100,1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.scale:
        counts = [int(c) for c in args.scale.split(",")]
        other = 1 if args.other_releases is None else args.other_releases
        rows = scale(counts, args.releases, other)
        if args.json:
            print(json.dumps({"scale": rows}, indent=2))
            return
        print(
            f"the device's tag ({args.releases} releases) changed, other tags at {other} "
            "release(s); bytes per check (both directions) and the index"
        )
        print(f"  {'tags':>6} {'check':>8} {'received':>9} {'index.gz':>9} {'index':>9}")
        for r in rows:
            c = r["the device's tag changed (patch)"]
            print(
                f"  {r['tags']:>6} {c['total']:>8,} {c['received']:>9,} "
                f"{r['index.json.gz']:>9,} {r['index.json']:>9,}"
            )
        return
    other = args.releases if args.other_releases is None else args.other_releases
    doc = scenarios(args.tags, args.releases, other)
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    print(
        f"{args.tags} tags x {args.releases} releases (other tags: {other}); nginx, "
        f"bytes per device check ($bytes_sent + $request_length) at "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}"
    )
    print(f"  {'scenario':42} {'total':>9} {'received':>9} {'sent':>6}")
    for name, cost in doc["bytes per check"].items():
        print(
            f"  {name:42} {cost['total']:>9,} {cost['received']:>9,} {cost['sent']:>6,}"
            f"{_verdict(name, cost['total'])}"
        )
        print(f"      {', '.join(cost['requests'])}")
    print("sizes")
    for name, size in doc["document sizes"].items():
        print(f"  {name:42} {size:>9,}")
    print(f"  {'patch (one release)':42} {doc['patch bytes']:>9,}")
    print(f"  {'patch from 3 back':42} {doc['patch from 3 back']:>9,}")
    print("patch of one release by zstd level (bytes, ms to compress)")
    for level, v in doc["patch by zstd level"].items():
        print(f"  level {level:>2} {v['bytes']:>6,} {v['ms']:>7.1f}")


if __name__ == "__main__":
    main()
