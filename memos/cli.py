"""`memos`: serve, db upgrade, keys, export/import."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from memos.memcube.database import Database

from .config import Settings
from .eval.commands import eval_group

BOOTSTRAP_LABEL = "bootstrap"


def _settings() -> Settings:
    return Settings.from_env()


@click.group()
def main() -> None:
    """MemOS: a memory operating system for LLM agents."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.umask(0o077)  # the database, snapshots and keys it writes are for this user only


# db ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from .migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    click.echo(f"database at {_redacted(settings.database_url)} is up to date")


# keys --------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys (each opens one namespace)."""


@keys.command("create")
@click.option("--namespace", required=True, help="The namespace the key opens.")
@click.option("--label", default=None, help="A note to tell keys apart.")
def keys_create(namespace: str, label: str | None) -> None:
    """Create a key; it is printed once, alone on the last line."""
    from memos.memcube import keys as api_keys

    from . import validation

    validation.namespace(namespace)
    with _database() as database, database.unit_of_work() as session:
        info, secret = api_keys.create_key(session, namespace, label)
    click.echo(
        f"created key {info.id} for namespace {namespace!r}; store it now, it is not shown again:"
    )
    click.echo(secret)


@keys.command("list")
@click.option("--namespace", default=None)
def keys_list(namespace: str | None) -> None:
    """List keys (never their secrets)."""
    from memos.memcube import keys as api_keys

    with _database() as database, database.reader() as session:
        rows = api_keys.list_keys(session, namespace)
    for row in rows:
        status = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        click.echo(f"{row.id}  {row.namespace:<20} {row.prefix}…  {status}  {row.label or ''}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (see `memos keys list`)."""
    from memos.memcube import keys as api_keys

    from .errors import NotFoundError

    try:
        with _database() as database, database.unit_of_work() as session:
            api_keys.revoke_key(session, key_id)
    except NotFoundError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"revoked {key_id}")


# export / import ---------------------------------------------------------------


@main.command("export")
@click.option("--namespace", required=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="-")
def export_cmd(namespace: str, out_path: str) -> None:
    """Write a namespace's served memories as JSON lines (to stdout by default)."""
    from .core import MemOS
    from .transfer import export_jsonl

    with MemOS(_settings()) as memos:
        if out_path == "-":
            count = export_jsonl(memos, namespace, sys.stdout)
        else:
            with open(out_path, "w", encoding="utf-8") as out:
                count = export_jsonl(memos, namespace, out)
    click.echo(f"exported {count} memories", err=True)


@main.command("import")
@click.option("--namespace", required=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_cmd(namespace: str, path: str) -> None:
    """Add the memories of a JSON-lines export to a namespace."""
    from .core import MemOS
    from .errors import MemOSError
    from .transfer import import_jsonl, validate_jsonl

    with MemOS(_settings()) as memos:
        try:
            with open(path, encoding="utf-8") as lines:
                total = validate_jsonl(memos, lines)
            with open(path, encoding="utf-8") as lines:
                imported, skipped = import_jsonl(memos, namespace, lines, total=total)
        except MemOSError as exc:
            raise click.ClickException(exc.detail) from exc
    click.echo(f"imported {imported}, skipped {skipped} already present")


# models ------------------------------------------------------------------------


@main.group()
def models() -> None:
    """The chat model served by the embedded LLM engine."""


@models.command("prepare")
def models_prepare() -> None:
    """Convert the bundled SmolLM2 GGUF into a folder vLLM loads (once)."""
    from memos.llm.model import ModelUnavailableError, is_prepared, prepare_model

    target = _settings().chat_model_dir
    if is_prepared(target):
        click.echo(f"model ready at {target}")
        return
    click.echo(f"converting SmolLM2-135M-Instruct into {target} (once, about a minute) ...")
    try:
        prepare_model(target)
    except ModelUnavailableError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"model ready at {target}")


# serve -------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (costs ~5 %% of a search's CPU; /metrics counts them).")
def serve(host: str, port: int, access_log: bool) -> None:
    """Upgrade the schema, load the embedder and indexes, and serve the REST API."""
    import uvicorn

    from memos.llm.chat import build_chat_service
    from memos.server.app import create_app

    from .core import MemOS
    from .migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)  # also closes a data dir made before files were private
    upgrade(settings.database_url)
    click.echo("loading the embedding model and indexes ...")
    memos = MemOS(settings)
    key_note = _bootstrap_key(memos.db, settings.data_dir)
    chat = build_chat_service(settings)
    app = create_app(memos, chat=chat)
    click.echo(f"MemOS serving on http://{host}:{port}  (OpenAPI at http://{host}:{port}/schema)")
    if chat is not None:
        click.echo(
            f"chat completions at http://{host}:{port}/v1/chat/completions once "
            f"{chat.model_name} is up (the embedded engine takes about 30 s on a CPU)"
        )
    click.echo(key_note)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
    finally:
        if chat is not None:
            chat.backend.close()
        memos.close()


def _bootstrap_key(database: Database, data_dir: Path) -> str:
    """On the very first start, a key for the `default` namespace, saved in the data dir
    and shown this once. Later starts never make another (a revoked one stays revoked)
    and name the file, not the secret."""
    from memos.memcube import keys as api_keys

    path = data_dir / "bootstrap-key"
    with database.unit_of_work() as session:
        made = [k for k in api_keys.list_keys(session, "default") if k.label == BOOTSTRAP_LABEL]
        if not made:
            _, secret = api_keys.create_key(session, "default", label=BOOTSTRAP_LABEL)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secret + "\n")
            path.chmod(0o600)
            return f"created API key for namespace 'default' (saved in {path}): {secret}"
    if made[0].revoked_at is not None:
        return "the bootstrap key was revoked; make keys with `memos keys create`"
    where = f"in {path}" if path.exists() else f"not in {path}; `memos keys create` makes more"
    return f"API key for namespace 'default': {made[0].prefix}… ({where})"


@contextmanager
def _database() -> Iterator[Database]:
    """The configured database with its schema upgraded."""
    from .migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    try:
        yield database
    finally:
        database.dispose()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# mcp ---------------------------------------------------------------------------


@main.command("mcp")
@click.option(
    "--url",
    envvar="MEMOS_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The MemOS service (env MEMOS_URL).",
)
@click.option(
    "--key",
    envvar="MEMOS_API_KEY",
    default=None,
    help="stdio: the API key whose namespace the tools see (env MEMOS_API_KEY). Over "
    "http each client presents its own (Authorization: Bearer).",
)
@click.option(
    "--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True
)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: where to listen")
@click.option("--port", default=8765, show_default=True, type=int, help="http: the port")
def mcp(url: str, key: str | None, transport: str, host: str, port: int) -> None:
    """Serve the memory tools to MCP clients, over stdio or streamable HTTP (at /mcp;
    each client authenticates with its own API key)."""
    from .mcp_server import build_server, serve_http

    logging.getLogger().setLevel(logging.WARNING)  # stdio: stdout carries the protocol
    if transport == "http":
        serve_http(url, host, port)
        return
    if key is None:
        raise click.UsageError("stdio needs --key (or MEMOS_API_KEY): the namespace it serves")
    from memos.client import AsyncMemOSClient

    client = AsyncMemOSClient(base_url=url, api_key=key)
    build_server(lambda _ctx: client).run("stdio")


# eval --------------------------------------------------------------------------

main.add_command(eval_group)
