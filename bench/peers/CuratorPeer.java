// One Curator worker process of zkcoord-bench --peers (bench/README.md).
// Compiled by bench/peers/prepare.sh against Debian's Curator jars.
//
//   java CuratorPeer mutex|counter|reserve|mutex_threads|flash HOSTS PATH [ARG]
//
// mutex    InterProcessMutex(PATH): acquire + release
// counter  DistributedAtomicLong(PATH).increment(), repeated until it succeeds
// reserve  InterProcessMutex(PATH/lock) + getData(PATH/stock) + setData(-1) + release
// mutex_threads  ARG threads of this JVM, each with its InterProcessMutex(PATH):
//          acquire + release
// flash    the flash sale of zkcoord-bench (bench/scen_flash.c), ARG =
//          PROCS:THREADS:ORDERS:HOT_STOCK: THREADS threads sell this process's
//          share (orders ZKC_PEER_INDEX, + PROCS, ...) of the book that
//          bench/flash_order.c defines, each "run" a fresh sale under PATH/rN:
//          per order an InterProcessMutex per SKU (PATH/rN/locks/SKU, taken in
//          name order), DistributedAtomicLong(PATH/rN/stock/SKU) get for each
//          line, then add(-qty) for each if all have enough, release.
//
// One session per process, as a Curator user would write a worker. Protocol on
// stdin/stdout: after connecting and one warm-up operation it prints "ready";
// each "run SECONDS" line starts a timed run whose result is one JSON line
// {"ops": completed before the deadline, "ops_all": completed, "fails": n,
//  "retries": optimistic rounds lost, "lat_ms": [per op, before the deadline]}
// (flash adds "refused", "units": hot units sold, and "elapsed_s" when the
// book ran out before the deadline);
// "quit" or end of input closes the session. A failure prints {"error": "..."}.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorPeer {
    interface Op {
        void run() throws Exception;
    }

    // One thread's operation of a timed run: false when its work ran out.
    interface Step {
        boolean run() throws Exception;
    }

    static final AtomicLong retries = new AtomicLong();
    static final AtomicLong refused = new AtomicLong(), units = new AtomicLong();

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    static Op build(String workload, CuratorFramework c, String path) throws Exception {
        switch (workload) {
        case "mutex": {
            InterProcessMutex m = new InterProcessMutex(c, path);
            return () -> {
                if (!m.acquire(60, TimeUnit.SECONDS))
                    throw new IllegalStateException("InterProcessMutex not acquired in 60 s");
                m.release();
            };
        }
        case "counter": {
            DistributedAtomicLong d = new DistributedAtomicLong(c, path, new ExponentialBackoffRetry(5, 10, 100));
            return () -> {
                for (int round = 0; round < 1000; round++) {
                    AtomicValue<Long> v = d.increment();
                    if (v.succeeded())
                        return;
                    retries.incrementAndGet();
                }
                throw new IllegalStateException("DistributedAtomicLong.increment never succeeded");
            };
        }
        case "reserve": {
            InterProcessMutex m = new InterProcessMutex(c, path + "/lock");
            String stock = path + "/stock";
            try {
                c.create().creatingParentsIfNeeded().forPath(stock, "1000000000000".getBytes(StandardCharsets.UTF_8));
            } catch (KeeperException.NodeExistsException e) {
                // another worker made it
            }
            return () -> {
                if (!m.acquire(60, TimeUnit.SECONDS))
                    throw new IllegalStateException("InterProcessMutex not acquired in 60 s");
                try {
                    Stat st = new Stat();
                    long v = Long.parseLong(new String(c.getData().storingStatIn(st).forPath(stock), StandardCharsets.UTF_8));
                    if (v < 1)
                        throw new IllegalStateException("out of stock");
                    c.setData().withVersion(st.getVersion()).forPath(stock,
                            Long.toString(v - 1).getBytes(StandardCharsets.UTF_8));
                } finally {
                    m.release();
                }
            };
        }
        default:
            throw new IllegalArgumentException("unknown workload " + workload);
        }
    }

    // Each thread runs its step until the deadline or until its work runs out.
    static String timedRun(Step[] steps, double seconds) throws InterruptedException {
        long t0 = System.nanoTime(), deadline = t0 + (long) (seconds * 1e9);
        long r0 = retries.get(), f0 = refused.get(), u0 = units.get();
        int n = steps.length;
        long[] ops = new long[n], all = new long[n], end = new long[n];
        StringBuilder[] lat = new StringBuilder[n];
        String[] err = new String[n];
        Thread[] th = new Thread[n];
        for (int t = 0; t < n; t++) {
            final int k = t;
            lat[k] = new StringBuilder();
            th[k] = new Thread(() -> {
                while (System.nanoTime() < deadline) {
                    long a = System.nanoTime();
                    try {
                        if (!steps[k].run())
                            break;
                    } catch (Exception e) {
                        err[k] = e.toString();
                        break;
                    }
                    long b = System.nanoTime();
                    all[k]++;
                    if (b <= deadline) {
                        ops[k]++;
                        if (lat[k].length() > 0)
                            lat[k].append(',');
                        lat[k].append(String.format("%.3f", (b - a) / 1e6));
                    }
                }
                end[k] = System.nanoTime();
            });
            th[k].start();
        }
        long sumOps = 0, sumAll = 0, last = t0;
        StringBuilder lats = new StringBuilder();
        for (int t = 0; t < n; t++) {
            th[t].join();
            if (err[t] != null)
                return "{\"error\": " + quote(err[t]) + "}";
            sumOps += ops[t];
            sumAll += all[t];
            last = Math.max(last, end[t]);
            if (lat[t].length() > 0) {
                if (lats.length() > 0)
                    lats.append(',');
                lats.append(lat[t]);
            }
        }
        String early = last < deadline ? ", \"elapsed_s\": " + String.format("%.6f", (last - t0) / 1e9) : "";
        return "{\"ops\": " + sumOps + ", \"ops_all\": " + sumAll + ", \"fails\": 0, \"retries\": "
                + (retries.get() - r0) + ", \"refused\": " + (refused.get() - f0) + ", \"units\": "
                + (units.get() - u0) + early + ", \"lat_ms\": [" + lats + "]}";
    }

    // ---- the flash sale's book: bench/flash_order.c, line for line ----

    static final int COLD = 50, HOT_PCT = 60;

    static long splitmix64(long x) {
        long z = x + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // SKU name -> quantity, in name order (the order the mutexes are taken in).
    static TreeMap<String, Long> order(int i) {
        long z = splitmix64(i), y = splitmix64(i ^ 0x5DEECE66DL);
        int n = 1 + (int) ((z & 0xffff) % 3);
        boolean hot = (int) (((z >>> 16) & 0xffff) % 100) < HOT_PCT;
        TreeMap<String, Long> lines = new TreeMap<>();
        List<Integer> used = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            long qty = 1 + ((z >>> (32 + k)) & 1);
            if (k == 0 && hot) {
                lines.put("hot", qty);
                continue;
            }
            int c = (int) (((y >>> (16 * k)) & 0xffff) % COLD);
            while (used.contains(c))
                c = (c + 1) % COLD;
            used.add(c);
            lines.put(String.format("c%02d", c), qty);
        }
        return lines;
    }

    static class Flash {
        final CuratorFramework c;
        final String path;
        final int procs, threads, orders, index;
        final long hotStock;
        final Map<String, Long> stock = new HashMap<>();
        int round = -1;
        String base;
        Map<String, DistributedAtomicLong> counters;
        AtomicInteger next;

        Flash(CuratorFramework c, String path, String arg) {
            String[] a = arg.split(":");
            this.c = c;
            this.path = path;
            procs = Integer.parseInt(a[0]);
            threads = Integer.parseInt(a[1]);
            orders = Integer.parseInt(a[2]);
            hotStock = Long.parseLong(a[3]);
            String ix = System.getenv("ZKC_PEER_INDEX");
            index = ix == null ? 0 : Integer.parseInt(ix);
            for (int i = 0; i < orders; i++)
                for (Map.Entry<String, Long> l : order(i).entrySet())
                    if (!l.getKey().equals("hot"))
                        stock.merge(l.getKey(), l.getValue(), Long::sum);
            stock.put("hot", hotStock);
            for (int k = 0; k < COLD; k++)
                stock.putIfAbsent(String.format("c%02d", k), 1L);
        }

        // A fresh sale: every process initializes the counters (the first one
        // to create a node sets its stock), then sells its share.
        Step[] sale() throws Exception {
            round++;
            base = path + "/r" + round;
            counters = new HashMap<>();
            for (Map.Entry<String, Long> s : stock.entrySet()) {
                DistributedAtomicLong d = new DistributedAtomicLong(c, base + "/stock/" + s.getKey(),
                        new ExponentialBackoffRetry(5, 10, 100));
                d.initialize(s.getValue());
                counters.put(s.getKey(), d);
            }
            next = new AtomicInteger();
            Step[] steps = new Step[threads];
            for (int t = 0; t < threads; t++)
                steps[t] = this::one;
            return steps;
        }

        boolean one() throws Exception {
            long i = index + (long) next.getAndIncrement() * procs;
            if (i >= orders)
                return false;
            TreeMap<String, Long> lines = order((int) i);
            List<InterProcessMutex> held = new ArrayList<>();
            try {
                for (String sku : lines.keySet()) {
                    InterProcessMutex m = new InterProcessMutex(c, base + "/locks/" + sku);
                    if (!m.acquire(60, TimeUnit.SECONDS))
                        throw new IllegalStateException("InterProcessMutex " + sku + " not acquired in 60 s");
                    held.add(m);
                }
                boolean enough = true;
                for (Map.Entry<String, Long> l : lines.entrySet()) {
                    AtomicValue<Long> v = counters.get(l.getKey()).get();
                    if (!v.succeeded())
                        throw new IllegalStateException("DistributedAtomicLong get failed");
                    enough &= v.postValue() >= l.getValue();
                }
                if (!enough) {
                    refused.incrementAndGet();
                    return true;
                }
                for (Map.Entry<String, Long> l : lines.entrySet()) {
                    DistributedAtomicLong d = counters.get(l.getKey());
                    while (!d.subtract(l.getValue()).succeeded())
                        retries.incrementAndGet();
                }
                if (lines.containsKey("hot"))
                    units.addAndGet(lines.get("hot"));
                return true;
            } finally {
                for (int k = held.size() - 1; k >= 0; k--)
                    held.get(k).release();
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3 && args.length != 4) {
            System.out.println("{\"error\": \"usage: CuratorPeer mutex|counter|reserve|mutex_threads|flash HOSTS PATH [ARG]\"}");
            System.exit(2);
        }
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[1], 15000, 10000,
                new ExponentialBackoffRetry(50, 10, 2000));
        int rc = 0;
        try {
            c.start();
            if (!c.blockUntilConnected(60, TimeUnit.SECONDS))
                throw new IllegalStateException("no connection to " + args[1] + " within 60 s");
            String arg = args.length == 4 ? args[3] : null;
            Flash flash = args[0].equals("flash") ? new Flash(c, args[2], arg) : null;
            Step[] steps;
            if (flash != null) {
                steps = null;
            } else if (args[0].equals("mutex_threads")) {
                steps = new Step[Integer.parseInt(arg)];
                for (int t = 0; t < steps.length; t++) {
                    Op op = build("mutex", c, args[2]);
                    steps[t] = () -> {
                        op.run();
                        return true;
                    };
                }
                steps[0].run();
            } else {
                Op op = build(args[0], c, args[2]);
                op.run();
                steps = new Step[] {() -> {
                    op.run();
                    return true;
                }};
            }
            System.out.println("ready");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null && !line.equals("quit");) {
                if (!line.startsWith("run "))
                    continue;
                String out = timedRun(flash != null ? flash.sale() : steps, Double.parseDouble(line.substring(4)));
                System.out.println(out);
                System.out.flush();
                if (out.startsWith("{\"error\"")) {
                    rc = 1;
                    break;
                }
            }
        } catch (Exception e) {
            System.out.println("{\"error\": " + quote(e.toString()) + "}");
            rc = 1;
        } finally {
            c.close();
        }
        System.exit(rc);
    }
}
