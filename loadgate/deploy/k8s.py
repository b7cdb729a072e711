"""``loadgate k8s``: a profile as Kubernetes objects that run it in N shards and merge them.

What is written (one YAML file per object, ``kubectl apply -f DIR``):

* ``ConfigMap`` ``<name>-profile``: the profile file as it is (``${VAR}`` kept: the
  pods' environment resolves them), ``--set`` overrides passed on the command line;
* ``Service`` ``<name>-stubs``: headless, over the shard pods' stubs, so pod ``i``
  is ``<name>-shards-<i>.<name>-stubs`` — each shard joins every peer stub's
  ledger by that name (``--stub-ledger …{i}…``);
* ``Service`` ``<name>-upstream``: a ClusterIP over the same stubs: point the
  gateway under test's upstream at it, and each request lands on any stub;
* ``PersistentVolumeClaim`` ``<name>-results`` (ReadWriteMany): where each shard
  writes ``shard-<i>.json`` and the merge writes ``merged.json``;
* ``Job`` ``<name>-shards``: Indexed, ``completions = parallelism = N``; each pod
  runs ``loadgate run --shard`` (index from ``JOB_COMPLETION_INDEX``, count from
  ``LOADGATE_SHARDS``), which starts its own stub on port :data:`STUB_PORT`;
* ``Job`` ``<name>-merge``: waits (bounded) until every shard's file is there,
  then ``loadgate merge``; its exit code is the run's verdict (0 / 1 / 3).

Plain dicts dumped with PyYAML: the objects are few and their schema is
Kubernetes' own, checked offline in the tests with ``kubernetes-validate``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgate.errors import UsageError
from loadgate.profile import Profile
from loadgate.profile.loading import bundled_dir

__all__ = ["STUB_PORT", "K8sOptions", "manifests", "write_manifests"]

STUB_PORT = 9000
_PROFILE_DIR = "/etc/loadgate"
_RESULTS = "/results"
_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True, slots=True)
class K8sOptions:
    shards: int
    image: str
    target: str | None = None
    name: str = "loadgate"
    start_at: str | None = None
    sets: tuple[str, ...] = ()
    #: size of the results volume
    storage: str = "1Gi"


def _profile_text(profile: Profile) -> str:
    src = profile.source
    path = (
        bundled_dir() / f"{src.removeprefix('bundled:')}.toml"
        if src.startswith("bundled:")
        else Path(src)
    )
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise UsageError(f"{src}: a profile from a file is needed for a ConfigMap") from None


def _labels(o: K8sOptions, role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "loadgate",
        "app.kubernetes.io/instance": o.name,
        "loadgate/role": role,
    }


def _meta(o: K8sOptions, suffix: str, role: str) -> dict[str, Any]:
    return {"name": f"{o.name}-{suffix}", "labels": _labels(o, role)}


def _deadline_s(profile: Profile) -> int:
    load = profile.load
    return int(load.warmup_s + load.duration_s + load.cooldown_s + load.timeout_s) + 900


def _shard_args(profile: Profile, o: K8sOptions) -> list[str]:
    args = [
        "run",
        f"{_PROFILE_DIR}/{profile.name}.toml",
        "--quiet",
        "--set",
        "stub.host=0.0.0.0",
        "--set",
        f"stub.port={STUB_PORT}",
        "--stub-ledger",
        f"http://{o.name}-shards-{{i}}.{o.name}-stubs:{STUB_PORT}",
        "--out",
        f"{_RESULTS}/shard-$(JOB_COMPLETION_INDEX).json",
    ]
    for s in o.sets:
        args += ["--set", s]
    if o.target:
        args += ["--target", o.target]
    if o.start_at:
        args += ["--start-at", o.start_at]
    return args


def _volumes(o: K8sOptions, profile_volume: bool) -> list[dict[str, Any]]:
    vols: list[dict[str, Any]] = [
        {"name": "results", "persistentVolumeClaim": {"claimName": f"{o.name}-results"}}
    ]
    if profile_volume:
        vols.append({"name": "profile", "configMap": {"name": f"{o.name}-profile"}})
    return vols


#: The shard container's entry: a shard that wrote its result succeeded, whatever its
#: verdict (0 pass, 1 fail, 3 invalid: the merge judges the run). Were a failed gate a
#: failed pod, the Job (backoffLimit 0) would fail and its controller would kill the
#: other shards, perhaps before they wrote theirs. Usage errors (2), a dependency down
#: (70) and deaths stay failures. ``$@`` is the container's args.
SHARD_ENTRY = 'loadgate "$@"; code=$?; case $code in 0|1|3) exit 0 ;; *) exit $code ;; esac'


def _shard_job(profile: Profile, o: K8sOptions) -> dict[str, Any]:
    container = {
        "name": "shard",
        "image": o.image,
        "command": ["/bin/sh", "-c", SHARD_ENTRY, "loadgate"],
        "args": _shard_args(profile, o),
        "env": [
            # Set by the Job controller too; declared so $(JOB_COMPLETION_INDEX) expands.
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {
                    "fieldRef": {"fieldPath": f"metadata.annotations['{_INDEX_ANNOTATION}']"}
                },
            },
            {"name": "LOADGATE_SHARDS", "value": str(o.shards)},
            {"name": "LOADGATE_RUNS_DIR", "value": f"{_RESULTS}/runs"},
        ],
        "ports": [{"name": "stub", "containerPort": STUB_PORT}],
        "volumeMounts": [
            {"name": "results", "mountPath": _RESULTS},
            {"name": "profile", "mountPath": _PROFILE_DIR, "readOnly": True},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(o, "shards", "shard"),
        "spec": {
            "completionMode": "Indexed",
            "completions": o.shards,
            "parallelism": o.shards,
            "backoffLimit": 0,
            "activeDeadlineSeconds": _deadline_s(profile),
            "template": {
                "metadata": {"labels": _labels(o, "shard")},
                "spec": {
                    "subdomain": f"{o.name}-stubs",
                    "restartPolicy": "Never",
                    # The image's user (uid 1000) must write the results volume.
                    "securityContext": {"fsGroup": 1000},
                    "containers": [container],
                    "volumes": _volumes(o, True),
                },
            },
        },
    }


def _merge_job(profile: Profile, o: K8sOptions) -> dict[str, Any]:
    wait_s = _deadline_s(profile)
    script = (
        f"i=0; until [ $(ls {_RESULTS}/shard-*.json 2>/dev/null | wc -l) -ge {o.shards} ]; do "
        f'i=$((i+5)); [ "$i" -gt {wait_s} ] && echo "shards missing after {wait_s} s" && exit 2; '
        "sleep 5; done; "
        f"exec loadgate merge {_RESULTS}/shard-*.json -o {_RESULTS}/merged.json "
        f"--junit {_RESULTS}/merged-junit.xml --markdown {_RESULTS}/merged.md"
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(o, "merge", "merge"),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": wait_s + 300,
            "template": {
                "metadata": {"labels": _labels(o, "merge")},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"fsGroup": 1000},
                    "containers": [
                        {
                            "name": "merge",
                            "image": o.image,
                            "command": ["/bin/sh", "-c", script],
                            "volumeMounts": [{"name": "results", "mountPath": _RESULTS}],
                        }
                    ],
                    "volumes": _volumes(o, False),
                },
            },
        },
    }


def _service(o: K8sOptions, suffix: str, headless: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": _labels(o, "shard"),
        "ports": [{"name": "stub", "port": STUB_PORT, "targetPort": STUB_PORT}],
    }
    if headless:
        # Peers resolve a pod's name before its stub is up: its records come later.
        spec.update(clusterIP="None", publishNotReadyAddresses=True)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(o, suffix, "stubs"),
        "spec": spec,
    }


def manifests(profile: Profile, o: K8sOptions) -> dict[str, dict[str, Any]]:
    """File name → object, in the order ``kubectl apply`` should create them."""
    if o.shards < 1:
        raise UsageError(f"--shards {o.shards}: at least 1")
    if profile.load.concurrency is not None and profile.load.concurrency < o.shards:
        raise UsageError(
            f"--shards {o.shards}: more shards than load.concurrency = {profile.load.concurrency}"
        )
    return {
        "00-configmap.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(o, "profile", "profile"),
            "data": {f"{profile.name}.toml": _profile_text(profile)},
        },
        "01-stubs-service.yaml": _service(o, "stubs", headless=True),
        "02-upstream-service.yaml": _service(o, "upstream", headless=False),
        "03-results-pvc.yaml": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(o, "results", "results"),
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": o.storage}},
            },
        },
        "10-shards-job.yaml": _shard_job(profile, o),
        "20-merge-job.yaml": _merge_job(profile, o),
    }


def write_manifests(profile: Profile, o: K8sOptions, out: Path) -> list[Path]:
    """Write :func:`manifests` into ``out`` (created); returns the files written."""
    import yaml

    docs = manifests(profile, o)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file, doc in docs.items():
        path = out / file
        head = f"# loadgate k8s {shlex.quote(profile.source)} --shards {o.shards}\n"
        path.write_text(head + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
