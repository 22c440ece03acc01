"""Proposals: a repository change prepared once and signed by each key holder apart.

Root keys are meant to be offline, each with its own holder. A proposal
carries the exact document to install, in an attached envelope holding the
signatures gathered so far, with the root and the manifest it applies on top
of. A holder checks and signs it on their own machine (or HSM), without the
repository; the repository takes it whole, once every threshold is met:

    {"_type": "aoe.repository.proposal", "formatVersion": 1,
     "base": {"manifest": <envelope>, "root": <envelope>},
     "manifest": <envelope>, "root": <envelope, for a rotation only>}

in RFC 8785 canonical form (docs/format.md §15.8.6). A rotation proposes
root N+1 and the manifest that carries the repository over to it, both to
be signed by a threshold of root N's keys and of root N+1's (§15.8.5); an
edit proposes manifest M+1, to be signed by a threshold of root N's keys.
No I/O here: :mod:`aoe_pack.publish.ceremony` reads, writes and installs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from aoe_pack import dsse
from aoe_pack._jcs import canonical_json_integral as canonical_json
from aoe_pack._jcs import json_values_beyond
from aoe_pack.errors import (
    ProposalError,
    RepositoryFormatError,
    RootRotationError,
    UntrustedMetadataError,
)
from aoe_pack.keys import PublicKey, SigningKey
from aoe_pack.repository import envelope
from aoe_pack.repository.envelope import Envelope, loads_integral
from aoe_pack.repository.limits import DEFAULT_LIMITS, Limits
from aoe_pack.repository.model import FORMAT_VERSION, Manifest
from aoe_pack.repository.root import Root
from aoe_pack.repository.trust import verify_manifest

PROPOSAL_KIND = "aoe.repository.proposal"
_MEMBERS = {"_type", "formatVersion", "base", "manifest"}


class Kind(StrEnum):
    """What a proposal installs."""

    EDIT = "edit"
    """Manifest M+1: a publish, yank, rollout, pin or resign."""
    ROTATION = "rotate-root"
    """Root N+1, and the manifest that bridges the two roots."""


@dataclass(frozen=True)
class RoleStatus:
    """How far one proposed document is from one root's threshold."""

    document: str
    """``root`` or ``manifest``."""
    root_version: int
    """The root whose keys must sign it."""
    threshold: int
    signed_by: tuple[str, ...]
    """Key ids of that root that signed it."""
    can_sign: tuple[str, ...]
    """Key ids of that root that have not signed it yet."""

    @property
    def missing(self) -> int:
        """Signatures still needed to reach the threshold."""
        return max(0, self.threshold - len(self.signed_by))

    def describe(self, documents: str = "") -> str:
        """One line for people: who signed, and who may still sign."""
        signed = ", ".join(f"{k[:16]}…" for k in self.signed_by) or "none"
        text = (
            f"root version {self.root_version}'s keys: {len(self.signed_by)} of "
            f"{self.threshold} on the proposed {documents or self.document} (signed: {signed})"
        )
        if self.missing:
            may = ", ".join(f"{k[:16]}…" for k in self.can_sign)
            text += f"; {self.missing} more needed, from: {may}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "rootVersion": self.root_version,
            "threshold": self.threshold,
            "signedBy": list(self.signed_by),
            "missing": self.missing,
            "canSign": list(self.can_sign),
        }


