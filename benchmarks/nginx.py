"""Debian's nginx as a reference gRPC load balancer: ``grpc_pass`` round robin on loopback.

The harness writes a config for the given backends, starts nginx in the foreground on a
free loopback port with everything (pid, logs, temp files) in its own directory, waits
until the port accepts connections, and stops it afterwards.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["Nginx", "nginx_config"]

NGINX = "/usr/sbin/nginx"


def nginx_config(*, directory: Path, port: int, backends: list[str], workers: int = 1) -> str:
    """An nginx.conf that round-robins gRPC over ``backends`` with kept-alive connections.

    >>> "grpc_pass grpc://backends;" in nginx_config(
    ...     directory=Path("/tmp/x"), port=8443, backends=["127.0.0.1:7001"])
    True
    """
    servers = "\n".join(f"        server {b};" for b in backends)
    temp = directory / "temp"
    return f"""\
daemon off;
master_process on;
worker_processes {workers};
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    upstream backends {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://backends;
            grpc_read_timeout 30s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """``with Nginx(directory=..., backends=[...]) as nginx: nginx.address``."""

    def __init__(self, *, directory: Path, backends: list[str], workers: int = 1) -> None:
        if not Path(NGINX).exists() and shutil.which("nginx") is None:
            raise RuntimeError("nginx is not installed (make bench installs Debian's nginx)")
        self.directory = directory
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        (directory / "temp").mkdir(parents=True, exist_ok=True)
        (directory / "temp").chmod(0o777)
        self.config = directory / "nginx.conf"
        self.config.write_text(
            nginx_config(directory=directory, port=self.port, backends=backends, workers=workers),
            encoding="utf-8",
        )
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        binary = NGINX if Path(NGINX).exists() else str(shutil.which("nginx"))
        with open(self.directory / "stderr.log", "wb") as stderr:
            self._process = subprocess.Popen(
                [binary, "-c", str(self.config), "-p", str(self.directory)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError((self.directory / "stderr.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"nginx did not listen on {self.address} within 10s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
