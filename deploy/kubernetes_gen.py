"""The generated files of deploy/kubernetes/, rendered from the queue names (used by
deploy/generate.py): a worker Deployment per queue and its KEDA ScaledObject on the queue's
length, for a Redis broker and for RabbitMQ."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
K8S = DEPLOY / "kubernetes"
EXAMPLE_CONFIG = DEPLOY / "incman.example.yaml"
GENERATED = "# Generated from the routes by `python deploy/generate.py`: edit that, not this file.\n"
# KEDA adds a worker while the queue holds more than this many messages per running worker.
QUEUE_LENGTH_PER_WORKER = 20
MAX_WORKERS = 10
# The Redis database of the broker in base/secret.yaml's INCMAN_BROKER_URL (redis://redis:6379/1).
BROKER_DB = 1


def slug(queue: str) -> str:
    """`itsm.servicenow` → `itsm-servicenow`."""
    return re.sub(r"[^a-z0-9]+", "-", queue.lower()).strip("-")


def deployment_name(queue: str) -> str:
    """The Deployment of a queue's workers: `incman-worker-itsm-servicenow`."""
    return f"incman-worker-{slug(queue)}"


def _labels(queue: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "incman",
        "app.kubernetes.io/component": "worker",
        "incman/queue": slug(queue),
    }


def _dump(docs: list[dict[str, Any]], header: str) -> str:
    body = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=100)
    return GENERATED + header + body


def worker_deployment(queue: str) -> dict[str, Any]:
    labels = _labels(queue)
    container = {
        "name": "worker",
        "image": "incman",
        "command": ["celery", "-A", "workers.app", "worker", "-Q", queue, "-n", f"{queue}@%h",
                    "-c", "2", "-l", "INFO"],
        "envFrom": [{"configMapRef": {"name": "incman-env"}},
                    {"secretRef": {"name": "incman-secrets"}}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/incman", "readOnly": True},
                         {"name": "data", "mountPath": "/var/lib/incman"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(queue), "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # A warm shutdown lets running tasks finish; what cannot is re-delivered.
                    "terminationGracePeriodSeconds": 300,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": "incman-config"}},
                                {"name": "data", "emptyDir": {}}],
                },
            },
        },
    }


def render_workers(queues: list[str]) -> str:
    header = ("# One worker Deployment per queue; its replicas are set by the queue's\n"
              "# ScaledObject (../keda-redis.yaml or ../rabbitmq/keda-rabbitmq.yaml).\n")
    return _dump([worker_deployment(q) for q in queues], header)


def scaled_object(queue: str, trigger: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": deployment_name(queue), "labels": _labels(queue)},
        "spec": {
            "scaleTargetRef": {"name": deployment_name(queue)},
            # Never zero: every queue keeps a consumer, so nothing waits for a cold start.
            "minReplicaCount": 1,
            "maxReplicaCount": MAX_WORKERS,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [trigger],
        },
    }


def trigger_authentication(name: str, params: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": name},
        "spec": {"secretTargetRef": [
            {"parameter": param, "name": "incman-secrets", "key": key}
            for param, key in params.items()
        ]},
    }


def render_keda_redis(queues: list[str]) -> str:
    auth = trigger_authentication(
        "incman-redis", {"address": "KEDA_REDIS_ADDRESS", "password": "KEDA_REDIS_PASSWORD"}
    )
    scaled = [
        scaled_object(q, {
            "type": "redis",
            # kombu keeps a queue's waiting messages in a Redis list named after the queue
            "metadata": {"listName": q, "listLength": str(QUEUE_LENGTH_PER_WORKER),
                         "databaseIndex": str(BROKER_DB)},
            "authenticationRef": {"name": "incman-redis"},
        })
        for q in queues
    ]
    header = ("# Each worker pool scaled on its queue's length in the Redis broker (KEDA).\n"
              "# databaseIndex is the database of INCMAN_BROKER_URL.\n")
    return _dump([auth, *scaled], header)


def render_keda_rabbitmq(queues: list[str]) -> str:
    auth = trigger_authentication("incman-rabbitmq", {"host": "KEDA_RABBITMQ_HOST"})
    scaled = [
        scaled_object(q, {
            "type": "rabbitmq",
            "metadata": {"protocol": "amqp", "queueName": q, "mode": "QueueLength",
                         "value": str(QUEUE_LENGTH_PER_WORKER)},
            "authenticationRef": {"name": "incman-rabbitmq"},
        })
        for q in queues
    ]
    header = "# Each worker pool scaled on its queue's length in the RabbitMQ broker (KEDA).\n"
    return _dump([auth, *scaled], header)


def render_config(_: list[str]) -> str:
    """incman.example.yaml, for the ConfigMap (kustomize reads files under its own folder)."""
    return ("# deploy/incman.example.yaml, copied by `python deploy/generate.py`: put your\n"
            "# own configuration here (README: Configuration file).\n"
            + EXAMPLE_CONFIG.read_text())


WHOLE_FILES = {
    K8S / "base" / "workers.yaml": render_workers,
    K8S / "keda-redis.yaml": render_keda_redis,
    K8S / "rabbitmq" / "keda-rabbitmq.yaml": render_keda_rabbitmq,
    K8S / "base" / "incman.yaml": render_config,
}