@dataclass(frozen=True)
class Proposal:
    """A parsed proposal; build one with :func:`new_proposal` or :func:`parse_proposal`.

    Every signature it holds is by a key it needs and verifies: anything else
    is refused when it is parsed.
    """

    base_root: Root
    base_root_bytes: bytes
    base_root_signed_by: frozenset[str]
    """Key ids of the base root whose signatures on it verify."""
    base_manifest: Manifest
    base_manifest_bytes: bytes
    base_manifest_sha256: str
    """SHA-256 of the base manifest's signed payload (what devices remember, §15.6)."""
    manifest: Manifest
    manifest_envelope: Envelope
    root: Root | None = None
    root_envelope: Envelope | None = None

    @property
    def kind(self) -> Kind:
        return Kind.EDIT if self.root is None else Kind.ROTATION

    @property
    def roots(self) -> tuple[Root, ...]:
        """The roots a threshold of whose keys must sign every proposed document."""
        return (self.base_root,) if self.root is None else (self.base_root, self.root)

    @property
    def keys(self) -> dict[str, PublicKey]:
        """Every key that may sign this proposal, by id."""
        return {kid: k for r in self.roots for kid, k in r.keys.items()}

    @property
    def manifest_sha256(self) -> str:
        """SHA-256 of the proposed manifest's payload."""
        return hashlib.sha256(self.manifest_envelope.payload).hexdigest()

    @property
    def restarts_manifest_version(self) -> bool:
        return self.manifest.version != self.base_manifest.version + 1

    def documents(self) -> list[tuple[str, Envelope]]:
        """The proposed documents, by name: (``root``,) ``manifest``."""
        docs = [] if self.root_envelope is None else [("root", self.root_envelope)]
        return [*docs, ("manifest", self.manifest_envelope)]

    def signed_by(self) -> frozenset[str]:
        """Key ids with a signature on any proposed document."""
        return frozenset(s.keyid for _, env in self.documents() for s in env.signatures)

    def status(self) -> tuple[RoleStatus, ...]:
        """For each proposed document and each root that must sign it: how far it is."""
        out = []
        for name, env in self.documents():
            have = {s.keyid for s in env.signatures}
            for r in self.roots:
                out.append(
                    RoleStatus(
                        name,
                        r.version,
                        r.threshold,
                        tuple(sorted(have & set(r.keys))),
                        tuple(sorted(set(r.keys) - have)),
                    )
                )
        return tuple(out)

    @property
    def complete(self) -> bool:
        """Whether every threshold is met: the proposal can be installed."""
        return all(s.missing == 0 for s in self.status())

    def check_signer(self, key_id: str) -> None:
        """ProposalError unless ``key_id`` is needed here and has not signed yet."""
        if key_id not in self.keys:
            versions = " and ".join(f"root version {r.version}" for r in self.roots)
            raise ProposalError(
                f"key {key_id[:16]}… is not one this proposal needs: it takes signatures "
                f"by the keys of {versions}",
                hint="`aoe-pack manifest inspect-proposal` lists the keys that may sign",
            )
        if key_id in self.signed_by():
            raise ProposalError(
                f"key {key_id[:16]}… has signed this proposal already; each key signs once",
                hint="pass the file on to the next key holder",
            )

    def with_signature(self, key: SigningKey) -> Proposal:
        """This proposal with ``key``'s signature added to every proposed document."""
        self.check_signer(key.key_id)

        def signed(env: Envelope) -> Envelope:
            if len(env.signatures) >= DEFAULT_LIMITS.max_signatures:
                raise ProposalError(
                    f"the proposal holds {len(env.signatures)} signatures, the most an "
                    "envelope may carry"
                )
            new = dsse.sign(env.payload_type, env.payload, [key])
            sigs = sorted((*env.signatures, *new), key=lambda s: s.keyid)
            return Envelope(env.payload_type, env.payload, tuple(sigs), env.body)

        return replace(
            self,
            manifest_envelope=signed(self.manifest_envelope),
            root_envelope=None if self.root_envelope is None else signed(self.root_envelope),
        )

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_type": PROPOSAL_KIND,
            "formatVersion": FORMAT_VERSION,
            "base": {
                "manifest": json.loads(self.base_manifest_bytes),
                "root": json.loads(self.base_root_bytes),
            },
            "manifest": json.loads(self.manifest_envelope.to_bytes()),
        }
        if self.root_envelope is not None:
            doc["root"] = json.loads(self.root_envelope.to_bytes())
        return doc

    def to_bytes(self) -> bytes:
        """The proposal file: canonical JSON."""
        return canonical_json(self.to_dict())


def describe_status(status: tuple[RoleStatus, ...], *, only_missing: bool = False) -> list[str]:
    """One line per root, for the documents it has signed alike (a rotation's root and
    manifest are signed together, so normally alike)."""
    groups: dict[tuple[int, tuple[str, ...]], list[RoleStatus]] = {}
    for s in status:
        if s.missing or not only_missing:
            groups.setdefault((s.root_version, s.signed_by), []).append(s)
    return [same[0].describe(" and ".join(s.document for s in same)) for same in groups.values()]


