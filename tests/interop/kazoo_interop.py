"""The kazoo side of the zkcoord interoperability tests (tests/interop).

Run with Debian's /usr/bin/python3 (python3-kazoo); the python3 first on PATH
may be another interpreter without kazoo.

  kazoo_interop.py mutex HOSTS PATH DIR NAME THREADS ITERS HOLD_MS [--no-extra-patterns]
  kazoo_interop.py counter HOSTS PATH DIR NAME THREADS ADDS DELTA [--curator]
  kazoo_interop.py get HOSTS PATH [--curator]          sync, then read; prints the value
  kazoo_interop.py add HOSTS PATH DELTA [--curator]    prints the value written
  kazoo_interop.py raw HOSTS PATH                      sync, then prints the data as hex
  kazoo_interop.py hold HOSTS PATH READY RELEASE       take a kazoo Lock (extra patterns), hold it
  kazoo_interop.py wait HOSTS PATH RELEASE             queue for the lock (extra patterns) until
                                                       acquired, release, exit; gives up at RELEASE
  kazoo_interop.py try HOSTS PATH TIMEOUT_S [--no-extra-patterns]  prints "acquired" or "timeout"

kazoo 2.8's Lock names its nodes "<uuid>__lock__<seq>" and ignores every other
child unless told otherwise: extra_lock_patterns=("-lock-",) makes it queue
behind Curator-style (and so zkcoord) nodes. Without it kazoo and zkcoord do
not exclude each other (the mutex test shows it as its negative control).
"""
import os
import struct
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout

failures = 0
failures_mu = threading.Lock()
name = "kazoo"
log_fd = -1

# Curator-style (and zkcoord) mutex nodes end in "-lock-<seq>".
EXTRA = ("-lock-",)


def fail(msg):
    global failures
    with failures_mu:
        failures += 1
    sys.stderr.write("kazoo_interop[%s]: FAIL: %s\n" % (name, msg))
    sys.stderr.flush()


def connect(hosts):
    zk = KazooClient(
        hosts=hosts,
        timeout=10.0,
        # Retry optimistic counter rounds for as long as it takes: other
        # libraries write the same node all the time.
        command_retry={"max_tries": -1, "delay": 0.005, "backoff": 1.5, "max_delay": 0.1, "max_jitter": 0.8},
        connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 1.0},
    )
    zk.start(timeout=30)
    return zk


def barrier(d):
    open(os.path.join(d, "ready." + name), "w").close()
    go = os.path.join(d, "go")
    end = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > end:
            raise RuntimeError("no start signal %s within 120 s" % go)
        time.sleep(0.005)


def wait_file(f, timeout=120):
    end = time.monotonic() + timeout
    while not os.path.exists(f):
        if time.monotonic() > end:
            raise RuntimeError("no signal %s" % f)
        time.sleep(0.005)


def log_line(s):
    # O_APPEND and one write(2) per line, as the C and Java workers do.
    os.write(log_fd, s.encode())


