import socket
import subprocess
import sys

import pytest
from netguard_impl import NetworkBlocked


def test_outbound_connection_is_refused():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def test_dns_lookup_of_a_public_name_is_refused():
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed(httpserver):
    httpserver.expect_request("/").respond_with_data("hi")
    with socket.create_connection(("127.0.0.1", httpserver.port), timeout=2):
        pass


def test_subprocesses_are_guarded_too(subprocess_env):
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "only loopback is allowed" in proc.stderr