def _unsigned(payload_type: str, document: Any) -> Any:
    return json.loads(Envelope(payload_type, canonical_json(document), ()).to_bytes())


def new_proposal(
    *, base_root: bytes, base_manifest: bytes, manifest: Manifest, root: Root | None = None
) -> Proposal:
    """An unsigned proposal of ``manifest`` (and ``root``) on top of the two base envelopes.

    It is built as its file and parsed back, so that what a preparer writes
    is exactly what every holder and the installer will accept.
    """
    doc: dict[str, Any] = {
        "_type": PROPOSAL_KIND,
        "formatVersion": FORMAT_VERSION,
        "base": {"manifest": json.loads(base_manifest), "root": json.loads(base_root)},
        "manifest": _unsigned(envelope.MANIFEST_TYPE, manifest.to_dict()),
    }
    if root is not None:
        doc["root"] = _unsigned(envelope.ROOT_TYPE, root.to_dict())
    return parse_proposal(canonical_json(doc), what="the new proposal")


def _canonical(value: Any) -> bytes | None:
    # A lone surrogate ("\ud800") has no canonical form: such a file matches nothing.
    try:
        return canonical_json(value)
    except (UnicodeError, ValueError, RecursionError):
        return None


def _frame(data: bytes, what: str, limits: Limits) -> dict[str, Any]:
    """The proposal's JSON object, checked for size, shape and canonical form."""
    if len(data) > limits.max_proposal_bytes:
        raise RepositoryFormatError(
            f"{what} holds more than {limits.max_proposal_bytes} bytes, more than a proposal can"
        )
    values = json_values_beyond(data, limits.max_proposal_values)
    if values is not None:
        raise RepositoryFormatError(
            f"{what} holds {values} JSON values; the limit is {limits.max_proposal_values}"
        )
    try:
        doc = loads_integral(data)
    except (ValueError, RecursionError) as e:
        raise RepositoryFormatError(
            f"{what} is not valid JSON (truncated, or not a proposal): {e}"
        ) from e
    if not isinstance(doc, dict) or not _MEMBERS <= set(doc) <= {*_MEMBERS, "root"}:
        raise RepositoryFormatError(
            f"{what} must be a proposal: an object holding exactly _type, formatVersion, "
            "base, manifest and, for a root rotation, root"
        )
    if doc["_type"] != PROPOSAL_KIND:
        raise RepositoryFormatError(f"{what} is not a proposal (_type {doc['_type']!r:.60})")
    if type(doc["formatVersion"]) is not int or doc["formatVersion"] != FORMAT_VERSION:
        raise RepositoryFormatError(
            f"{what} has formatVersion {doc['formatVersion']!r:.20}; this aoe-pack reads "
            f"{FORMAT_VERSION}",
            hint="sign and install it with the aoe-pack version that prepared it",
        )
    if not isinstance(doc["base"], dict) or set(doc["base"]) != {"manifest", "root"}:
        raise RepositoryFormatError(f"{what}: base must hold exactly manifest and root")
    if _canonical(doc) != data:
        raise RepositoryFormatError(
            f"{what} is not in canonical form (RFC 8785)",
            hint="proposal files are written and passed on as aoe-pack wrote them; "
            "do not reformat them",
        )
    return doc


def _envelope(
    obj: Any, payload_type: str, what: str, cap: int, *, unsigned: bool
) -> tuple[bytes, Envelope]:
    data = canonical_json(obj)  # canonical already: the whole file was
    if len(data) > cap:
        raise RepositoryFormatError(f"{what} holds more than {cap} bytes")
    return data, envelope.parse(data, payload_type, what=what, unsigned=unsigned)


