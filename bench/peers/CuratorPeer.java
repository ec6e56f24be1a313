// One Curator worker process of zkcoord-bench --peers (bench/README.md).
// Compiled by bench/peers/prepare.sh against Debian's Curator jars.
//
//   java CuratorPeer mutex|counter|reserve|mutex_threads HOSTS PATH [ARG]
//
// mutex    InterProcessMutex(PATH): acquire + release
// counter  DistributedAtomicLong(PATH).increment(), repeated until it succeeds
// reserve  InterProcessMutex(PATH/lock) + getData(PATH/stock) + setData(-1) + release
// mutex_threads  ARG threads of this JVM, each with its InterProcessMutex(PATH):
//          acquire + release
//
// One session per process, as a Curator user would write a worker. Protocol on
// stdin/stdout: after connecting and one warm-up operation it prints "ready";
// each "run SECONDS" line starts a timed run whose result is one JSON line
// {"ops": completed before the deadline, "ops_all": completed, "fails": n,
//  "retries": optimistic rounds lost, "lat_ms": [per op, before the deadline]}
// ("elapsed_s" when every thread's work ran out before the deadline);
// "quit" or end of input closes the session. A failure prints {"error": "..."}.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
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
        long r0 = retries.get();
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
                + (retries.get() - r0) + early + ", \"lat_ms\": [" + lats + "]}";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3 && args.length != 4) {
            System.out.println("{\"error\": \"usage: CuratorPeer mutex|counter|reserve|mutex_threads HOSTS PATH [ARG]\"}");
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
            Step[] steps;
            if (args[0].equals("mutex_threads")) {
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
                String out = timedRun(steps, Double.parseDouble(line.substring(4)));
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
