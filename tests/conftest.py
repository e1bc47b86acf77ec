"""Fixtures: the real embedder (loaded once), and each test's store on SQLite and PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432, database ``test`` (override with
MEMOS_TEST_POSTGRES_URL). Each test run migrates a schema of its own and drops it at
the end; each test uses namespaces of its own, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder, load_embedder
from memos.memcube import keys
from memos.migrate import scratch_schema, upgrade
from memos.server.app import create_app

# CI draws the same examples every run (a property that fails there fails every time);
# a local run draws new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = ROOT / "var" / "test-models"
POSTGRES_URL = os.environ.get(
    "MEMOS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(MODEL_CACHE, "auto")


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'memos.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with scratch_schema(POSTGRES_URL, "memos_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def memos(settings: Settings, embedder: Embedder) -> Iterator[MemOS]:
    store = MemOS(settings, embedder=embedder)
    yield store
    store.close()


@pytest.fixture
def ns() -> str:
    """A namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def other_ns() -> str:
    return f"o{uuid.uuid4().hex[:16]}"


# the REST API -------------------------------------------------------------------------


def api_key(memos: MemOS, namespace: str) -> str:
    """A new bearer key for ``namespace``."""
    with memos.db.unit_of_work() as session:
        return keys.create_key(session, namespace)[1]


@pytest.fixture
def client(memos: MemOS, ns: str) -> Iterator[TestClient]:
    """The app on ``memos`` (no background jobs), with a key for ``ns``."""
    with TestClient(create_app(memos, background_jobs=False)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {api_key(memos, ns)}"
        yield test_client


@pytest.fixture
def other_client(memos: MemOS, other_ns: str, client: TestClient) -> Iterator[TestClient]:
    """The same app, with a key for another namespace."""
    with TestClient(client.app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {api_key(memos, other_ns)}"
        yield test_client


# the LLM engine ---------------------------------------------------------------------
# Started once per test session: loading takes tens of seconds on a CPU. The KV cache
# is capped at TEST_KV_BLOCKS blocks of 128 tokens so that a few long prompts evict.

TEST_KV_BLOCKS = 24
TEST_PIN_CAP = 0.5
TEST_HOST_BLOCKS = 32  # the host tier under the pins: 4 contexts of 7-8 blocks


@pytest.fixture(scope="session")
def chat_model_dir() -> Path:
    from memos.llm.model import prepare_model

    return prepare_model(MODEL_CACHE / "SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def engine(chat_model_dir: Path):
    from memos.llm.engine import Engine, EngineSettings

    running = Engine(
        EngineSettings(
            chat_model_dir, num_blocks=TEST_KV_BLOCKS, pin_cap=TEST_PIN_CAP,
            host_tier_blocks=TEST_HOST_BLOCKS,
        )
    ).start()  # fmt: skip
    yield running
    running.close()


def assert_same_reply(reused, fresh) -> None:
    """Two greedy replies to one prompt, one from KV that was reused (pinned, copied) and
    one prefilled afresh, agree token for token and in log-probability."""
    assert reused.outputs[0].token_ids == fresh.outputs[0].token_ids
    pairs = zip(reused.outputs[0].logprobs, fresh.outputs[0].logprobs, strict=True)
    for reused_step, fresh_step in pairs:
        token = next(iter(fresh_step))
        assert abs(reused_step[token].logprob - fresh_step[token].logprob) < 1e-3
