// The Curator side of the zkcoord interoperability tests (tests/interop).
// Compiled at test time with the system javac against Debian's Curator jars.
//
//   java Interop mutex|rw     HOSTS PATH DIR NAME THREADS ITERS HOLD_MS
//   java Interop counter-long|counter-shared HOSTS PATH DIR NAME THREADS ADDS DELTA
//   java Interop get-long|get-shared   HOSTS PATH          (sync, then read; prints the value)
//   java Interop add-long|add-shared   HOSTS PATH DELTA    (prints the value written)
//   java Interop hold-mutex HOSTS PATH READY_FILE RELEASE_FILE
//   java Interop try-mutex  HOSTS PATH TIMEOUT_MS          (prints "acquired" or "timeout")
//   java Interop hold-semaphore HOSTS PATH LEASES READY_FILE RELEASE_FILE
//   java Interop try-semaphore  HOSTS PATH LEASES TIMEOUT_MS
//   java Interop hold-latch HOSTS PATH ID READY_FILE RELEASE_FILE
//                                   (LeaderLatch: lead, write READY_FILE, resign on RELEASE_FILE)
//   java Interop try-latch  HOSTS PATH ID TIMEOUT_MS   (prints "leader" or "timeout")
//   java Interop latch-leader HOSTS PATH               (prints the leader's participant id)
//
// mutex/rw log ENTER/EXIT lines to DIR/log (System.nanoTime = CLOCK_MONOTONIC on
// Linux, the clock the C and Python workers use) and keep the same O_EXCL
// markers as zkc_interop.c; tests/interop/check_log.py judges the log.
// Exit status 0 ok, 1 failure.

import java.io.FileOutputStream;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.data.Stat;

public class Interop {
    static final AtomicInteger failures = new AtomicInteger();
    static String name = "curator";
    static FileOutputStream log;

    static void fail(String msg) {
        failures.incrementAndGet();
        System.err.println("Interop[" + name + "]: FAIL: " + msg);
    }

