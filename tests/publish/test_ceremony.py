"""Offline ceremonies: a change prepared once, signed by each key holder apart, installed once.

The repositories here start at root 1 over three keys (Alice's, Bob's and
Carol's), two of which must sign. The end-to-end test runs each holder as a
machine of its own: a folder with one key file and a fresh process, sharing
nothing with the others but the proposal file passed along. Each attack is
one test asserting the exact error, and that a refused install leaves every
byte of the repository as it was.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from _cli import NO_PASSWORD, Cli
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from aoe_pack import dsse
from aoe_pack._crypto import asymmetric as keys
from aoe_pack._crypto.asymmetric import PrivateKey, private_pem
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack.client.check import refresh
from aoe_pack.errors import (
    ExpiredMetadataError,
    ProposalError,
    ProposalIncompleteError,
    ProposalStaleError,
    RepositoryError,
    RepositoryFormatError,
    RollbackError,
    RootRotationError,
    UntrustedMetadataError,
)
from aoe_pack.publish import ceremony, releases
from aoe_pack.publish.workflow import init_repository, now_utc, read_state, rotate_root
from aoe_pack.repository import envelope
from aoe_pack.repository.model import Manifest, format_time
from aoe_pack.repository.proposal import Proposal, new_proposal, parse_proposal
from aoe_pack.repository.root import Root
from aoe_pack.storage.local import LocalStore
from aoe_pack.storage.open import open_store
from aoe_pack.storage.store import MANIFEST, ROOT, Store, root_name

TAG = "tag_m"
SCHEMAS = Path(__file__).resolve().parents[2] / "aoe_pack" / "schemas"

aoe = Cli(env=NO_PASSWORD)


@dataclass(frozen=True)
class Holders:
    alice: PrivateKey
    bob: PrivateKey
    carol: PrivateKey
    dave: PrivateKey
    """In no root at first: the key a rotation brings in."""
    eve: PrivateKey
    """In no root ever."""


@pytest.fixture(scope="module")
def holders() -> Holders:
    return Holders(*(keys.generate(keys.KeyKind.ED25519) for _ in range(5)))


def _init(store: Store, h: Holders) -> Store:
    """Root 1 over Alice, Bob and Carol, two of whom must sign."""
    init_repository(
        store,
        root_keys=[h.alice.public, h.bob.public, h.carol.public],
        threshold=2,
        sign_keys=[h.alice, h.bob],
    )
    return store


@pytest.fixture
def store(tmp_path: Path, holders: Holders) -> LocalStore:
    s = LocalStore(tmp_path / "repo")
    _init(s, holders)
    return s


def _files(store: LocalStore) -> dict[str, bytes]:
    """Every byte of a folder repository (its lock file aside)."""
    return {
        p.relative_to(store.root).as_posix(): p.read_bytes()
        for p in sorted(store.root.rglob("*"))
        if p.is_file() and p.name != ".aoe-repo.lock"
    }


def _signed(p: Proposal, *signers: PrivateKey) -> Proposal:
    """``p`` signed by each key in turn, through the file as holders pass it on."""
    for key in signers:
        p = parse_proposal(p.to_bytes(), what="proposal.json")
        p = ceremony.sign_proposal(p, key, trusted_root=p.base_root_bytes)
    return parse_proposal(p.to_bytes(), what="proposal.json")


def _short(key: PrivateKey) -> str:
    return f"{key.public.key_id[:16]}…"


# --- the ceremony end to end -------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """One key holder's computer: a folder with their key file, and processes of its own."""

    folder: Path
    key: str

    def receive(self, proposal: Path) -> Path:
        """The proposal file handed over (by mail, a USB stick, ...)."""
        dest = self.folder / "proposal.json"
        shutil.copyfile(proposal, dest)
        return dest

    def sign(self, *extra: str) -> Any:
        r = Cli(env=NO_PASSWORD, process=True, cwd=self.folder, timeout=120)(
            "manifest", "sign-proposal", "proposal.json", "--sign-key", self.key, *extra, json=True
        )
        return r.expect()


def _machine(folder: Path, name: str, key: PrivateKey) -> Machine:
    folder.mkdir()
    (folder / f"{name}.key").write_bytes(private_pem(key, None))
    return Machine(folder, f"{name}.key")


def _device_check(repo: Path, device: Path, installed: str) -> Any:
    return aoe(
        "client", "check", "--repo", repo, "--trusted-root", device / "root.json",
        "--state", device / "state.json", "--tag", TAG, "--installed-version", installed,
        "--local-version", "0.9.0", "--app-version", "1.0.0", "--device-id", "d1", json=True,
    ).expect()  # fmt: skip