def parse_proposal(
    data: bytes, *, what: str = "proposal", limits: Limits = DEFAULT_LIMITS
) -> Proposal:
    """Parse a proposal file and check everything that needs no repository.

    The base root must carry a threshold of its own signatures and the base
    manifest a threshold of the base root's; the proposed root must be the
    base root's successor (its version and repository id) and the proposed
    manifest the base manifest's; every signature must be by a key that the
    proposal needs, and must verify.
    """
    doc = _frame(data, what, limits)
    base_root_bytes, base_root_env = _envelope(
        doc["base"]["root"],
        envelope.ROOT_TYPE,
        f"{what}: the base root",
        limits.max_root_bytes,
        unsigned=False,
    )
    base_root = Root.from_dict(base_root_env.document())
    base_signed = frozenset(base_root_env.valid_keyids(dict(base_root.keys)))
    if len(base_signed) < base_root.threshold:
        raise UntrustedMetadataError(
            f"{what}: the base root, version {base_root.version}, has {len(base_signed)} of "
            f"its own {base_root.threshold} required signature(s)"
        )
    base_manifest_bytes, _ = _envelope(
        doc["base"]["manifest"],
        envelope.MANIFEST_TYPE,
        f"{what}: the base manifest",
        limits.max_manifest_bytes,
        unsigned=False,
    )
    base = verify_manifest(
        base_manifest_bytes, base_root, now=dt.datetime.now(dt.UTC), check_expiry=False
    )
    _, manifest_env = _envelope(
        doc["manifest"],
        envelope.MANIFEST_TYPE,
        f"{what}: the proposed manifest",
        limits.max_manifest_bytes,
        unsigned=True,
    )
    proposal = Proposal(
        base_root,
        base_root_bytes,
        base_signed,
        base.manifest,
        base_manifest_bytes,
        base.payload_sha256,
        Manifest.from_dict(manifest_env.document()),
        manifest_env,
    )
    if "root" in doc:
        _, root_env = _envelope(
            doc["root"],
            envelope.ROOT_TYPE,
            f"{what}: the proposed root",
            limits.max_root_bytes,
            unsigned=True,
        )
        proposal = replace(
            proposal, root=Root.from_dict(root_env.document()), root_envelope=root_env
        )
    _check_successors(proposal, what)
    _check_signatures(proposal, what)
    return proposal


def _check_successors(p: Proposal, what: str) -> None:
    base = p.base_root
    if p.root is not None:
        # The rules of a device's root chain (§15.3), before anyone signs.
        if p.root.version != base.version + 1:
            raise RootRotationError(
                f"{what}: root chain broken: expected version {base.version + 1}, found "
                f"{p.root.version}",
                hint="a proposal installs the next root of the chain; prepare it again",
            )
        if base.repository_id is not None and p.root.repository_id != base.repository_id:
            raise RootRotationError(
                f"{what}: root version {p.root.version} names repository "
                f"{p.root.repository_id}, not {base.repository_id} as root version "
                f"{base.version} does",
                hint="a root chain belongs to one repository; its repositoryId never changes",
            )
    expected = p.base_manifest.version + 1
    if p.manifest.version == expected:
        return
    if p.root is not None and p.manifest.version == 1 and _revokes(base, p.root):
        return  # rotate-root --restart-manifest-version (§15.8.5)
    raise ProposalError(
        f"{what}: the proposed manifest is version {p.manifest.version}, but it applies on "
        f"top of version {p.base_manifest.version}, so it must be version {expected}",
        hint="prepare the proposal again",
    )


def _revokes(old: Root, new: Root) -> bool:
    return len(set(old.keys) & set(new.keys)) < new.threshold


def _check_signatures(p: Proposal, what: str) -> None:
    keys: Mapping[str, PublicKey] = p.keys
    versions = " or ".join(str(r.version) for r in p.roots)
    for name, env in p.documents():
        for s in env.signatures:
            if s.keyid not in keys:
                raise ProposalError(
                    f"{what}: the proposed {name} carries a signature by key {s.keyid[:16]}…, "
                    f"which is not a key of root version {versions}",
                    hint="only the keys a proposal needs may sign it; take the file as its "
                    "holders signed it",
                )
        bad = sorted({s.keyid for s in env.signatures} - env.valid_keyids(dict(keys)))
        if bad:
            raise UntrustedMetadataError(
                f"{what}: the signature by key {bad[0][:16]}… on the proposed {name} does "
                "not verify: the document was changed after it was signed",
                hint="take the proposal as its holders signed it, or prepare it again",
            )
