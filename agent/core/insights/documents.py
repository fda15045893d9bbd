"""Versioned JSON documents stored as artifacts of one MLflow run, with optimistic concurrency.

MLflow has no compare-and-set, except one: a run parameter can be logged once and never changed, and
the SQL stores enforce that with a unique key. Each version of a document is therefore written as its
own immutable artifact, then *claimed* by logging the parameter `insights.<kind>.<id>.v<N>` whose value
names that artifact. Of two writers racing for version N exactly one claim succeeds; the other gets a
`StaleWriteError` and its artifact is never referenced. A crash between the two steps leaves only an
unreferenced file. Writers to different documents never touch the same key, so neither loses the
other's write. The run's parameters are the index: one `get_run` lists every document and version.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyze_experiment.agent.core import failpoints
from analyze_experiment.agent.core.errors import StaleWriteError
from analyze_experiment.agent.core.tracking import retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient

PARAM_PREFIX = "insights"
ARTIFACT_ROOT = "insights"
_CLAIM = re.compile(rf"^{PARAM_PREFIX}\.([a-z_]+)\.([A-Za-z0-9_-]+)\.v([0-9]+)$")


@dataclass(frozen=True)
class Claim:
    kind: str
    doc_id: str
    version: int
    token: str

    @property
    def artifact_path(self) -> str:
        return f"{ARTIFACT_ROOT}/{self.kind}/{self.doc_id}/v{self.version:04d}-{self.token}.json"

    @property
    def param_key(self) -> str:
        return f"{PARAM_PREFIX}.{self.kind}.{self.doc_id}.v{self.version}"


class DocumentIndex:
    """The latest claimed version of every document of a run, read from one `get_run`."""

    def __init__(self, params: dict[str, str]) -> None:
        self._latest: dict[tuple[str, str], Claim] = {}
        for key, token in params.items():
            match = _CLAIM.match(key)
            if not match:
                continue
            claim = Claim(match[1], match[2], int(match[3]), token)
            current = self._latest.get((claim.kind, claim.doc_id))
            if current is None or claim.version > current.version:
                self._latest[(claim.kind, claim.doc_id)] = claim

    def latest(self, kind: str, doc_id: str) -> Claim | None:
        return self._latest.get((kind, doc_id))

    def ids(self, kind: str) -> list[str]:
        return [doc_id for (k, doc_id) in self._latest if k == kind]


class RunDocuments:
    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self._client = client
        self.run_id = run_id

    @retry_transient
    def index(self) -> DocumentIndex:
        return DocumentIndex(self._client.get_run(self.run_id).data.params)

    def read(self, kind: str, doc_id: str, index: DocumentIndex | None = None) -> dict[str, Any] | None:
        claim = (index or self.index()).latest(kind, doc_id)
        return None if claim is None else self._load(claim)

    def read_all(self, kind: str, index: DocumentIndex | None = None) -> list[dict[str, Any]]:
        index = index or self.index()
        claims = [index.latest(kind, doc_id) for doc_id in index.ids(kind)]
        return [self._load(claim) for claim in claims if claim is not None]

    def write(self, kind: str, doc_id: str, body: dict[str, Any], expected_version: int) -> int:
        """Store `body` as version `expected_version + 1`; refuse if that version is already taken."""
        claim = Claim(kind, doc_id, expected_version + 1, secrets.token_hex(8))
        body = {**body, "version": claim.version}
        self._upload(claim, json.dumps(body, ensure_ascii=False, indent=1, default=str))
        failpoints.reach("documents.claim")
        self._claim(claim)
        failpoints.reach("documents.claimed")
        return claim.version

    @retry_transient
    def _upload(self, claim: Claim, text: str) -> None:
        self._client.log_text(self.run_id, text, claim.artifact_path)

    def _claim(self, claim: Claim) -> None:
        from mlflow.exceptions import MlflowException

        try:
            retry_transient(self._client.log_param)(self.run_id, claim.param_key, claim.token)
        except MlflowException as error:
            holder = self.index().latest(claim.kind, claim.doc_id)
            if holder is not None and holder.version >= claim.version and holder.token != claim.token:
                raise StaleWriteError(
                    f"{claim.kind} {claim.doc_id} was changed by someone else (now version "
                    f"{holder.version}); read it again and reapply your change"
                ) from error
            raise

    def _load(self, claim: Claim) -> dict[str, Any]:
        from mlflow.exceptions import MlflowException

        try:
            return self._download(claim)
        except MlflowException:
            # MLflow reports an artifact server that stopped answering as a missing file, and a claimed
            # document exists: ask the store, which raises StoreUnavailableError if it is down.
            retry_transient(self._client.get_run)(self.run_id)
            raise

    @retry_transient
    def _download(self, claim: Claim) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="insights-") as tmp:
            local = self._client.download_artifacts(self.run_id, claim.artifact_path, tmp)
            body: dict[str, Any] = json.loads(Path(local).read_text(encoding="utf-8"))
        return body