def test_two_of_three_rotation_by_three_machines_then_an_edit_by_two(
    tmp_path: Path, holders: Holders, bundle_factory: Any, repo_key: PrivateKey
) -> None:
    h = holders
    office = tmp_path / "office"  # the release manager's: the repository, public keys only
    office.mkdir()
    for name, key in (("alice", h.alice), ("bob", h.bob), ("dave", h.dave)):
        (office / f"{name}.pub").write_bytes(key.public.pem)
    repo = office / "repo"
    store = _init(LocalStore(repo), h)
    bundle = bundle_factory(TAG, "1.0.0")
    releases.publish(store, [bundle], sign_keys=[h.alice, h.bob], trusted_keys=[repo_key.public])
    device = tmp_path / "device"  # an app shipped with root 1, running release 1.0.0
    device.mkdir()
    shutil.copyfile(repo / "root.json", device / "root.json")
    assert _device_check(repo, device, "1.0.0")["rootVersion"] == 1

    # Carol's key is retired, Dave's comes in; still two of three.
    rotation = office / "rotation.json"
    prepared = aoe(
        "manifest", "rotate-root", "--repo", repo, "--root-key", office / "alice.pub",
        "--root-key", office / "bob.pub", "--root-key", office / "dave.pub",
        "--threshold", 2, "--prepare", "--out", rotation, json=True,
    ).expect()  # fmt: skip
    assert (prepared["kind"], prepared["complete"]) == ("rotate-root", False)
    assert prepared["root"]["keysAdded"] == [h.dave.public.key_id]
    assert prepared["root"]["keysRemoved"] == [h.carol.public.key_id]
    assert [s["missing"] for s in prepared["signatures"]] == [2, 2, 2, 2]

    alice = _machine(tmp_path / "alice-laptop", "alice", h.alice)
    bob = _machine(tmp_path / "bob-laptop", "bob", h.bob)
    dave = _machine(tmp_path / "dave-laptop", "dave", h.dave)
    shutil.copyfile(repo / "root.json", dave.folder / "root.json")  # from a source he trusts

    alice.receive(rotation)
    assert alice.sign()["complete"] is False
    bob.receive(alice.folder / "proposal.json")
    assert bob.sign()["complete"] is True
    dave.receive(bob.folder / "proposal.json")
    signed = dave.sign("--trusted-root", "root.json")
    assert signed["keyId"] == h.dave.public.key_id
    ids = {h.alice.public.key_id, h.bob.public.key_id, h.dave.public.key_id}
    assert {kid for s in signed["signatures"] for kid in s["signedBy"]} == ids

    shutil.copyfile(dave.folder / "proposal.json", rotation)
    installed = aoe("manifest", "apply-proposal", rotation, "--repo", repo, json=True).expect()
    assert (installed["kind"], installed["rootVersion"]) == ("rotate-root", 2)
    assert read_state(store).root.keys.keys() == ids

    # An edit under root 2 that needs two signatures: Bob's and Dave's.
    yank = office / "yank.json"
    aoe(
        "manifest", "yank", "--repo", repo, TAG, "1.0.0", "--reason", "bad accuracy",
        "--prepare", "--out", yank, json=True,
    ).expect()  # fmt: skip
    bob.receive(yank)
    bob.sign()
    dave.receive(bob.folder / "proposal.json")
    assert dave.sign()["complete"] is True  # Dave's key signed root 2: no trusted root needed
    shutil.copyfile(dave.folder / "proposal.json", yank)
    applied = aoe("manifest", "apply-proposal", yank, "--repo", repo, json=True).expect()
    assert applied["kind"] == "edit"

    # The device that trusted root 1 walks to root 2 and takes the yank.
    after = _device_check(repo, device, "1.0.0")
    assert (after["rootVersion"], after["manifestVersion"]) == (2, applied["manifestVersion"])
    assert after["action"] == "revert-to-local"


def test_rotation_and_edit_over_s3(s3_repo_url: str, holders: Holders, tmp_path: Path) -> None:
    h = holders
    store = _init(open_store(s3_repo_url), h)
    try:
        root_1 = read_state(store).head_bytes
        state_path = tmp_path / "state.json"
        refresh(store, trusted_root=root_1, state_path=state_path, now=now_utc())

        rotation = ceremony.prepare_rotation(
            store, new_keys=[h.alice.public, h.bob.public, h.dave.public], threshold=2
        )
        ceremony.apply_proposal(store, _signed(rotation, h.alice, h.bob))
        resign = ceremony.prepare_edit(store, releases.resign_edit)
        installed = ceremony.apply_proposal(store, _signed(resign, h.bob, h.dave))

        root, manifest = refresh(store, trusted_root=root_1, state_path=state_path, now=now_utc())
        assert (root.version, manifest.version) == (2, installed.manifest.version) == (2, 3)
    finally:
        store.close()


