"""/v1/keys: the caller's namespace's API keys. A new key's secret is shown once; a key
revoked here stops working on this server at once (on other servers within
``RESOLVE_CACHE_S``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import delete, get, post

from memos.api_keys import MAX_LABEL_CHARS, KeyInfo
from memos.core import MemOS

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import Strict


class KeyIn(Strict):
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LABEL_CHARS)] | None = None


class KeyOut(msgspec.Struct):
    id: str
    namespace: str
    prefix: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: KeyInfo) -> KeyOut:
        return cls(**asdict(info))


class NewKeyOut(KeyOut):
    key: str = ""  # the secret: shown in this response only


class KeysOut(msgspec.Struct):
    keys: list[KeyOut]


class KeyController(TenantController):
    path = "/v1/keys"
    tags = ["keys"]

    @get(
        "/",
        sync_to_thread=True,
        summary="The namespace's API keys (no secrets)",
        responses=problems(),
    )
    def list_keys(self, tenant: Tenant, memos: MemOS) -> KeysOut:
        return KeysOut([KeyOut.of(k) for k in memos.keys.list(tenant.namespace)])

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        summary="Create another key",
        responses=problems(),
    )
    def create(self, data: KeyIn, tenant: Tenant, memos: MemOS) -> NewKeyOut:
        info, secret = memos.keys.create(tenant.namespace, data.label)
        return NewKeyOut(**asdict(info), key=secret)

    @delete(
        "/{key_id:str}",
        status_code=204,
        sync_to_thread=True,
        summary="Revoke a key",
        responses=problems(404),
    )
    def revoke(self, key_id: str, tenant: Tenant, memos: MemOS) -> None:
        memos.keys.revoke(key_id, namespace=tenant.namespace)
