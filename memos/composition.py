"""Compositions: named, versioned sets of memories of any kind, used as one context.

A composition is a MemCube of kind ``composition``: its payload lists its members (id,
kind and the version it was composed with), its metadata holds its name, and each
version is ``derived_from`` the member versions it names. Writing a composition under a
name it already has makes its next version; a rollback-free history of what a context
held stays in its versions.

In chat (``memory: {compose: name}``) the plaintext members are shown at the versions
the composition names, the activation member's block comes first (its KV prefix is
reused) and the parametric member's adapter answers. At most one activation and one
parametric member: a request has one prefix and one adapter. A member that is no
longer served makes the composition refuse to serve (409) until it is written again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memos import validation as check
from memos.errors import ConflictError, InvalidInputError, NotFoundError
from memos.lifecycle import tombstone
from memos.memcube.ids import is_id, new_id
from memos.memcube.models import (
    LIVE_STATES,
    CubeVersion,
    Kind,
    MemCube,
    Operation,
    is_served,
    utcnow,
)
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, content_hash, version_row
from memos.records import NewMemory

if TYPE_CHECKING:
    from memos.core import MemOS

MAX_MEMBERS = 64
MAX_NAME_CHARS = 64
ONE_EACH = (Kind.ACTIVATION.value, Kind.PARAMETRIC.value)  # kinds a composition holds once


@dataclass(frozen=True)
class Member:
    id: str
    kind: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "version": self.version}


@dataclass(frozen=True)
class Composition:
    id: str
    name: str
    version: int
    members: tuple[Member, ...]

    def of_kind(self, kind: str) -> list[Member]:
        return [m for m in self.members if m.kind == kind]


@dataclass(frozen=True)
class ComposedContext:
    """What a chat request is given from a composition."""

    composition: Composition
    texts: tuple[tuple[str, int, str, Any], ...]  # plaintext: (id, version, text, created_at)
    activation_id: str | None
    parametric_name: str | None


class Compositions:
    def __init__(self, memos: MemOS) -> None:
        self.memos = memos

    def put(
        self, namespace: str, name: str, memory_ids: list[str], origin: Origin
    ) -> tuple[Composition, bool]:
        """Compose ``memory_ids`` under ``name``: a new composition, or the next version
        of the one with that name (none when nothing changed); returns it and whether it
        is new. Members are served memories of the namespace."""
        check.namespace(namespace)
        _check_name(name)
        if not isinstance(memory_ids, list) or not 1 <= len(memory_ids) <= MAX_MEMBERS:
            raise InvalidInputError(f"memory_ids must list 1 to {MAX_MEMBERS} memory ids")
        if len(set(memory_ids)) != len(memory_ids):
            raise InvalidInputError("memory_ids names a memory twice")
        for memory_id in memory_ids:
            if not isinstance(memory_id, str) or not is_id(memory_id):
                raise InvalidInputError(f"memory_ids: {memory_id!r} is not a memory id (a UUID)")
        with self.memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            now = utcnow()
            members = []
            for memory_id in memory_ids:
                cube = repo.get(namespace, memory_id)
                if cube is None or not is_served(cube.state, cube.expires_at, now):
                    raise NotFoundError(f"memory {memory_id!r} not found (or not served)")
                if cube.kind == Kind.COMPOSITION.value:
                    raise InvalidInputError(f"memory {memory_id!r} is a composition itself")
                members.append(Member(cube.id, cube.kind, cube.version))
            for kind in ONE_EACH:
                if sum(m.kind == kind for m in members) > 1:
                    raise InvalidInputError(f"a composition holds at most one {kind} memory")
            payload = json.dumps({"members": [m.to_json() for m in members]})
            derived = [{"id": m.id, "version": m.version} for m in members]
            cube = self._named(session, namespace, name, for_update=True)
            if cube is None:
                row = self.memos.new_cube_row(
                    new_id(), namespace, NewMemory(text=payload, metadata={"name": name}),
                    content_hash(Kind.COMPOSITION.value, payload), None, now, Kind.COMPOSITION,
                )  # fmt: skip
                repo.insert_new(
                    [vars(row)], [version_row(row, Operation.CREATE, origin, now, derived)]
                )
                return Composition(row.id, name, 1, tuple(members)), True
            if cube.payload == payload:
                return _of(cube), False  # the same members at the same versions
            cube.payload = payload
            cube.content_hash = content_hash(Kind.COMPOSITION.value, payload)
            cube.version += 1
            cube.updated_at = now
            repo.add_version(CubeVersion(**version_row(cube, Operation.UPDATE, origin, now,
                                                       derived)))  # fmt: skip
            return _of(cube), False

    def get(self, namespace: str, name: str, version: int | None = None) -> Composition:
        """The composition, as it is or at ``version``."""
        check.namespace(namespace)
        _check_name(name)
        with self.memos.db.reader() as session:
            cube = self._named(session, namespace, name)
            if cube is None:
                raise NotFoundError(f"composition {name!r} not found")
            if version is None or version == cube.version:
                return _of(cube)
            check.version(version)
            old = CubeRepository(session).version(cube.id, version)
            if old is None:
                raise NotFoundError(f"composition {name!r} has no version {version}")
            return _parse(cube.id, name, version, old.payload or "")

    def list(self, namespace: str) -> list[Composition]:
        check.namespace(namespace)
        with self.memos.db.reader() as session:
            cubes = CubeRepository(session).of_kind(namespace, Kind.COMPOSITION.value,
                                                    LIVE_STATES)  # fmt: skip
            return sorted((_of(c) for c in cubes), key=lambda c: c.name)

    def delete(self, namespace: str, name: str, origin: Origin) -> Composition:
        """Tombstone the composition (its members are untouched)."""
        check.namespace(namespace)
        _check_name(name)
        with self.memos.db.unit_of_work() as session:
            cube = self._named(session, namespace, name, for_update=True)
            if cube is None:
                raise NotFoundError(f"composition {name!r} not found")
            tombstone(CubeRepository(session), cube, utcnow(), origin)
            return _of(cube)

    def context(self, namespace: str, name: str) -> ComposedContext:
        """What chat is given: the plaintext members' texts at their composed versions,
        the activation member and the parametric member's name; 409 when a member is
        no longer served."""
        composition = self.get(namespace, name)
        with self.memos.db.reader() as session:
            repo = CubeRepository(session)
            now = utcnow()
            texts = []
            parametric = None
            for member in composition.members:
                cube = repo.get(namespace, member.id)
                if cube is None or not is_served(cube.state, cube.expires_at, now):
                    raise ConflictError(
                        f"memory {member.id!r} of composition {name!r} is no longer served; "
                        "write the composition again without it"
                    )
                if member.kind == Kind.PLAINTEXT.value:
                    version = repo.version(member.id, member.version)
                    text = version.payload if version is not None else None
                    if not text:
                        raise ConflictError(f"version {member.version} of {member.id!r} was erased")
                    texts.append((member.id, member.version, text, cube.created_at))
                elif member.kind == Kind.PARAMETRIC.value:
                    parametric = cube.meta.get("name")
        activations = composition.of_kind(Kind.ACTIVATION.value)
        return ComposedContext(
            composition, tuple(texts), activations[0].id if activations else None, parametric
        )

    @staticmethod
    def _named(session: Any, namespace: str, name: str, for_update: bool = False) -> MemCube | None:
        return CubeRepository(session).named(namespace, Kind.COMPOSITION.value, name,
                                             for_update=for_update)  # fmt: skip


def drop_members(
    repo: CubeRepository, cube: MemCube, gone: set[str], origin: Origin, now: Any
) -> bool:
    """In the caller's unit of work (an erasure): the composition ``cube`` without the
    members in ``gone``, as its next version; deleted when none is left. Whether it
    held any of them."""
    composition = _of(cube)
    kept = [m for m in composition.members if m.id not in gone]
    if len(kept) == len(composition.members):
        return False
    if not kept:
        tombstone(repo, cube, now, origin)
        return True
    cube.version += 1
    cube.updated_at = now
    cube.payload = json.dumps({"members": [m.to_json() for m in kept]})
    cube.content_hash = content_hash(Kind.COMPOSITION.value, cube.payload)
    derived = [{"id": m.id, "version": m.version} for m in kept]
    repo.add_version(CubeVersion(**version_row(cube, Operation.UPDATE, origin, now, derived)))
    return True


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not check.NAMESPACE_PATTERN.match(name):
        raise InvalidInputError(
            f"name must be 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-', got {name!r}"
        )


def _of(cube: MemCube) -> Composition:
    return _parse(cube.id, cube.meta["name"], cube.version, cube.payload or "")


def _parse(cube_id: str, name: str, version: int, payload: str) -> Composition:
    members = json.loads(payload)["members"] if payload else []
    return Composition(cube_id, name, version, tuple(Member(**m) for m in members))
