"""A local S3-compatible server for lake tests: moto in server mode on 127.0.0.1, in its own process.

Its own process, not a thread of the test process: the Delta and Arrow clients then talk to it over
real sockets without sharing our interpreter, and it dies with its stdin (the test process) even on a crash.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

ACCESS_KEY = SECRET_KEY = "testing"
REGION = "us-east-1"

_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "lake") -> dict[str, str]:
        """The settings that point a workspace's lake at `s3://bucket/prefix` on this server."""
        return {
            "OPS_LAKE_URI": f"s3://{bucket}/{prefix}",
            "OPS_S3_ENDPOINT_URL": self.endpoint_url,
            "OPS_S3_REGION": REGION,
            "OPS_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "OPS_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "OPS_S3_ALLOW_HTTP": "true",
        }

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto on a free port of 127.0.0.1; stop it (closing its stdin) on exit."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"moto server did not start (exit code {proc.poll()})")
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
