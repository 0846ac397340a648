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
events {{
    worker_connections 512;
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


def write_main_config(launch: Launch) -> Path:
    (launch.workdir / "temp").mkdir(exist_ok=True)
    # As root, nginx would switch its worker to `nobody`, who cannot write the test's temp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = launch.workdir / "nginx-main.conf"
    main.write_text(HARNESS.format(user=user, workdir=launch.workdir, site=launch.config))
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