def test_prepared_publish_uploads_first_and_installs_once_signed(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey
) -> None:
    bundle = bundle_factory(TAG, "2.0.0")
    proposal, added = releases.prepare_publish(store, [bundle], trusted_keys=[repo_key.public])
    ((tag, rel),) = added
    assert tag == TAG
    assert store.has_blob(rel.url) == rel.size  # uploaded, named by no manifest yet
    assert TAG not in read_state(store).manifest.models
    report = ceremony.inspect_proposal(proposal).to_dict()
    assert report["manifest"]["releases"] == [
        {"tag": TAG, "version": "2.0.0", "change": "added", "fields": [], "release": rel.to_dict()}
    ]
    ceremony.apply_proposal(store, _signed(proposal, holders.carol, holders.alice))
    assert read_state(store).manifest.models[TAG].find("2.0.0") == rel


def test_an_added_release_whose_bundle_is_gone_is_refused(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey
) -> None:
    bundle = bundle_factory(TAG, "2.1.0")
    proposal, [(_, rel)] = releases.prepare_publish(store, [bundle], trusted_keys=[repo_key.public])
    (store.root / rel.url).unlink()
    before = _files(store)
    with pytest.raises(RepositoryError) as e:
        ceremony.apply_proposal(store, _signed(proposal, holders.alice, holders.bob))
    assert e.value.message == f"{TAG} 2.1.0: its bundle {rel.url} is not in {store.url}"
    assert _files(store) == before


# --- what a holder is shown, and what devices would refuse -------------------------------------


def _inspected(proposal: Proposal, tmp_path: Path) -> str:
    """``manifest inspect-proposal``'s text for ``proposal``."""
    path = tmp_path / "shown.json"
    ceremony.write_proposal(path, proposal, overwrite=True)
    shown = aoe("manifest", "inspect-proposal", path)
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_inspect_shows_what_an_added_release_says_to_devices(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey, tmp_path: Path
) -> None:
    """A holder signs the channel, rollout, criticality, app range, runtimes and signers too."""
    options = releases.ReleaseOptions(
        channel="beta", rollout_bp=1250, critical=True, min_app_version="1.2.0",
        max_app_version="3.0.0", required_runtimes=("tflite",),
    )  # fmt: skip
    proposal, [(_, rel)] = releases.prepare_publish(
        store, [bundle_factory(TAG, "2.2.0")], trusted_keys=[repo_key.public], options=options
    )
    report = ceremony.inspect_proposal(proposal).to_dict()
    assert report["manifest"]["releases"] == [
        {"tag": TAG, "version": "2.2.0", "change": "added", "fields": [], "release": rel.to_dict()}
    ]
    assert (
        f"    added    {TAG} 2.2.0\n"
        f"               sha256   {rel.sha256} ({rel.size} bytes)\n"
        "               devices  channel beta, rollout 12.5%, critical\n"
        "               app      1.2.0 to 3.0.0\n"
        "               runtimes tflite (required: tflite)\n"
        f"               signers  {repo_key.public.key_id}\n"
    ) in _inspected(proposal, tmp_path)


def _proposing(store: LocalStore, change: Any) -> Proposal:
    """A proposal of the next manifest with ``change(manifest)`` made to it, however
    a preparer made it: holders see the documents, not how they came about."""
    state = read_state(store)
    bumped = state.manifest.bump(
        expires=now_utc() + dt.timedelta(days=9), models=state.manifest.models
    )
    return new_proposal(
        base_root=state.head_bytes, base_manifest=state.manifest_bytes, manifest=change(bumped)
    )


def test_inspect_reports_members_it_does_not_know(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey, tmp_path: Path
) -> None:
    """A newer publisher's members, at the top or in a tag: devices may act on them."""
    releases.publish(
        store, [bundle_factory(TAG, "1.0.0")], sign_keys=[holders.alice, holders.bob],
        trusted_keys=[repo_key.public],
    )  # fmt: skip

    def extended(m: Manifest) -> Manifest:
        entry = replace(m.models[TAG], extra={"x-note": "ship it"})
        return replace(m, models=m.models.updated(TAG, entry), extra={"x-kill": True})

    proposal = _proposing(store, extended)
    report = ceremony.inspect_proposal(proposal).to_dict()["manifest"]
    assert (report["releases"], report["otherMembers"]) == ([], ["models/tag_m/x-note", "x-kill"])
    shown = _inspected(proposal, tmp_path)
    assert "    changed  models/tag_m/x-note\n    changed  x-kill\n" in shown
    assert "no release changes" not in shown


