"""Where the tool reads its configuration: the environment, optionally overlaid by a dotenv file.

This module must stay cheap to import: it is loaded for `--help`. No MLflow here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, SecretStr

from analyze_experiment.agent.core.errors import ConfigurationError

HOME_ENV = "ANALYZE_EXPERIMENT_HOME"
_SQL_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql"}
_KNOWN_SCHEMES = _SQL_SCHEMES | {"file", "http", "https", "databricks", "databricks-uc"}


def default_home() -> Path:
    """The local directory for the embedded store and caches (overridable for tests and CI)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "analyze-experiment"


def default_tracking_uri(home: Path) -> str:
    return f"sqlite:///{home / 'mlflow.db'}"


class Settings(BaseModel):
    """Resolved configuration. Secrets are `SecretStr`: printing the model never shows them."""

    model_config = ConfigDict(frozen=True)

    tracking_uri: str
    tracking_uri_is_default: bool = False
    experiment_id: str | None = None
    home: Path
    databricks_host: str | None = None
    databricks_token: SecretStr | None = None
    databricks_profile: str | None = None
    databricks_warehouse_id: str | None = None
    mlflow_tracking_username: SecretStr | None = None
    mlflow_tracking_password: SecretStr | None = None
    mlflow_tracking_token: SecretStr | None = None
    artifacts_progress_bar: str = "false"
    trace_table_name: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    model: str | None = None
    llm_timeout_s: float = 120.0
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_approvers: frozenset[str] = frozenset()
    slack_api_url: str | None = None

    @property
    def has_llm_endpoint(self) -> bool:
        """An LLM analyst needs a key or an endpoint of its own; without one the offline analyst runs."""
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def store_kind(self) -> str:
        """A human name for the kind of tracking store: sqlite, postgresql, file, http, databricks..."""
        if self.tracking_uri.startswith("databricks"):
            return "databricks"
        scheme = urlparse(self.tracking_uri).scheme
        return scheme.split("+", 1)[0] or "file"

    @property
    def is_databricks(self) -> bool:
        return self.store_kind == "databricks"

    def display_uri(self) -> str:
        """The tracking URI with any password replaced, safe to print."""
        parsed = urlparse(self.tracking_uri)
        if parsed.password:
            netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
            return parsed._replace(netloc=netloc).geturl()
        return self.tracking_uri

    def mlflow_environment(self) -> dict[str, str]:
        """Variables MLflow itself reads (server and Databricks auth, switches); applied to the process
        before connecting, because MLflow reads them there and never from our --env-file.

        The tracking URI is not among them: it is passed to each client explicitly.
        """
        # MLflow's artifact downloads draw a progress bar on every read (with tqdm installed).
        env = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": self.artifacts_progress_bar}
        for name, secret in (
            ("MLFLOW_TRACKING_USERNAME", self.mlflow_tracking_username),
            ("MLFLOW_TRACKING_PASSWORD", self.mlflow_tracking_password),
            ("MLFLOW_TRACKING_TOKEN", self.mlflow_tracking_token),
        ):
            if secret:
                env[name] = secret.get_secret_value()
        if self.databricks_host:
            env["DATABRICKS_HOST"] = self.databricks_host
        if self.databricks_token:
            env["DATABRICKS_TOKEN"] = self.databricks_token.get_secret_value()
        if self.databricks_profile:
            env["DATABRICKS_CONFIG_PROFILE"] = self.databricks_profile
        return env


def read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise ConfigurationError(f"env file {path} does not exist; pass an existing file to --env-file")
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def normalize_tracking_uri(raw: str) -> str:
    """Accept the URIs the seed lists, plus bare paths to a file store, and refuse anything else."""
    value = raw.strip()
    if value in {"databricks", "databricks-uc"}:
        return value
    scheme = urlparse(value).scheme
    if not scheme or len(scheme) == 1:  # a bare path (or a Windows drive letter)
        return Path(value).expanduser().resolve().as_uri()
    base = scheme.split("+", 1)[0]
    if base not in _KNOWN_SCHEMES:
        raise ConfigurationError(
            f"MLFLOW_TRACKING_URI has an unsupported scheme '{scheme}'; use sqlite:///path, "
            "postgresql://..., mysql://..., file:///path, a bare path, http(s)://host or databricks"
        )
    return value


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
) -> Settings:
    """Explicit arguments win over the env file, which wins over the process environment."""
    values = dict(os.environ if environ is None else environ)
    if env_file is not None:
        values.update(read_env_file(env_file))
    home = Path(values[HOME_ENV]).expanduser().resolve() if values.get(HOME_ENV) else default_home()
    raw_uri = tracking_uri or values.get("MLFLOW_TRACKING_URI") or ""
    uri = normalize_tracking_uri(raw_uri) if raw_uri else default_tracking_uri(home)
    settings = Settings(
        tracking_uri=uri,
        tracking_uri_is_default=not raw_uri,
        experiment_id=experiment_id or values.get("MLFLOW_EXPERIMENT_ID") or None,
        home=home,
        databricks_host=values.get("DATABRICKS_HOST") or None,
        databricks_token=SecretStr(values["DATABRICKS_TOKEN"]) if values.get("DATABRICKS_TOKEN") else None,
        databricks_profile=values.get("DATABRICKS_CONFIG_PROFILE") or None,
        databricks_warehouse_id=values.get("DATABRICKS_WAREHOUSE_ID") or None,
        mlflow_tracking_username=_secret(values, "MLFLOW_TRACKING_USERNAME"),
        mlflow_tracking_password=_secret(values, "MLFLOW_TRACKING_PASSWORD"),
        mlflow_tracking_token=_secret(values, "MLFLOW_TRACKING_TOKEN"),
        artifacts_progress_bar=values.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR") or "false",
        trace_table_name=values.get("MLFLOW_TRACE_TABLE_NAME") or None,
        openai_api_key=SecretStr(values["OPENAI_API_KEY"]) if values.get("OPENAI_API_KEY") else None,
        openai_base_url=values.get("OPENAI_BASE_URL") or None,
        model=values.get("ANALYZE_EXPERIMENT_MODEL") or None,
        llm_timeout_s=_seconds(values, "ANALYZE_EXPERIMENT_LLM_TIMEOUT", 120.0),
        slack_bot_token=_secret(values, "SLACK_BOT_TOKEN"),
        slack_signing_secret=_secret(values, "SLACK_SIGNING_SECRET"),
        slack_app_token=_secret(values, "SLACK_APP_TOKEN"),
        slack_channel=values.get("SLACK_CHANNEL") or None,
        slack_approvers=frozenset(u.strip() for u in values.get("SLACK_APPROVERS", "").split(",") if u.strip()),
        slack_api_url=values.get("SLACK_API_URL") or None,
    )
    _check_databricks_auth(settings)
    return settings


def _seconds(values: Mapping[str, str], name: str, default: float) -> float:
    raw = values.get(name)
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ConfigurationError(f"{name}={raw} is not a number of seconds; set it to e.g. 60")
    return seconds


def _secret(values: Mapping[str, str], name: str) -> SecretStr | None:
    return SecretStr(values[name]) if values.get(name) else None


def _check_databricks_auth(settings: Settings) -> None:
    if not settings.is_databricks:
        return
    has_pat = bool(settings.databricks_host and settings.databricks_token)
    if not has_pat and not settings.databricks_profile:
        raise ConfigurationError(
            "MLFLOW_TRACKING_URI=databricks needs DATABRICKS_HOST and DATABRICKS_TOKEN, "
            "or DATABRICKS_CONFIG_PROFILE; set them in the environment or the --env-file"
        )