def mutex(argv):
    global name, log_fd
    hosts, path, d, name = argv[0:4]
    threads, iters, hold_ms = int(argv[4]), int(argv[5]), int(argv[6])
    extra = () if "--no-extra-patterns" in argv else EXTRA
    log_fd = os.open(os.path.join(d, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    zk = connect(hosts)
    barrier(d)
    marker = os.path.join(d, "inside.X")

    def worker(idx):
        who = "%s-%d" % (name, idx)
        try:
            lock = zk.Lock(path, who, extra_lock_patterns=extra)
            for _ in range(iters):
                if not lock.acquire(timeout=60):
                    fail(who + ": acquire timed out after 60 s")
                    return
                try:
                    node = lock.node
                    stat = zk.exists(path + "/" + node)
                    if stat is None:
                        fail(who + ": our node %s does not exist while we hold the lock" % node)
                        continue
                    seq = int(node[-10:])
                    log_line("ENTER %d kazoo %s M %d %d %s\n" % (time.monotonic_ns(), who, seq, stat.czxid, node))
                    try:
                        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                        mine = True
                    except FileExistsError:
                        mine = False
                        log_line("VIOLATION %d kazoo %s O_EXCL %s\n" % (time.monotonic_ns(), who, marker))
                        fail(who + ": exclusive marker exists: someone else is inside")
                    time.sleep(hold_ms / 1000.0)
                    if mine:
                        try:
                            os.unlink(marker)
                        except FileNotFoundError:
                            fail(who + ": marker vanished while we held the lock")
                    log_line("EXIT %d kazoo %s M %d\n" % (time.monotonic_ns(), who, seq))
                finally:
                    lock.release()
        except Exception as e:  # noqa: BLE001 - report whatever broke
            fail("%s: %r" % (who, e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    zk.stop()
    zk.close()
    os.close(log_fd)
    return 0 if failures == 0 else 1


def counter(argv):
    global name
    hosts, path, d, name = argv[0:4]
    threads, adds, delta = int(argv[4]), int(argv[5]), int(argv[6])
    curator = "--curator" in argv
    zk = connect(hosts)
    barrier(d)
    applied = [0] * threads
    t0 = time.monotonic_ns()

    def worker(idx):
        try:
            # One Counter per thread: the recipe keeps pre/post values on the object.
            c = zk.Counter(path, default=0, support_curator=curator)
            for _ in range(adds):
                c += delta
                if c.post_value - c.pre_value != delta:
                    fail("add %d: pre %r post %r" % (delta, c.pre_value, c.post_value))
                applied[idx] += delta
        except Exception as e:  # noqa: BLE001
            fail("%s-%d: %r" % (name, idx, e))

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t1 = time.monotonic_ns()
    print("RESULT %s applied=%d start=%d end=%d" % (name, sum(applied), t0, t1), flush=True)
    zk.stop()
    zk.close()
    return 0 if failures == 0 else 1


def one(cmd, argv):
    hosts, path = argv[0:2]
    curator = "--curator" in argv
    zk = connect(hosts)
    # sync: a fresh session may be served by a follower that lags the leader.
    zk.sync(path)
    if cmd == "raw":
        data, _ = zk.get(path)
        print(data.hex())
    else:
        c = zk.Counter(path, default=0, support_curator=curator)
        if cmd == "get":
            print(c.value)
        else:
            c += int(argv[2])
            print(c.post_value)
    zk.stop()
    zk.close()
    return 0


def hold(argv):
    hosts, path, ready, release = argv[0:4]
    zk = connect(hosts)
    lock = zk.Lock(path, "kazoo-holder", extra_lock_patterns=EXTRA)
    lock.acquire(timeout=30)
    print("acquired", lock.node, flush=True)
    open(ready, "w").close()
    wait_file(release)
    lock.release()
    zk.stop()
    zk.close()
    return 0


def wait(argv):
    hosts, path, release = argv[0:3]
    zk = connect(hosts)
    lock = zk.Lock(path, "kazoo-waiter", extra_lock_patterns=EXTRA)
    end = time.monotonic() + 120
    got = False
    while not got and time.monotonic() < end:
        try:
            got = lock.acquire(timeout=1)
        except LockTimeout:
            pass
        if not got and os.path.exists(release + ".abort"):
            break
    print("acquired" if got else "gave up", flush=True)
    if got:
        lock.release()
    zk.stop()
    zk.close()
    return 0 if got else 1


def try_(argv):
    hosts, path, timeout = argv[0], argv[1], float(argv[2])
    extra = () if "--no-extra-patterns" in argv else EXTRA
    zk = connect(hosts)
    lock = zk.Lock(path, "kazoo-try", extra_lock_patterns=extra)
    try:
        got = lock.acquire(timeout=timeout)
    except LockTimeout:
        got = False
    print(("acquired " + lock.node) if got else "timeout", flush=True)
    if got:
        lock.release()
    zk.stop()
    zk.close()
    return 0


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "mutex":
            return mutex(argv)
        if cmd == "counter":
            return counter(argv)
        if cmd in ("get", "add", "raw"):
            return one(cmd, argv)
        if cmd == "hold":
            return hold(argv)
        if cmd == "wait":
            return wait(argv)
        if cmd == "try":
            return try_(argv)
        sys.stderr.write("kazoo_interop: unknown command %s\n" % cmd)
        return 2
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("kazoo_interop[%s]: FAIL: %r\n" % (name, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
