"""deploy/kubernetes stays deployable and true to the routes: every object validates offline
against the Kubernetes schemas (kubernetes-validate) or, for KEDA's kinds, against the fields
of KEDA's v1alpha1 CRDs; both kustomizations build; every queue has a worker Deployment with
a ScaledObject on its own queue that never scales to zero."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from workers.routes import all_queue_names

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30"
VARIANTS = {"redis": K8S, "rabbitmq": K8S / "rabbitmq"}

_REF = {"type": "object", "required": ["name"], "additionalProperties": False}
# The fields of KEDA's CRDs (keda.sh/v1alpha1) that incman writes; anything else is refused.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    **_REF,
                    "properties": {
                        "name": {"type": "string"},
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            # KEDA reads every metadata value as a string
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {
                                **_REF,
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
TRIGGER_AUTHENTICATION = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "additionalProperties": False,
                        "properties": {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                    },
                }
            },
        },
    },
}
KEDA_SCHEMAS = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTHENTICATION}
# Each scaler's required metadata (KEDA's docs): the queue it measures, and the target.
SCALER_KEYS = {"redis": ("listName", "listLength"), "rabbitmq": ("queueName", "value")}


def files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate(doc: dict[str, Any]) -> None:
    schema = KEDA_SCHEMAS.get(doc["kind"])
    if schema is not None:
        jsonschema.validate(doc, schema)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_object_validates_against_its_schema(path: Path) -> None:
    docs = objects(path)
    if path.name == "incman.yaml":  # incman's configuration, the ConfigMap's content
        assert set(docs[0]) >= {"triggers", "notifications"}
        return
    assert docs
    for doc in docs:
        validate(doc)


def test_the_checker_refuses_a_wrong_object() -> None:
    deployment = objects(K8S / "base" / "api.yaml")[0]
    bad = {**deployment, "spec": {**deployment["spec"], "replica": 2}}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)
    scaled = objects(K8S / "keda-redis.yaml")[1]
    with pytest.raises(jsonschema.ValidationError):
        validate({**scaled, "spec": {**scaled["spec"], "minReplicas": 1}})


def kustomization(folder: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((folder / "kustomization.yaml").read_text()))


def test_every_file_is_in_a_kustomization() -> None:
    listed: set[Path] = set()
    for folder in [K8S / "base", *VARIANTS.values()]:
        doc = kustomization(folder)
        for entry in doc.get("resources", []):
            target = (folder / entry).resolve()
            assert target.exists(), f"{folder.name}/kustomization.yaml: {entry} is missing"
            listed.add(target)
        for generator in doc.get("configMapGenerator", []):
            for entry in generator.get("files", []):
                listed.add((folder / entry.split("=")[-1]).resolve())
    orphans = [str(p.relative_to(K8S)) for p in files() if p.resolve() not in listed]
    assert not orphans, f"not in any kustomization.yaml: {orphans}"


def built(variant: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` makes of a variant."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the kustomizations are not built")
    out = subprocess.run(
        ["kubectl", "kustomize", str(VARIANTS[variant])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def worker_queue(deployment: dict[str, Any]) -> str | None:
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    return str(command[command.index("-Q") + 1]) if "worker" in command else None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_queue_has_an_autoscaled_consumer(variant: str) -> None:
    docs = built(variant)
    for doc in docs:
        validate(doc)
    deployments = by_kind(docs, "Deployment")
    consumers = {worker_queue(d): name for name, d in deployments.items() if worker_queue(d)}
    missing = [q for q in all_queue_names() if q not in consumers]
    assert not missing, f"no worker Deployment for {missing}: run `python deploy/generate.py`"
    scaled = {
        s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind(docs, "ScaledObject").values()
    }
    auths = by_kind(docs, "TriggerAuthentication")
    for queue, name in consumers.items():
        spec = scaled[name]["spec"]
        assert spec["minReplicaCount"] >= 1, f"{name} may scale to zero"
        [trigger] = spec["triggers"]
        assert trigger["type"] == variant
        queue_key, target_key = SCALER_KEYS[variant]
        assert trigger["metadata"][queue_key] == queue, f"{name} scales on another queue"
        assert int(trigger["metadata"][target_key]) > 0
        assert trigger["authenticationRef"]["name"] in auths


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_one_secret_for_every_container_and_flower_behind_a_password(variant: str) -> None:
    docs = built(variant)
    [secret] = by_kind(docs, "Secret").values()
    keys = set(secret["stringData"])
    assert {"INCMAN_SECRET_KEY", "INCMAN_DATABASE_URL", "FLOWER_BASIC_AUTH"} <= keys
    configmaps = set(by_kind(docs, "ConfigMap"))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for container in pod["containers"]:
            sources = container["envFrom"]
            assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources, container
            for source in sources:
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
    for auth in by_kind(docs, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys
    flower = by_kind(docs, "Deployment")["incman-flower"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in flower["containers"][0]["env"]}
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["optional"] is False
    beat = by_kind(docs, "Deployment")["incman-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    assert "incman-api" in by_kind(docs, "HorizontalPodAutoscaler")
    [job] = by_kind(docs, "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "incman",
        "db",
        "upgrade",
    ]
