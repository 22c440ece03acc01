"""Bytes on the wire per device check, for a repository of 100 tags x 100 releases.

Run:  .venv/bin/python benchmarks/bench_wire.py [--tags 100] [--releases 100] [--json]

A folder repository is published with the library (one edit adding every
release, then edits for the scenarios), and served by Python's own
``http.server`` extended as nginx's ``gzip_static`` serves a static site:
``name.gz`` with ``Content-Encoding: gzip`` when the client accepts gzip, a
``304`` for an unchanged ``If-Modified-Since``. A device's requests (as
``client check`` makes them: the next root, the index conditionally, its tag
document when the index names a version it does not hold) go through a
socket whose received bytes are counted: status line, headers and body.

Scenarios: first contact; unchanged; another tag changed; the device's tag
changed; and, for comparison, the whole manifest.json that devices read
before the index (gzip). It also prints what the index would weigh with a
SHA-256 per tag (the docs explain why it holds versions only).

Goals (issue 12): <= 1 KB unchanged, <= 8 KB when the device's tag changed,
independent of the number of other tags. The lead's nginx end-to-end run
replaces this server once the HTTP transport's conditional requests land.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import email.utils
import gzip
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.model import Manifest, ModelReleases, Models, Release
from aoe_pack.storage.local import LocalStore
from aoe_pack.versions import Version

GOAL_UNCHANGED = 1000
GOAL_TAG_CHANGED = 8000


class GzipStatic(SimpleHTTPRequestHandler):
    """``http.server`` serving ``name.gz`` as nginx's ``gzip_static on`` does."""

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        packed = path.with_name(path.name + ".gz")
        if "gzip" in self.headers.get("Accept-Encoding", "") and packed.is_file():
            stat = path.stat() if path.exists() else packed.stat()
            since = self.headers.get("If-Modified-Since")
            if since and email.utils.parsedate_to_datetime(since).timestamp() >= int(stat.st_mtime):
                self.send_response(304)
                self.end_headers()
                return None
            f = packed.open("rb")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(packed.stat().st_size))
            self.send_header("Last-Modified", self.date_time_string(int(stat.st_mtime)))
            self.end_headers()
            return f
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Device:
    """Counts the bytes of every answer the device receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.held: dict[str, str] = {}  # name -> Last-Modified of the copy it holds

    def get(self, name: str, *, conditional: bool = False) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port)
        headers = {"Accept-Encoding": "gzip"}
        if conditional and name in self.held:
            headers["If-Modified-Since"] = self.held[name]
        conn.request("GET", "/" + name, headers=headers)
        response = conn.getresponse()
        body = response.read()
        head = f"HTTP/1.0 {response.status} {response.reason}\r\n".encode()
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in response.getheaders()) + b"\r\n"
        if response.status == 200 and response.getheader("Last-Modified"):
            self.held[name] = response.getheader("Last-Modified") or ""
        conn.close()
        return len(head) + len(body)


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


def _payload(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))
    return doc


def _touch_later(folder: Path) -> None:
    # Last-Modified has whole seconds: make each edit's documents visibly newer.
    later = dt.datetime.now().timestamp() + 2
    for name in ("index.json", "index.json.gz", "manifest.json", "manifest.json.gz"):
        os.utime(folder / name, (later, later))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    key = keys.generate(keys.KeyKind.ED25519)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo"
        store = LocalStore(folder)
        init_repository(store, root_keys=[key.public], threshold=1, sign_keys=[key])
        tags = [f"model-{t:03d}" for t in range(args.tags)]
        mine, other = tags[0], tags[-1]

        def fill(m: Manifest) -> Models:
            entries = {
                t: ModelReleases(releases=tuple(_release(t, i) for i in range(args.releases)))
                for t in tags
            }
            return Models(entries)

        def bump(tag: str, i: int) -> None:
            def edit(m: Manifest) -> Models:
                return m.models.updated(
                    tag, ModelReleases(releases=(*m.models[tag].releases, _release(tag, i)))
                )

            edit_manifest(store, edit, sign_keys=[key])
            _touch_later(folder)

        edit_manifest(store, fill, sign_keys=[key])
        _touch_later(folder)
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(GzipStatic, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        device = Device(server.server_address[1])
        index_name = "index.json"

        def tag_doc() -> str:
            return f"tags/{mine}/{_payload(folder / index_name)['tags'][mine]}.json"

        def check() -> int:
            total = device.get("roots/2.root.json")  # the next root: 404
            total += device.get(index_name, conditional=True)
            name = tag_doc()  # the device verified the index; it needs this version
            if name not in device.held:
                total += device.get(name)
            return total

        results = {"first contact": check(), "unchanged": check()}
        bump(other, args.releases)
        results["another tag changed"] = check()
        bump(mine, args.releases)
        results["the device's tag changed"] = check()
        results["manifest.json (before the index)"] = device.get("roots/2.root.json") + device.get(
            "manifest.json"
        )
        server.shutdown()
        index = _payload(folder / index_name)
        with_digests = {
            t: {"version": v, "sha256": hashlib.sha256(t.encode()).hexdigest()}
            for t, v in index["tags"].items()
        }
        sizes = {
            "index.json.gz": (folder / "index.json.gz").stat().st_size,
            "index with a SHA-256 per tag, gzip": len(
                gzip.compress(json.dumps({**index, "tags": with_digests}).encode(), mtime=0)
            ),
            f"{tag_doc()}.gz": (folder / (tag_doc() + ".gz")).stat().st_size,
            "manifest.json.gz": (folder / "manifest.json.gz").stat().st_size,
            "manifest.json": (folder / "manifest.json").stat().st_size,
        }
    if args.json:
        print(json.dumps({"bytes per check": results, "document sizes": sizes}, indent=2))
        return
    print(f"{args.tags} tags x {args.releases} releases; bytes received per device check")
    goals = {"unchanged": GOAL_UNCHANGED, "the device's tag changed": GOAL_TAG_CHANGED}
    for name, size in results.items():
        goal = goals.get(name)
        verdict = "" if goal is None else f"  goal <= {goal}: {'ok' if size <= goal else 'MISSED'}"
        print(f"  {name:36} {size:>9,}{verdict}")
    print("document sizes")
    for name, size in sizes.items():
        print(f"  {name:36} {size:>9,}")


if __name__ == "__main__":
    main()