def test_inspect_text_lists_bundle_keys_removed(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey, tmp_path: Path
) -> None:
    releases.publish(
        store, [bundle_factory(TAG, "1.0.0")], sign_keys=[holders.alice, holders.bob],
        trusted_keys=[repo_key.public],
    )  # fmt: skip
    proposal = _proposing(store, lambda m: replace(m, bundle_keys={}))
    assert ceremony.inspect_proposal(proposal).manifest.bundle_keys_removed == (
        repo_key.public.key_id,
    )
    shown = _inspected(proposal, tmp_path)
    assert f"    bundle key removed {repo_key.public.key_id}\n" in shown
    assert "no release changes" not in shown


def test_a_release_whose_signer_bundle_keys_lack_is_neither_signed_nor_installed(
    store: LocalStore, holders: Holders, bundle_factory: Any, repo_key: PrivateKey
) -> None:
    """Devices refuse to install such a release (§15.6): holders must not sign it."""
    h = holders
    prepared, [(_, rel)] = releases.prepare_publish(
        store, [bundle_factory(TAG, "2.3.0")], trusted_keys=[repo_key.public]
    )
    state = read_state(store)
    proposal = new_proposal(
        base_root=state.head_bytes,
        base_manifest=state.manifest_bytes,
        manifest=replace(prepared.manifest, bundle_keys={}),
    )
    lacking = (
        f"the proposed manifest's {TAG}: 2.3.0 names signer "
        f"{repo_key.public.key_id[:16]}…, which bundleKeys lacks"
    )
    with pytest.raises(RepositoryFormatError) as e:
        ceremony.sign_proposal(proposal, h.alice, trusted_root=proposal.base_root_bytes)
    assert e.value.message == lacking
    signed = proposal.with_signature(h.alice).with_signature(h.bob)  # signed all the same
    before = _files(store)
    with pytest.raises(RepositoryFormatError) as e:
        ceremony.apply_proposal(store, signed)
    assert e.value.message == lacking
    assert _files(store) == before
    assert rel.signers == (repo_key.public.key_id,)


# --- attacks and mistakes ----------------------------------------------------------------------


def test_apply_below_threshold_installs_nothing(store: LocalStore, holders: Holders) -> None:
    h = holders
    rotation = ceremony.prepare_rotation(
        store, new_keys=[h.alice.public, h.bob.public, h.dave.public], threshold=2
    )
    one = _signed(rotation, h.alice)
    before = _files(store)
    with pytest.raises(ProposalIncompleteError) as e:
        ceremony.apply_proposal(store, one)
    others_1 = ", ".join(sorted(f"{k[:16]}…" for k in (h.bob.public.key_id, h.carol.public.key_id)))
    others_2 = ", ".join(sorted(f"{k[:16]}…" for k in (h.bob.public.key_id, h.dave.public.key_id)))
    assert e.value.message == (
        "the proposal is below threshold; nothing was installed: "
        f"root version 1's keys: 1 of 2 on the proposed root and manifest (signed: "
        f"{_short(h.alice)}); 1 more needed, from: {others_1}; "
        f"root version 2's keys: 1 of 2 on the proposed root and manifest (signed: "
        f"{_short(h.alice)}); 1 more needed, from: {others_2}"
    )
    assert _files(store) == before


def test_apply_below_threshold_exits_1_naming_who_is_missing(
    store: LocalStore, holders: Holders, tmp_path: Path
) -> None:
    path = tmp_path / "p.json"
    ceremony.write_proposal(path, _signed(ceremony.prepare_edit(store, releases.resign_edit)))
    before = _files(store)
    doc = aoe("manifest", "apply-proposal", path, "--repo", store.root, json=True).expect(1)
    assert doc["error"]["code"] == "proposal-incomplete"
    assert "0 of 2 on the proposed manifest" in doc["error"]["message"]
    assert _files(store) == before


def test_a_key_outside_the_needed_set_cannot_sign(store: LocalStore, holders: Holders) -> None:
    proposal = ceremony.prepare_edit(store, releases.resign_edit)
    with pytest.raises(ProposalError) as e:
        ceremony.sign_proposal(proposal, holders.dave, trusted_root=proposal.base_root_bytes)
    assert e.value.message == (
        f"key {_short(holders.dave)} is not one this proposal needs: it takes signatures by "
        "the keys of root version 1"
    )


