"""Configuration of Loki and the log collector: ``logging.*`` and the bucket's credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from components.config_reader import DURATION, QUANTITY, ConfigReader
from components.profile import Profile

KEYS = ("logging", "lokiS3AccessKeyId", "lokiS3SecretAccessKey")
LokiMode = Literal["monolithic", "scalable"]
LOKI_MODES: tuple[LokiMode, ...] = ("monolithic", "scalable")
# How Alloy reads pod logs: through the Kubernetes API, or the node's files (/var/log/pods).
PodLogs = Literal["api", "files"]
POD_LOGS: tuple[PodLogs, ...] = ("api", "files")


@dataclass(frozen=True)
class ObjectStorage:
    """An S3-compatible bucket for Loki's chunks and index (scalable mode)."""

    endpoint: str  # host[:port]
    insecure: bool  # http:// endpoint
    bucket: str
    region: str | None
    force_path_style: bool  # MinIO and most non-AWS stores need path-style URLs
    # Both or neither (then the pods' own identity is used, e.g. IRSA); always secret.
    access_key_id: pulumi.Output[str] | None
    secret_access_key: pulumi.Output[str] | None


@dataclass(frozen=True)
class LoggingConfig:
    storage_size: str
    storage_class: str | None
    retention: str
    mode: LokiMode
    replicas: int  # read, write and backend replicas (scalable)
    object_storage: ObjectStorage | None
    retain_volumes: bool  # keep Loki's volumes (and their namespace) on `pulumi destroy`
    pod_logs: PodLogs = "api"  # how the current profile's Alloy reads every pod's logs


def read_logging(r: ConfigReader, profile: Profile) -> LoggingConfig:
    keys = ("storageSize", "storageClass", "retention", "mode", "replicas", "objectStorage", "retainVolumes", "podLogs")
    section = r.section("logging", keys)
    storage_class = section.get("storageClass")
    if storage_class is not None and (
        not isinstance(storage_class, str) or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", storage_class)
    ):
        r.problem("logging.storageClass", storage_class, "must be the name of a StorageClass, e.g. standard")
        storage_class = None
    mode = r.choice("logging.mode", section.get("mode"), LOKI_MODES, "monolithic")
    scalable = mode == "scalable"
    if scalable and profile == "tutorial":
        r.problem("logging.mode", mode, "the tutorial profile runs loki-stack, which is monolithic only")
    for key in ("replicas", "objectStorage"):
        if key in section and not scalable:
            r.problem(f"logging.{key}", section[key], "only applies with logging.mode = scalable")
    retain = r.boolean("logging.retainVolumes", section.get("retainVolumes"), False)
    if retain and profile == "tutorial":
        r.problem("logging.retainVolumes", retain, "the tutorial's loki-stack keeps no volumes")
    pod_logs = r.choice("logging.podLogs", section.get("podLogs"), POD_LOGS, "api")
    if "podLogs" in section and profile == "tutorial":
        r.problem(
            "logging.podLogs",
            section["podLogs"],
            "chooses how the current profile's Alloy reads pod logs; the tutorial's Promtail always reads "
            "the node's files",
        )
    object_storage = _object_storage(r, section.get("objectStorage")) if scalable else None
    if not scalable:
        for key in ("lokiS3AccessKeyId", "lokiS3SecretAccessKey"):
            if r.raw(key) is not None:
                r.problem(key, "<set>", "only applies with logging.mode = scalable")
    return LoggingConfig(
        storage_size=r.matching(
            "logging.storageSize",
            section.get("storageSize"),
            "5Gi",
            QUANTITY,
            "must be a Kubernetes quantity such as 5Gi or 500Mi",
        ),
        storage_class=storage_class,
        retention=r.matching(
            "logging.retention",
            section.get("retention"),
            "168h",
            DURATION,
            "must be a duration such as 168h, 7d or 30d",
        ),
        mode=mode,
        replicas=r.integer("logging.replicas", section.get("replicas"), 3, 1, 20),
        object_storage=object_storage,
        retain_volumes=retain,
        pod_logs=pod_logs,
    )


def _object_storage(r: ConfigReader, value: Any) -> ObjectStorage | None:
    if value is None:
        r.missing(
            "logging.objectStorage",
            "scalable Loki keeps its data in an S3-compatible bucket: set logging.objectStorage.endpoint "
            "(e.g. https://s3.eu-west-1.amazonaws.com) and logging.objectStorage.bucket",
        )
        return None
    value = r.mapping("logging.objectStorage", value, ("endpoint", "bucket", "region", "forcePathStyle"))
    endpoint = r.url("logging.objectStorage.endpoint", value.get("endpoint"))
    if "endpoint" not in value:
        r.missing("logging.objectStorage.endpoint", "the bucket's S3 endpoint, e.g. https://s3.eu-west-1.amazonaws.com")
    bucket = value.get("bucket")
    if not isinstance(bucket, str) or not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
        r.problem(
            "logging.objectStorage.bucket",
            bucket,
            "must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-')",
        )
    region = value.get("region")
    if region is not None and (not isinstance(region, str) or not re.match(r"^[a-z0-9-]+$", region)):
        r.problem("logging.objectStorage.region", region, "must be a region name such as eu-west-1")
    key_id = r.secret("lokiS3AccessKeyId", "the access key id")
    secret_key = r.secret("lokiS3SecretAccessKey", "the secret access key")
    has_id, has_key = r.raw("lokiS3AccessKeyId") is not None, r.raw("lokiS3SecretAccessKey") is not None
    if has_id != has_key:
        r.missing(
            "lokiS3SecretAccessKey" if has_id else "lokiS3AccessKeyId",
            "give both lokiS3AccessKeyId and lokiS3SecretAccessKey, or neither to use the pods' own identity",
        )
    if endpoint is None or not isinstance(bucket, str):
        return None
    host = endpoint.split("://", 1)[1].split("/", 1)[0]
    return ObjectStorage(
        endpoint=host,
        insecure=endpoint.startswith("http://"),
        bucket=bucket,
        region=region,
        force_path_style=r.boolean("logging.objectStorage.forcePathStyle", value.get("forcePathStyle"), False),
        access_key_id=key_id,
        secret_access_key=secret_key,
    )
