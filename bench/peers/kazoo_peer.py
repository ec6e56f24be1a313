"""One kazoo worker process of zkcoord-bench --peers (bench/README.md).

Run with Debian's /usr/bin/python3 (python3-kazoo); the python3 first on PATH
may be another interpreter without kazoo.

  kazoo_peer.py mutex|counter HOSTS PATH

mutex    Lock(PATH): acquire + release
counter  Counter(PATH) += 1 (kazoo retries the version conflict itself)

One session per process, as a kazoo user would write a worker. The protocol on
stdin/stdout is CuratorPeer.java's: "ready", then one JSON line per
"run SECONDS", until "quit" or end of input.
"""
import json
import sys
import time

from kazoo.client import KazooClient


def build(workload, zk, path):
    if workload == "mutex":
        lock = zk.Lock(path, "bench")

        def op():
            if not lock.acquire(timeout=60):
                raise RuntimeError("Lock not acquired in 60 s")
            lock.release()

        return op
    if workload == "counter":
        counter = zk.Counter(path, default=0)

        def op():
            nonlocal counter
            counter += 1

        return op
    raise ValueError("kazoo has no recipe for workload %r" % workload)


def timed_run(op, seconds):
    t0 = time.monotonic()
    deadline = t0 + seconds
    ops = done = 0
    lat = []
    while time.monotonic() < deadline:
        a = time.monotonic()
        op()
        b = time.monotonic()
        done += 1
        if b <= deadline:
            ops += 1
            lat.append(round((b - a) * 1e3, 3))
    return {"ops": ops, "ops_all": done, "fails": 0, "retries": 0, "lat_ms": lat}


def main():
    if len(sys.argv) != 4:
        print(json.dumps({"error": "usage: kazoo_peer.py mutex|counter HOSTS PATH"}), flush=True)
        return 2
    workload, hosts, path = sys.argv[1:]
    zk = KazooClient(
        hosts=hosts,
        timeout=15.0,
        command_retry={"max_tries": -1, "delay": 0.005, "backoff": 1.5, "max_delay": 0.1, "max_jitter": 0.8},
        connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 1.0},
    )
    rc = 0
    try:
        zk.start(timeout=60)
        op = build(workload, zk, path)
        op()
        print("ready", flush=True)
        for line in sys.stdin:
            line = line.strip()
            if line == "quit":
                break
            if line.startswith("run "):
                print(json.dumps(timed_run(op, float(line[4:]))), flush=True)
    except Exception as e:  # reported to the driver, which says the peer failed
        print(json.dumps({"error": repr(e)}), flush=True)
        rc = 1
    finally:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    return rc


if __name__ == "__main__":
    sys.exit(main())
