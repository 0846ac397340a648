"""nginx: the shipped site file `infra/nginx/streamkit.conf`, run inside a minimal main config.

The site file belongs inside `http { }`. To run it without touching /etc/nginx, `prepare` writes a
test-harness main config (not shipped) with its own prefix, pid and temp paths that includes the
site file; `command` runs nginx in the foreground with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from streamkit.proxies.base import Launch, ProxyDef

HARNESS = """\
# Test harness, not shipped: a minimal main config around the shipped site file
# (own prefix, pid and temp paths, logs to the process output: nothing under /etc/nginx or /var is touched).
{user}worker_processes 1;
pid {workdir}/nginx.pid;
error_log stderr info;
# Connection capacity (docs/capacity.md): every stream holds TWO connections in a worker (client
# and app), so worker_connections 8192 carries 4,000 streams per worker; the worker's file
# descriptor limit must cover them (plus log and listen sockets): worker_rlimit_nofile.
# Default: worker_connections 512 (256 streams: the issue-17 measurement, 1,753 of 2,000 got
# nothing), worker_rlimit_nofile unset (the inherited ulimit -n, often 1024).
# https://nginx.org/en/docs/ngx_core_module.html#worker_connections
# https://nginx.org/en/docs/ngx_core_module.html#worker_rlimit_nofile
# Proven by: tests/load/test_load.py::test_concurrency
worker_rlimit_nofile {rlimit_nofile};
{main_extra}events {{
    worker_connections {worker_connections};
}}
http {{
    access_log /dev/stdout;
    client_body_temp_path {workdir}/temp/client_body;
    proxy_temp_path {workdir}/temp/proxy;
    fastcgi_temp_path {workdir}/temp/fastcgi;
    uwsgi_temp_path {workdir}/temp/uwsgi;
    scgi_temp_path {workdir}/temp/scgi;
    default_type application/octet-stream;
    include {site};
}}
"""


# Capacity of the harness (and the demo): see the comment in HARNESS and docs/capacity.md.
WORKER_CONNECTIONS = 8192
WORKER_RLIMIT_NOFILE = 16384


def write_main_config(launch: Launch, main_extra: str = "", worker_connections: int = WORKER_CONNECTIONS) -> Path:
    """The harness main config; `main_extra` adds main-context directives and `worker_connections`
    replaces the capacity (negative controls: `worker_shutdown_timeout 1s;`, the old 512)."""
    (launch.workdir / "temp").mkdir(exist_ok=True)
    # As root, nginx would switch its worker to `nobody`, who cannot write the test's temp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = launch.workdir / "nginx-main.conf"
    main.write_text(
        HARNESS.format(
            user=user,
            workdir=launch.workdir,
            site=launch.config,
            worker_connections=worker_connections,
            rlimit_nofile=WORKER_RLIMIT_NOFILE,
            main_extra=main_extra + "\n" if main_extra else "",
        )
    )
    return main


def command(launch: Launch) -> list[str]:
    return [launch.binary, "-p", str(launch.workdir), "-e", "stderr", "-c", str(launch.config), "-g", "daemon off;"]


PROXY = ProxyDef(
    name="nginx",
    binary="nginx",
    configs=("streamkit.conf",),
    command=command,
    version_args=("-v",),
    prepare=write_main_config,
)