    static CuratorFramework connect(String hosts) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(hosts, 15000, 10000,
                new ExponentialBackoffRetry(50, 10, 2000));
        c.start();
        if (!c.blockUntilConnected(30, TimeUnit.SECONDS))
            throw new IllegalStateException("no connection to " + hosts + " within 30 s");
        return c;
    }

    static void barrier(String dir) throws Exception {
        Files.write(Paths.get(dir, "ready." + name), new byte[0]);
        Path go = Paths.get(dir, "go");
        long end = System.nanoTime() + 120_000_000_000L;
        while (!Files.exists(go)) {
            if (System.nanoTime() > end)
                throw new IllegalStateException("no start signal " + go + " within 120 s");
            Thread.sleep(5);
        }
    }

    static void waitFile(String f, long timeoutMs) throws Exception {
        long end = System.nanoTime() + timeoutMs * 1_000_000L;
        while (!Files.exists(Paths.get(f))) {
            if (System.nanoTime() > end)
                throw new IllegalStateException("no signal " + f);
            Thread.sleep(5);
        }
    }

    static void logLine(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        try {
            // FileOutputStream in append mode is O_APPEND; one small write(2) per line.
            synchronized (Interop.class) {
                log.write(b);
            }
        } catch (Exception e) {
            fail("write to the shared log: " + e);
        }
    }

    // The node a Curator lock holds: InterProcessMutex.getLockPath() is protected.
    static Method lockPathMethod;

    static String lockPath(InterProcessMutex m) throws Exception {
        if (lockPathMethod == null) {
            Method mm = InterProcessMutex.class.getDeclaredMethod("getLockPath");
            mm.setAccessible(true);
            lockPathMethod = mm;
        }
        return (String) lockPathMethod.invoke(m);
    }

    // ZooKeeper's 10-digit suffix (the tests never run long enough to wrap it).
    static long seqOf(String node) {
        return Long.parseLong(node.substring(node.length() - 10));
    }

    static void inside(CuratorFramework c, String dir, String who, char kind, InterProcessMutex m, int holdMs)
            throws Exception {
        String node = lockPath(m);
        Stat st = c.checkExists().forPath(node);
        if (st == null) {
            fail(who + ": our node " + node + " does not exist while we hold the lock");
            return;
        }
        String leaf = node.substring(node.lastIndexOf('/') + 1);
        long seq = seqOf(leaf);
        Path marker = Paths.get(dir, "inside.X");
        Path rmarker = Paths.get(dir, "readers", who);
        if (kind == 'R')
            Files.write(rmarker, new byte[0]);
        logLine("ENTER " + System.nanoTime() + " curator " + who + " " + kind + " " + seq + " " + st.getCzxid()
                + " " + leaf + "\n");
        if (kind == 'R') {
            if (Files.exists(marker)) {
                logLine("VIOLATION " + System.nanoTime() + " curator " + who + " reader inside while a writer is\n");
                fail(who + ": reader inside while a writer is");
            }
        } else {
            try {
                Files.createFile(marker); // O_EXCL
            } catch (FileAlreadyExistsException e) {
                logLine("VIOLATION " + System.nanoTime() + " curator " + who + " O_EXCL " + marker + "\n");
                fail(who + ": exclusive marker exists: someone else is inside");
            }
            if (kind == 'W') {
                try (var ds = Files.newDirectoryStream(Paths.get(dir, "readers"))) {
                    if (ds.iterator().hasNext()) {
                        logLine("VIOLATION " + System.nanoTime() + " curator " + who
                                + " writer inside while readers are\n");
                        fail(who + ": writer inside while readers are");
                    }
                }
            }
        }
        Thread.sleep(holdMs);
        if (kind != 'R') {
            try {
                Files.delete(marker);
            } catch (Exception e) {
                fail(who + ": marker vanished while we held the lock: " + e);
            }
        }
        logLine("EXIT " + System.nanoTime() + " curator " + who + " " + kind + " " + seq + "\n");
        if (kind == 'R')
            Files.delete(rmarker);
    }

    static int locks(String[] a, boolean rw) throws Exception {
        String hosts = a[1], path = a[2], dir = a[3];
        name = a[4];
        int threads = Integer.parseInt(a[5]), iters = Integer.parseInt(a[6]), holdMs = Integer.parseInt(a[7]);
        log = new FileOutputStream(Paths.get(dir, "log").toString(), true);
        Files.createDirectories(Paths.get(dir, "readers"));
        CuratorFramework c = connect(hosts);
        barrier(dir);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int idx = t;
            final String who = name + "-" + t;
            Thread th = new Thread(() -> {
                try {
                    InterProcessMutex mutex = new InterProcessMutex(c, path);
                    InterProcessReadWriteLock rwl = new InterProcessReadWriteLock(c, path);
                    for (int i = 0; i < iters; i++) {
                        char kind = 'M';
                        InterProcessMutex l = mutex;
                        if (rw) {
                            boolean write = (i + idx) % 3 == 0;
                            kind = write ? 'W' : 'R';
                            l = write ? rwl.writeLock() : rwl.readLock();
                        }
                        if (!l.acquire(60, TimeUnit.SECONDS)) {
                            fail(who + ": acquire timed out after 60 s");
                            return;
                        }
                        try {
                            inside(c, dir, who, kind, l, holdMs);
                        } finally {
                            l.release();
                        }
                    }
                } catch (Exception e) {
                    fail(who + ": " + e);
                    e.printStackTrace();
                }
            });
            th.start();
            ts.add(th);
        }
        for (Thread th : ts)
            th.join();
        c.close();
        log.close();
        return failures.get() == 0 ? 0 : 1;
    }

    // Increment until applied: Curator's optimistic rounds can all lose.
    static long addLong(DistributedAtomicLong d, long delta) throws Exception {
        for (int round = 0; round < 1000; round++) {
            AtomicValue<Long> v = d.add(delta);
            if (v.succeeded()) {
                if (v.postValue() - v.preValue() != delta)
                    fail("DistributedAtomicLong add " + delta + ": pre " + v.preValue() + " post " + v.postValue());
                return v.postValue();
            }
        }
        throw new IllegalStateException("DistributedAtomicLong.add never succeeded");
    }

    static long addShared(SharedCount s, int delta) throws Exception {
        for (int round = 0; round < 100000; round++) {
            VersionedValue<Integer> v = s.getVersionedValue();
            int next = v.getValue() + delta;
            if (s.trySetCount(v, next)) // false refreshes the cached value
                return next;
        }
        throw new IllegalStateException("SharedCount.trySetCount never succeeded");
    }

    static int counter(String[] a, boolean shared) throws Exception {
        String hosts = a[1], path = a[2], dir = a[3];
        name = a[4];
        int threads = Integer.parseInt(a[5]), adds = Integer.parseInt(a[6]);
        long delta = Long.parseLong(a[7]);
        CuratorFramework c = connect(hosts);
        List<SharedCount> counts = new ArrayList<>();
        barrier(dir);
        AtomicLong applied = new AtomicLong();
        long t0 = System.nanoTime();
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            // One recipe object per thread, as separate services would have.
            DistributedAtomicLong dal = shared ? null : new DistributedAtomicLong(c, path, new RetryNTimes(50, 1));
            SharedCount sc = null;
            if (shared) {
                sc = new SharedCount(c, path, 0);
                sc.start();
                counts.add(sc);
            }
            final SharedCount fsc = sc;
            Thread th = new Thread(() -> {
                try {
                    for (int i = 0; i < adds; i++) {
                        if (shared)
                            addShared(fsc, (int) delta);
                        else
                            addLong(dal, delta);
                        applied.addAndGet(delta);
                    }
                } catch (Exception e) {
                    fail(name + ": " + e);
                    e.printStackTrace();
                }
            });
            th.start();
            ts.add(th);
        }
        for (Thread th : ts)
            th.join();
        long t1 = System.nanoTime();
        System.out.println("RESULT " + name + " applied=" + applied.get() + " start=" + t0 + " end=" + t1);
        for (SharedCount sc : counts)
            sc.close();
        c.close();
        return failures.get() == 0 ? 0 : 1;
    }

    static int one(String[] a) throws Exception {
        String cmd = a[0], hosts = a[1], path = a[2];
        CuratorFramework c = connect(hosts);
        // sync: a fresh session may be served by a follower that lags the leader.
        c.sync().forPath(path);
        long v;
        switch (cmd) {
        case "get-long": {
            AtomicValue<Long> r = new DistributedAtomicLong(c, path, new RetryNTimes(3, 10)).get();
            if (!r.succeeded())
                throw new IllegalStateException("get failed");
            v = r.postValue();
            break;
        }
        case "add-long":
            v = addLong(new DistributedAtomicLong(c, path, new RetryNTimes(50, 1)), Long.parseLong(a[3]));
            break;
        case "get-shared": {
            SharedCount sc = new SharedCount(c, path, 0);
            sc.start();
            v = sc.getCount();
            sc.close();
            break;
        }
        default: {
            SharedCount sc = new SharedCount(c, path, 0);
            sc.start();
            v = addShared(sc, Integer.parseInt(a[3]));
            sc.close();
        }
        }
        System.out.println(v);
        c.close();
        return 0;
    }

    static int holdMutex(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        InterProcessMutex m = new InterProcessMutex(c, a[2]);
        m.acquire();
        System.out.println("acquired " + lockPath(m));
        Files.write(Paths.get(a[3]), new byte[0]);
        waitFile(a[4], 120000);
        m.release();
        c.close();
        return 0;
    }

    static int tryMutex(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        InterProcessMutex m = new InterProcessMutex(c, a[2]);
        boolean got = m.acquire(Long.parseLong(a[3]), TimeUnit.MILLISECONDS);
        System.out.println(got ? "acquired " + lockPath(m) : "timeout");
        if (got)
            m.release();
        c.close();
        return 0;
    }

    static int holdSemaphore(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(c, a[2], Integer.parseInt(a[3]));
        Lease lease = s.acquire(30, TimeUnit.SECONDS);
        if (lease == null)
            throw new IllegalStateException("no lease within 30 s");
        System.out.println("acquired " + lease.getNodeName());
        Files.write(Paths.get(a[4]), new byte[0]);
        waitFile(a[5], 120000);
        s.returnLease(lease);
        c.close();
        return 0;
    }

    static int trySemaphore(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(c, a[2], Integer.parseInt(a[3]));
        Lease lease = s.acquire(Long.parseLong(a[4]), TimeUnit.MILLISECONDS);
        System.out.println(lease != null ? "acquired " + lease.getNodeName() : "timeout");
        if (lease != null)
            s.returnLease(lease);
        c.close();
        return 0;
    }

    // LeaderLatch: lead until told to resign. READY_FILE gets our own node and
    // the leader's id as Curator reads it.
    static int holdLatch(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        LeaderLatch l = new LeaderLatch(c, a[2], a[3]);
        l.start();
        if (!l.await(60, TimeUnit.SECONDS))
            throw new IllegalStateException("not leader within 60 s");
        String line = "leader " + l.getLeader().getId() + "\n";
        System.out.print(line);
        System.out.flush();
        Files.write(Paths.get(a[4]), line.getBytes(StandardCharsets.UTF_8));
        waitFile(a[5], 120000);
        if (!l.hasLeadership())
            fail("lost leadership before being told to resign");
        l.close();
        c.close();
        return 0;
    }

    static int tryLatch(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        LeaderLatch l = new LeaderLatch(c, a[2], a[3]);
        l.start();
        boolean led = l.await(Long.parseLong(a[4]), TimeUnit.MILLISECONDS);
        System.out.println(led ? "leader" : "timeout");
        l.close();
        c.close();
        return 0;
    }

    static int latchLeader(String[] a) throws Exception {
        CuratorFramework c = connect(a[1]);
        c.sync().forPath(a[2]);
        LeaderLatch l = new LeaderLatch(c, a[2], "observer");
        System.out.println(l.getLeader().getId());
        c.close();
        return 0;
    }

    public static void main(String[] a) throws Exception {
        int rc;
        try {
            switch (a[0]) {
            case "mutex": rc = locks(a, false); break;
            case "rw": rc = locks(a, true); break;
            case "counter-long": rc = counter(a, false); break;
            case "counter-shared": rc = counter(a, true); break;
            case "get-long": case "add-long": case "get-shared": case "add-shared": rc = one(a); break;
            case "hold-mutex": rc = holdMutex(a); break;
            case "try-mutex": rc = tryMutex(a); break;
            case "hold-semaphore": rc = holdSemaphore(a); break;
            case "try-semaphore": rc = trySemaphore(a); break;
            case "hold-latch": rc = holdLatch(a); break;
            case "try-latch": rc = tryLatch(a); break;
            case "latch-leader": rc = latchLeader(a); break;
            default:
                System.err.println("Interop: unknown command " + a[0]);
                rc = 2;
            }
        } catch (Exception e) {
            System.err.println("Interop[" + name + "]: FAIL: " + e);
            e.printStackTrace();
            rc = 1;
        }
        System.out.flush();
        // Curator's background threads must not keep the JVM alive.
        System.exit(rc);
    }
}