def _edited(proposal: Proposal, change: Any) -> bytes:
    doc = proposal.to_dict()
    change(doc)
    return canonical_json(doc)


def _add_signature(env: dict[str, Any], key: PrivateKey) -> None:
    payload = base64.b64decode(env["payload"])
    (sig,) = dsse.sign(env["payloadType"], payload, [key])
    env["signatures"] = sorted(
        [*env["signatures"], *dsse.encode_signatures([sig])], key=lambda s: s["keyid"]
    )


def test_a_signature_by_a_key_outside_the_needed_set_is_refused(
    store: LocalStore, holders: Holders
) -> None:
    proposal = _signed(ceremony.prepare_edit(store, releases.resign_edit), holders.alice)
    data = _edited(proposal, lambda d: _add_signature(d["manifest"], holders.eve))
    with pytest.raises(ProposalError) as e:
        parse_proposal(data, what="proposal.json")
    assert e.value.message == (
        f"proposal.json: the proposed manifest carries a signature by key {_short(holders.eve)}, "
        "which is not a key of root version 1"
    )


def test_a_document_altered_after_signing_is_refused(store: LocalStore, holders: Holders) -> None:
    proposal = _signed(ceremony.prepare_edit(store, releases.resign_edit), holders.alice)

    def later_expiry(doc: dict[str, Any]) -> None:
        body = json.loads(base64.b64decode(doc["manifest"]["payload"]))
        body["expires"] = "2099-01-01T00:00:00Z"  # frozen devices, the signature kept
        doc["manifest"]["payload"] = base64.b64encode(canonical_json(body)).decode()

    with pytest.raises(UntrustedMetadataError) as e:
        parse_proposal(_edited(proposal, later_expiry), what="proposal.json")
    assert e.value.message == (
        f"proposal.json: the signature by key {_short(holders.alice)} on the proposed manifest "
        "does not verify: the document was changed after it was signed"
    )


def test_a_stale_proposal_is_refused(store: LocalStore, holders: Holders) -> None:
    proposal = _signed(
        ceremony.prepare_edit(store, releases.resign_edit), holders.alice, holders.bob
    )
    # Another edit lands (not the same document: that would be this proposal installed).
    releases.resign(store, sign_keys=[holders.alice, holders.carol], expires=dt.timedelta(days=9))
    before = _files(store)
    with pytest.raises(ProposalStaleError) as e:
        ceremony.apply_proposal(store, proposal)
    assert e.value.message == (
        f"{store.url}/manifest.json is version 2; the proposal was prepared against version 1"
    )
    assert _files(store) == before


