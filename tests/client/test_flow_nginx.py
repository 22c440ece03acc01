"""``aoe-pack client check`` against nginx: what a second check costs on the wire.

The repository is published by the real publisher into the folder nginx
serves (``gzip_static on``, ``etag on``, tests/_server_nginx.py), and the
device is the command line, with a state file and its document cache. The
access log says which names each check fetched and with what status: an
unchanged repository costs the next root's 404 and a ``304`` for the index,
and a changed tag comes through its patch (docs/format.md §15.12), never its
full document. macOS and Windows CI have no nginx: .github/workflows/ci.yml
leaves this file out there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli
from _server_nginx import NginxServer, WireRequest

from aoe_pack._crypto.asymmetric import KeyKind, PrivateKey, generate
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.model import Manifest, ModelReleases, Models
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.store import ROOT

sys.path.insert(0, str(Path(__file__).parents[1] / "repository"))
from _factories import release

aoe = Cli(env=NO_PASSWORD)


class Published:
    """A repository served by nginx, and one device's state beside it."""

    def __init__(self, server: NginxServer, work: Path) -> None:
        self.server, self.work = server, work
        self.key: PrivateKey = generate(KeyKind.ED25519)
        self.store = LocalStore(server.root)
        init_repository(self.store, root_keys=[self.key.public], threshold=1, sign_keys=[self.key])
        work.mkdir()
        self.trusted_root = work / "root.json"
        self.trusted_root.write_bytes((server.root / ROOT).read_bytes())
        self.seen = 0

    def add(self, tag: str, version: str) -> int:
        def edit(m: Manifest) -> Models:
            have = m.models[tag].releases if tag in m.models else ()
            return m.models.updated(tag, ModelReleases(releases=(*have, release(version))))

        return edit_manifest(self.store, edit, sign_keys=[self.key]).manifest.version

    def check(self, tag: str) -> dict[str, Any]:
        doc: dict[str, Any] = aoe(
            *("client", "check", "--repo", self.server.url, "--tag", tag),
            *("--installed-version", "0.1.0", "--app-version", "3.0.0", "--device-id", "phone-1"),
            *("--trusted-root", self.trusted_root, "--state", self.work / "state.json"),
            json=True,
        ).expect(0)
        return doc

    def requests(self, count: int) -> list[tuple[str, int]]:
        """The ``count`` requests since the last call, as (path, status)."""
        lines: list[WireRequest] = self.server.wire(at_least=self.seen + count)
        new, self.seen = lines[self.seen :], len(lines)
        return [(r.path, r.status) for r in new]


@pytest.fixture
def published(nginx_server: NginxServer, tmp_path: Path) -> Published:
    p = Published(nginx_server, tmp_path / "device")
    p.add("a", "1.0.0")  # 2
    p.add("b", "1.0.0")  # 3
    return p


def test_second_check_of_an_unchanged_repository_costs_a_304_and_nothing_else(
    published: Published,
) -> None:
    assert published.check("a")["action"] == "download"
    assert published.requests(3) == [
        ("roots/2.root.json", 404),
        ("index.json", 200),
        ("tags/a/2.json", 200),
    ]
    assert published.check("a")["manifestVersion"] == 3
    assert published.requests(2) == [("roots/2.root.json", 404), ("index.json", 304)]
    assert published.requests(0) == []  # nothing more was fetched


def test_a_changed_tag_is_fetched_through_its_patch(published: Published) -> None:
    published.check("a")
    published.requests(3)
    assert published.add("a", "1.1.0") == 4
    doc = published.check("a")
    assert (doc["manifestVersion"], doc["version"]) == (4, "1.1.0")
    wire = published.server.wire(at_least=published.seen + 3)[published.seen :]
    assert [(r.path, r.status) for r in wire] == [
        ("roots/2.root.json", 404),
        ("index.json", 200),
        ("tags/a/4.from-2.zst", 200),
    ]
    patch = wire[-1]
    full_gz = (published.server.root / "tags/a/4.json.gz").stat().st_size
    assert patch.bytes_sent < full_gz  # headers included
