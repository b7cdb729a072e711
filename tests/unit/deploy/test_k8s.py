"""``loadgate k8s``: the manifests validate against Kubernetes' schemas, offline."""

from __future__ import annotations

import shlex
import socket
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from loadgate.deploy.k8s import K8sOptions, manifests, write_manifests
from loadgate.errors import UsageError
from loadgate.profile import load_profile
from tests.support.cli import run_cli

K8S_VERSION = "1.30.0"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any network use fails the test: the schemas must come with the package."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _docs(tmp: Path, **kw: Any) -> dict[str, dict[str, Any]]:
    prof = load_profile("smoke", ["load.concurrency=12"])
    opts = K8sOptions(shards=3, image="registry.example/loadgate:1", **kw)
    files = write_manifests(prof, opts, tmp)
    return {f.name: yaml.safe_load(f.read_text()) for f in files}


def test_every_manifest_validates_strictly(tmp_path: Path, offline: None) -> None:
    docs = _docs(tmp_path, target="http://gw.gateways:8080", start_at="1767225600")
    assert [d["kind"] for d in docs.values()] == [
        "ConfigMap", "Service", "Service", "PersistentVolumeClaim", "Job", "Job",
    ]  # fmt: skip
    for name, doc in docs.items():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises if not valid
        assert doc["metadata"]["name"].startswith("loadgate-"), name


def test_a_broken_manifest_is_caught(offline: None) -> None:
    job = manifests(load_profile("smoke"), K8sOptions(shards=2, image="i"))["10-shards-job.yaml"]
    job["spec"]["completions"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_the_indexed_job_runs_one_shard_per_pod(tmp_path: Path) -> None:
    docs = _docs(tmp_path, target="http://gw:8080")
    job = docs["10-shards-job.yaml"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == 3
    pod = job["template"]["spec"]
    assert pod["subdomain"] == "loadgate-stubs" == docs["01-stubs-service.yaml"]["metadata"]["name"]
    assert docs["01-stubs-service.yaml"]["spec"]["clusterIP"] == "None"
    [c] = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["LOADGATE_SHARDS"]["value"] == "3" and "JOB_COMPLETION_INDEX" in env
    # The pod's command is an ordinary `loadgate run`: the CLI parses it.
    args = c["args"]
    assert args[:2] == ["run", "/etc/loadgate/smoke.toml"]
    assert "http://loadgate-shards-{i}.loadgate-stubs:9000" in args
    assert args[args.index("--target") + 1] == "http://gw:8080"
    profile = docs["00-configmap.yaml"]["data"]["smoke.toml"]
    assert "[load]" in profile
    merge = docs["20-merge-job.yaml"]["spec"]["template"]["spec"]["containers"][0]
    script = merge["command"][2]
    assert "-ge 3 ]" in script and "loadgate merge /results/shard-*.json" in script
    assert shlex.split(script)  # well-formed shell words


def test_the_pods_command_line_parses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod's args through the real CLI, up to the shard plan (a bad index stops it)."""
    docs = _docs(tmp_path / "k8s", target="http://gw:8080")
    (tmp_path / "smoke.toml").write_text(docs["00-configmap.yaml"]["data"]["smoke.toml"])
    [c] = docs["10-shards-job.yaml"]["spec"]["template"]["spec"]["containers"]
    args = [str(tmp_path / "smoke.toml") if a.startswith("/etc/") else a for a in c["args"]]
    monkeypatch.setenv("LOADGATE_SHARDS", "3")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "x")
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert "$JOB_COMPLETION_INDEX/$LOADGATE_SHARDS 'x/3'" in err, err


def test_more_shards_than_concurrency_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--shards 5"):
        manifests(load_profile("smoke", ["load.concurrency=4"]), K8sOptions(shards=5, image="i"))


def test_the_k8s_command_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lg"
    code, stdout, err = run_cli(
        capsys, "k8s", "smoke", "--shards", "2", "--image", "i:1", "-o", str(out),
        "--set", "load.duration=30s",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(x).name for x in stdout.split())
    job = yaml.safe_load((out / "10-shards-job.yaml").read_text())
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--set", "load.duration=30s"]


@pytest.mark.parametrize(("loadgate_exit", "pod_exit"), [(0, 0), (1, 0), (3, 0), (2, 2), (70, 70)])
def test_a_shard_pod_succeeds_whenever_it_wrote_its_result(
    tmp_path: Path, loadgate_exit: int, pod_exit: int
) -> None:
    """Pass, fail and invalid are the merge's business: the pod succeeds; errors do not."""
    [c] = _docs(tmp_path)["10-shards-job.yaml"]["spec"]["template"]["spec"]["containers"]
    fake = tmp_path / "bin" / "loadgate"
    fake.parent.mkdir()
    # Records its argv, so the args reach loadgate unchanged, then exits as told.
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\nexit {loadgate_exit}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
    done = subprocess.run([*c["command"], *c["args"]], env=env, check=False, timeout=30)
    assert done.returncode == pod_exit
    assert (tmp_path / "argv").read_text().splitlines() == c["args"]
