"""nginx (Debian) as a plain SSE-safe reverse proxy in front of the stub.

The config is generated into a private prefix directory with its own pid, log and temp
paths, so nginx runs in the foreground (`daemon off`) without touching /etc or the
package's service. Also used by tests/integration/test_nginx_smoke.py (keep it importable
on its own, standard library only).

    python benchmarks/gateways/nginx.py start [--port N] [--upstream URL]
    python benchmarks/gateways/nginx.py stop
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT, STUB_URL, Launch, cli

__all__ = ["find_nginx", "launch", "write_config"]

NAME = "nginx"


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def write_config(prefix: Path, port: int, upstream: str, workers: int = 1) -> Path:
    """Write nginx.conf into prefix; every path nginx writes stays under prefix."""
    up = urlsplit(upstream)
    tmp = prefix / "tmp"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    # Workers drop to nobody when the master runs as root: they must reach the temp dirs.
    for d in (prefix, tmp, *tmp.iterdir()):
        d.chmod(0o777)
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream stub {{
        server {up.hostname}:{up.port};
        keepalive 512;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://stub;
            # keep-alive to the upstream needs HTTP/1.1 and an empty Connection header
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # SSE: pass every chunk on as it arrives, never spool the response
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""
    )
    return conf


def launch(port: int, upstream: str = STUB_URL, prefix: Path | None = None) -> Launch:
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError("nginx not installed: run scripts/install_nginx.sh")
    prefix = prefix or OUT / NAME / "prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = write_config(prefix, port, upstream)
    # -e sets the start-up error log before the config is read (default would be /var/log)
    argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
            "-g", "daemon off;"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    return Launch(NAME, argv, url, ready_url=url + "/v1/models")


if __name__ == "__main__":
    raise SystemExit(cli(NAME, __doc__, launch, 18101))