def test_a_proposal_raced_at_the_write_is_refused(
    store: LocalStore, holders: Holders, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposal = _signed(
        ceremony.prepare_edit(store, releases.resign_edit), holders.alice, holders.bob
    )
    real = ceremony.swap_manifest

    def raced(*args: Any, **kwargs: Any) -> bool:
        # lands first
        releases.resign(store, sign_keys=[holders.bob, holders.carol], expires=dt.timedelta(days=9))
        return real(*args, **kwargs)

    monkeypatch.setattr(ceremony, "swap_manifest", raced)
    with pytest.raises(ProposalStaleError) as e:
        ceremony.apply_proposal(store, proposal)
    assert e.value.message == (
        f"another publisher wrote {store.url}/manifest.json while the proposal was being "
        "installed; nothing of it was installed"
    )
    assert read_state(store).manifest.version == 2
    assert read_state(store).manifest_bytes != proposal.manifest_envelope.to_bytes()


def test_an_edit_replayed_after_being_applied_is_refused(
    store: LocalStore, holders: Holders
) -> None:
    proposal = _signed(
        ceremony.prepare_edit(store, releases.resign_edit), holders.alice, holders.bob
    )
    ceremony.apply_proposal(store, proposal)
    before = _files(store)
    with pytest.raises(ProposalStaleError) as e:
        ceremony.apply_proposal(store, proposal)
    assert e.value.message == (
        f"this proposal is installed already: {store.url}/manifest.json is its manifest version 2"
    )
    assert _files(store) == before


def test_a_rotation_replayed_after_being_applied_is_refused(
    store: LocalStore, holders: Holders
) -> None:
    h = holders
    proposal = _signed(
        ceremony.prepare_rotation(store, new_keys=[h.alice.public, h.dave.public], threshold=1),
        h.alice,
        h.bob,
    )
    ceremony.apply_proposal(store, proposal)
    before = _files(store)
    with pytest.raises(ProposalStaleError) as e:
        ceremony.apply_proposal(store, proposal)
    assert e.value.message == (
        f"this proposal is installed already: {store.url} is at its root version 2"
    )
    assert _files(store) == before


def test_a_proposal_for_another_repository_is_refused(
    store: LocalStore, holders: Holders, tmp_path: Path
) -> None:
    proposal = _signed(
        ceremony.prepare_edit(store, releases.resign_edit), holders.alice, holders.bob
    )
    other = _init(LocalStore(tmp_path / "other"), holders)  # same keys, another repository
    assert isinstance(other, LocalStore)
    before = _files(other)
    with pytest.raises(ProposalError) as e:
        ceremony.apply_proposal(other, proposal)
    ours = proposal.base_root.repository_id
    theirs = read_state(other).root.repository_id
    assert e.value.message == (
        f"the proposal was prepared for repository {ours}; {other.url} is repository {theirs}"
    )
    assert _files(other) == before


def test_a_proposal_downgrading_the_root_version_is_refused(
    store: LocalStore, holders: Holders, tmp_path: Path
) -> None:
    h = holders
    rotate_root(
        store, new_keys=[h.alice.public, h.bob.public], threshold=2, sign_keys=[h.alice, h.bob]
    )
    proposal = ceremony.prepare_rotation(
        store, new_keys=[h.alice.public, h.bob.public, h.carol.public], threshold=2
    )
    old = Root(
        1,
        {k.public.key_id: k.public for k in (h.alice, h.bob)},
        1,
        proposal.base_root.repository_id,
    )
    payload = canonical_json(old.to_dict())
    env = envelope.Envelope(
        envelope.ROOT_TYPE, payload, dsse.sign(envelope.ROOT_TYPE, payload, [h.alice, h.bob])
    )
    data = _edited(proposal, lambda d: d.__setitem__("root", json.loads(env.to_bytes())))
    path = tmp_path / "downgrade.json"
    path.write_bytes(data)
    before = _files(store)
    with pytest.raises(RootRotationError) as e:
        ceremony.read_proposal(path)
    assert e.value.message == ("downgrade.json: root chain broken: expected version 3, found 1")
    doc = aoe("manifest", "apply-proposal", path, "--repo", store.root, json=True).expect(1)
    assert doc["error"]["code"] == "root-rotation"
    assert _files(store) == before


def test_a_truncated_proposal_file_is_refused(store: LocalStore, tmp_path: Path) -> None:
    path = tmp_path / "proposal.json"
    path.write_bytes(ceremony.prepare_edit(store, releases.resign_edit).to_bytes()[:-40])
    with pytest.raises(RepositoryFormatError) as e:
        ceremony.read_proposal(path)
    assert e.value.message.startswith(
        "proposal.json is not valid JSON (truncated, or not a proposal): "
    )
    doc = aoe("manifest", "inspect-proposal", path, json=True).expect(1)
    assert doc["error"]["code"] == "repository-format"


def test_a_non_canonical_proposal_file_is_refused(store: LocalStore, tmp_path: Path) -> None:
    path = tmp_path / "proposal.json"
    doc = ceremony.prepare_edit(store, releases.resign_edit).to_dict()
    path.write_text(json.dumps(doc, indent=2))  # reformatted on the way
    with pytest.raises(RepositoryFormatError) as e:
        ceremony.read_proposal(path)
    assert e.value.message == "proposal.json is not in canonical form (RFC 8785)"


def test_the_same_signer_twice_is_refused(store: LocalStore, holders: Holders) -> None:
    proposal = _signed(ceremony.prepare_edit(store, releases.resign_edit), holders.alice)
    with pytest.raises(ProposalError) as e:
        ceremony.sign_proposal(proposal, holders.alice)
    assert e.value.message == (
        f"key {_short(holders.alice)} has signed this proposal already; each key signs once"
    )


def test_the_same_signature_listed_twice_in_the_file_is_refused(
    store: LocalStore, holders: Holders
) -> None:
    proposal = _signed(ceremony.prepare_edit(store, releases.resign_edit), holders.alice)

    def twice(doc: dict[str, Any]) -> None:
        doc["manifest"]["signatures"] *= 2  # Alice counted as two of the two needed

    with pytest.raises(UntrustedMetadataError) as e:
        parse_proposal(_edited(proposal, twice), what="proposal.json")
    assert e.value.message == (
        f"proposal.json: the proposed manifest: key {_short(holders.alice)} signed more than "
        "once; each key counts once"
    )


def test_a_proposal_on_a_manifest_rolled_back_past_a_yank_is_refused(
    store: LocalStore,
    holders: Holders,
    bundle_factory: Any,
    repo_key: PrivateKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Manifest 2 put back after the yank of manifest 3: holders would sign the yank away.

    The publisher who wrote manifest 3 refuses to prepare on top of manifest 2,
    and to install a proposal someone else prepared there.
    """
    h = holders
    releases.publish(
        store, [bundle_factory(TAG, "1.0.0")], sign_keys=[h.alice, h.bob],
        trusted_keys=[repo_key.public],
    )  # fmt: skip
    before_yank = (store.root / MANIFEST).read_bytes()
    releases.yank(store, TAG, "1.0.0", reason="leaks data", sign_keys=[h.alice, h.bob])
    (store.root / MANIFEST).write_bytes(before_yank)  # by someone who can write the storage
    rolled_back = (
        f"{store.url}/manifest.json is version 2, older than version 3, which this "
        "publisher already saw or wrote"
    )
    with pytest.raises(RollbackError) as e:
        ceremony.prepare_edit(store, releases.resign_edit)
    assert e.value.message == rolled_back

    with monkeypatch.context() as elsewhere:  # a machine that never read this repository
        elsewhere.setenv("XDG_STATE_HOME", str(tmp_path / "elsewhere"))
        proposal = _signed(ceremony.prepare_edit(store, releases.resign_edit), h.alice, h.bob)
    assert proposal.base_manifest.models[TAG].releases[0].yanked is None
    path = tmp_path / "proposal.json"
    ceremony.write_proposal(path, proposal)
    shown = aoe("manifest", "inspect-proposal", path)
    assert shown.exit_code == 0, shown.output
    base = proposal.base_manifest
    assert (
        f"  base       root version 1, manifest version 2 ({proposal.base_manifest_sha256[:16]}"
        f"…), expires {format_time(base.expires)}\n"
    ) in shown.stdout
    before = _files(store)
    with pytest.raises(RollbackError) as e:
        ceremony.apply_proposal(store, proposal)
    assert e.value.message == rolled_back
    assert _files(store) == before


def test_a_holder_signs_only_on_top_of_a_root_they_can_vouch_for(
    store: LocalStore, holders: Holders, tmp_path: Path
) -> None:
    h = holders
    rotation = ceremony.prepare_rotation(
        store, new_keys=[h.alice.public, h.dave.public], threshold=2
    )
    with pytest.raises(UntrustedMetadataError) as e:
        ceremony.sign_proposal(rotation, h.dave)  # a new key never signed root 1
    assert e.value.message == (
        f"root version 1, which the proposal applies on top of, carries no signature by key "
        f"{_short(h.dave)}"
    )
    elsewhere = _init(LocalStore(tmp_path / "elsewhere"), h)
    with pytest.raises(UntrustedMetadataError) as e:
        ceremony.sign_proposal(rotation, h.dave, trusted_root=read_state(elsewhere).head_bytes)
    assert e.value.message == (
        "the proposal applies on top of root version 1, not on the trusted root, version 1 "
        "(another root of that version)"
    )
    signed = ceremony.sign_proposal(rotation, h.dave, trusted_root=rotation.base_root_bytes)
    assert h.dave.public.key_id in signed.signed_by()


def test_an_expired_proposal_is_neither_signed_nor_installed(
    store: LocalStore, holders: Holders
) -> None:
    proposal = ceremony.prepare_edit(store, releases.resign_edit, expires=dt.timedelta(hours=1))
    later = proposal.manifest.expires
    with pytest.raises(ExpiredMetadataError):
        ceremony.sign_proposal(proposal, holders.alice, now=later)
    signed = _signed(proposal, holders.alice, holders.bob)
    before = _files(store)
    with pytest.raises(ExpiredMetadataError) as e:
        ceremony.apply_proposal(store, signed, now=later)
    assert e.value.message.startswith("manifest version 2 expired at ")
    assert _files(store) == before


def test_a_rotation_stopped_after_its_manifest_is_finished_by_applying_it_again(
    store: LocalStore, holders: Holders, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = holders
    proposal = _signed(
        ceremony.prepare_rotation(store, new_keys=[h.alice.public, h.dave.public], threshold=2),
        h.alice,
        h.bob,
        h.dave,
    )

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ceremony, "install_root", killed)
        with pytest.raises(KeyboardInterrupt):
            ceremony.apply_proposal(store, proposal)
    assert store.read(root_name(2), max_bytes=1 << 20) is None
    installed = ceremony.apply_proposal(store, proposal)
    assert (installed.root.version, installed.resumed) == (2, True)
    assert read_state(store).root.version == 2


def test_a_rotation_stopped_before_root_json_is_finished_by_applying_it_again(
    store: LocalStore, holders: Holders, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = holders
    proposal = _signed(
        ceremony.prepare_rotation(store, new_keys=[h.alice.public, h.dave.public], threshold=2),
        h.alice,
        h.bob,
        h.dave,
    )
    real = store.replace

    def killed(name: str, data: bytes, *, expected: str | None) -> str:
        if name == ROOT:
            raise KeyboardInterrupt
        return real(name, data, expected=expected)

    with monkeypatch.context() as m:
        m.setattr(store, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            ceremony.apply_proposal(store, proposal)
    assert store.read(ROOT, max_bytes=1 << 20).data == proposal.base_root_bytes  # type: ignore[union-attr]
    installed = ceremony.apply_proposal(store, proposal)
    assert (installed.root.version, installed.resumed) == (2, True)
    assert store.read(ROOT, max_bytes=1 << 20).data == read_state(store).head_bytes  # type: ignore[union-attr]


# --- the command line --------------------------------------------------------------------------


def _registry() -> Registry[Any]:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.rglob("*.schema.json")]
    return Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)


def _schema_errors(command: str, doc: Any) -> list[str]:
    uri = f"https://aoe-pack.dev/schemas/cli/{command}.schema.json"
    v = Draft202012Validator({"$ref": uri}, registry=_registry())
    return [e.message for e in v.iter_errors(doc)]


@pytest.fixture
def cli_repo(tmp_path: Path, holders: Holders, bundle_factory: Any, repo_key: PrivateKey) -> Path:
    store = LocalStore(tmp_path / "repo")
    _init(store, holders)
    bundle = bundle_factory(TAG, "1.0.0")
    releases.publish(
        store, [bundle], sign_keys=[holders.alice, holders.bob], trusted_keys=[repo_key.public]
    )
    return store.root


PREPARED = {
    "manifest-yank": ["manifest", "yank", TAG, "1.0.0", "--reason", "bad"],
    "manifest-rollout": ["manifest", "rollout", TAG, "1.0.0", "25"],
    "manifest-pin": ["manifest", "pin", TAG, "local"],
    "manifest-resign": ["manifest", "resign"],
}


@pytest.mark.parametrize("command", sorted(PREPARED))
def test_every_edit_can_be_prepared_and_says_so_in_its_schema(
    command: str, cli_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.json"
    doc = aoe(*PREPARED[command], "--repo", cli_repo, "--prepare", "--out", out, json=True).expect()
    assert _schema_errors(command, doc) == []
    assert (doc["kind"], doc["proposal"], doc["complete"]) == ("edit", str(out), False)
    assert ceremony.read_proposal(out).manifest.version == 3


def test_publish_and_rotate_root_can_be_prepared_and_say_so_in_their_schemas(
    cli_repo: Path, tmp_path: Path, holders: Holders, bundle_factory: Any, repo_key: PrivateKey
) -> None:
    pub = tmp_path / "dave.pub"
    pub.write_bytes(holders.dave.public.pem)
    bundle = bundle_factory(TAG, "1.1.0")
    trusted = tmp_path / "bundle.pub"
    trusted.write_bytes(repo_key.public.pem)
    runs = {
        "manifest-publish": ["manifest", "publish", bundle, "--trusted-key", trusted],
        "manifest-rotate-root": ["manifest", "rotate-root", "--root-key", pub],
    }
    for command, args in runs.items():
        out = tmp_path / f"{command}.json"
        doc = aoe(*args, "--repo", cli_repo, "--prepare", "--out", out, json=True).expect()
        assert _schema_errors(command, doc) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prepare"], "--prepare needs --out PROPOSAL, the file to write"),
        (["--out", "p.json"], "--out names the proposal file of --prepare; add --prepare"),
        ([], "Missing option '--sign-key'"),
        (
            ["--prepare", "--out", "p.json", "--sign-key", "k.key"],
            "--prepare signs nothing: drop --sign-key",
        ),
    ],
)
def test_signing_or_preparing_is_a_usage_error_when_unclear(
    cli_repo: Path, args: list[str], message: str
) -> None:
    doc = aoe("manifest", "resign", "--repo", cli_repo, *args, json=True).expect(2)
    assert doc["error"]["message"] == message


def test_prepare_refuses_to_overwrite_a_proposal(cli_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    out.write_bytes(b"someone's signatures")
    doc = aoe(
        "manifest", "resign", "--repo", cli_repo, "--prepare", "--out", out, json=True
    ).expect(1)
    assert doc["error"]["code"] == "output"
    assert out.read_bytes() == b"someone's signatures"
