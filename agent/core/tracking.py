"""The one place that turns settings into an MLflow client, and the retry policy for MLflow calls."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar
from urllib.parse import unquote, urlparse

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from analyze_experiment.agent.core.errors import ConfigurationError, StoreUnavailableError
from analyze_experiment.agent.core.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

P = ParamSpec("P")
R = TypeVar("R")

# MLflow's REST client already retries HTTP 429/5xx itself (urllib3 Retry); we retry only what it
# does not: SQLite lock contention between processes and errors the store marks as temporary.
PROBE_TIMEOUT_S = 5
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED"}
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "deadlock")


def is_transient(error: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    text = str(error).lower()
    if any(marker in text for marker in _TRANSIENT_MESSAGES):
        return True
    return isinstance(error, MlflowException) and error.error_code in _TRANSIENT_CODES


_DOWN_MESSAGES = (
    "max retries exceeded",
    "connection refused",
    "connection aborted",
    "remotedisconnected",
    "failed to establish a new connection",
    "read timed out",
)


def is_store_down(error: BaseException) -> bool:
    """A REST tracking store that stopped answering (after MLflow's own HTTP retries)."""
    import requests

    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return True
    text = str(error).lower()
    return type(error).__module__.startswith("mlflow") and any(marker in text for marker in _DOWN_MESSAGES)


def retry_transient(func: Callable[P, R]) -> Callable[P, R]:
    """Retry a call to the tracking store on transient failures, then fail plainly."""
    retrying = retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(6),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
        reraise=True,
    )(func)

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return retrying(*args, **kwargs)
        except Exception as error:
            if is_transient(error):
                raise StoreUnavailableError(
                    f"the tracking store kept failing ({error}); try again in a moment"
                ) from error
            raise

    return call


def prepare_environment(settings: Settings) -> None:
    """MLflow reads auth and a few switches from the process environment, not from our env file."""
    os.environ.update(settings.mlflow_environment())
    # Keep MLflow off the network unless the user asked otherwise.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
    if settings.store_kind == "file":
        # MLflow 3.17 keeps file stores in maintenance mode and refuses them unless asked; a user who
        # points us at one has data there, and the seed workflow supports it.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def check_store_exists(settings: Settings) -> None:
    """MLflow silently creates a new, empty store at a mistyped path; refuse instead."""
    if settings.tracking_uri_is_default:
        settings.home.mkdir(parents=True, exist_ok=True)
        return
    path = local_store_path(settings.tracking_uri)
    if path is not None and not path.exists():
        what = "file" if settings.store_kind == "sqlite" else "directory"
        raise ConfigurationError(
            f"there is no MLflow store at {path} (no such {what}); check MLFLOW_TRACKING_URI (or --tracking-uri)"
        )


def create_sqlite_store(settings: Settings) -> None:
    """For commands that write new data (demo): a SQLite store that does not exist yet is created, as
    MLflow would; only commands that read refuse a missing one. MLflow adds its tables on first use."""
    import sqlite3

    path = local_store_path(settings.tracking_uri) if settings.store_kind == "sqlite" else None
    if path is None or path.exists():
        return
    try:
        _require_creatable_directory(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    except (OSError, sqlite3.Error) as error:
        raise ConfigurationError(
            f"cannot create the SQLite store {path} ({error}); pass --tracking-uri sqlite:///PATH "
            "with PATH in a directory you can write to"
        ) from error


def _require_creatable_directory(folder: Path) -> None:
    """Refuse before creating any directory, so a path that cannot be made leaves nothing behind."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"{existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{existing} is not writable")


def local_store_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        raw = uri.split("://", 1)[1]
        return None if raw in {"", "/:memory:"} else Path(raw[1:] if raw.startswith("/") else raw).absolute()
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return None


def file_store_path(uri: str) -> Path | None:
    """The directory of a file store (a file:// URI or a bare path), None for any other store."""
    scheme = urlparse(uri).scheme
    if scheme == "file" or (not scheme and not uri.startswith("databricks")):
        return Path(unquote(urlparse(uri).path)).absolute()
    return None


def file_store_refusal(uri: str) -> str | None:
    """Why an analysis cannot use a file store, and the way out; None for other stores."""
    path = file_store_path(uri)
    if path is None:
        return None
    return (
        f"the file store {path} cannot link traces to runs, which analyses need (MLflow keeps file stores "
        f"in maintenance mode); migrate it with `mlflow migrate-filestore --source {path} --target "
        "sqlite:///mlflow.db` and use that URI"
    )


def unreachable_store(settings: Settings) -> str | None:
    """For HTTP stores, a plain explanation when nothing answers at the address (None when it does).

    MLflow's REST client and the Databricks SDK retry a dead address for minutes; one short probe
    turns that wait into an immediate, readable answer.
    """
    if settings.is_databricks:
        url, shown, fix = settings.databricks_host, settings.databricks_host, "check DATABRICKS_HOST"
    elif settings.store_kind in {"http", "https"}:
        url, shown, fix = (
            settings.tracking_uri,
            settings.display_uri(),
            "start `mlflow server` or fix MLFLOW_TRACKING_URI",
        )
    else:
        return None
    if not url:
        return None
    address = url if "://" in url else f"https://{url}"
    try:
        urllib.request.urlopen(urllib.request.Request(address, method="HEAD"), timeout=PROBE_TIMEOUT_S)
    except urllib.error.HTTPError:
        return None  # something answered; MLflow will say whether it is the right thing
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"nothing answers at {shown} ({getattr(error, 'reason', error)}); {fix}"
    return None


def connect(settings: Settings) -> MlflowClient:
    check_store_exists(settings)
    problem = unreachable_store(settings)
    if problem:
        raise StoreUnavailableError(problem)
    prepare_environment(settings)
    from mlflow import MlflowClient

    quiet_mlflow_logging()
    return MlflowClient(tracking_uri=settings.tracking_uri)


def quiet_mlflow_logging() -> None:
    """MLflow's INFO lines (creating and migrating a new store, queue flushes) are noise on a command
    line; warnings and errors stay. Importing mlflow sets its loggers to INFO, so this must come after
    that import. A user who sets MLFLOW_LOGGING_LEVEL gets what they asked for."""
    import mlflow  # noqa: F401

    if os.environ.get("MLFLOW_LOGGING_LEVEL"):
        return
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def fluent_tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent (global) API at `uri` for a block, then put everything back.

    `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI to the environment, which would make
    the next settings load in this process think the user chose that store.
    """
    import mlflow

    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    saved_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_uri)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
