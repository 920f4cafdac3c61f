"""[queue] configuration, and the Redis lock and host leases on a real redis-server.

The config part needs no server. The lock tests are marked `queue` (they
start redis-server, and skip without it) but are quick, so not `slow`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import queue_support
from feedgen import write_config

from core.errors import ConfigError
from monitor.config import load_config

redis_server = queue_support.redis_server


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "monitor.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_without_queue_table_polling_stays_in_process(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).queue is None


def test_queue_defaults_and_the_backend_follows_the_broker(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[queue]\nbroker = "redis://:s3cret-pw@10.0.0.5:6379/2"\n'))
    q = cfg.queue
    assert q is not None
    assert q.result_backend == q.broker
    assert (q.visibility_timeout, q.task_timeout, q.lock_timeout, q.tick) == (3600, 600, 30, 60)
    assert "s3cret-pw" in cfg.secrets  # so logs and errors mask it


def test_queue_durations_and_problems_all_at_once(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[queue]\nbroker = "redis://h/0"\ntick = "5s"\nvisibility_timeout = "2m"\n'))
    assert cfg.queue is not None and (cfg.queue.tick, cfg.queue.visibility_timeout) == (5, 120)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, '[queue]\nbroker = "amqp://u:hunter22@h//"\ntick = 0\nvisibilty = 3\n'))
    text = "\n".join(err.value.problems)
    assert "queue.broker" in text and "not a redis:// or rediss:// URL" in text
    assert "queue.tick" in text and "queue.visibilty: unknown key" in text
    assert "hunter22" not in text
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[queue]\ntick = 5\n"))
    assert any("queue.broker: is missing" in p for p in err.value.problems)


def test_poll_with_redis_unreachable_is_one_line_without_the_password(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    port = queue_support.free_port()  # nothing listens there
    write_config(tmp_path, ["http://127.0.0.1:9/f.xml"], f'[queue]\nbroker = "redis://:pw-9f8e7d@127.0.0.1:{port}/0"\n')
    done = subprocess.run([sys.executable, "-m", "monitor", "poll"], cwd=tmp_path, env=subprocess_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitor: queue: Redis at redis://***@127.0.0.1:"), done.stderr
    assert "cannot be reached" in lines[0]
    assert "pw-9f8e7d" not in done.stderr + done.stdout


@pytest.mark.queue
def test_a_lock_is_released_and_renewed_only_by_its_holder(redis_server: Any) -> None:
    from monitor.queue.locks import RedisLock, redis_client

    client = redis_client(redis_server.url)
    first = RedisLock(client, "t:lock", ttl=0.5, owner="first")
    second = RedisLock(client, "t:lock", ttl=0.5, owner="second")
    assert first.acquire() and not second.acquire()
    assert second.holder() == "first"
    assert not second.release() and not second.renew()  # a stranger's token does nothing
    assert first.renew()
    queue_support.wait_until(lambda: client.get("t:lock") is None, 5, "the lock to expire")
    assert second.ensure()  # the holder stopped renewing: the next one takes it
    assert not first.renew() and not first.release()  # and the late first cannot take it back


@pytest.mark.queue
def test_host_leases_cap_holders_and_expire_with_a_dead_holder(redis_server: Any) -> None:
    from monitor.queue.locks import HostLeases, redis_client

    client = redis_client(redis_server.url)
    leases = HostLeases(client, limit=2, lease_seconds=0.5, wait_step=0.01)
    most = active = 0
    guard = threading.Lock()

    def fetch() -> None:
        nonlocal most, active
        with leases.hold("Example.COM"):
            with guard:
                active += 1
                most = max(most, active)
            time.sleep(0.05)
            with guard:
                active -= 1

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 2
    # Two holders that died holding their leases: the host is free again once they expire.
    for token in ("dead1", "dead2"):
        client.zadd("monitor:host:gone.example", {token: 0})
    with leases.hold("gone.example"):
        assert client.zcard("monitor:host:gone.example") == 1
