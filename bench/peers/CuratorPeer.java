// One Curator worker process of zkcoord-bench --peers (bench/README.md).
// Compiled by bench/peers/prepare.sh against Debian's Curator jars.
//
//   java CuratorPeer mutex|counter|reserve HOSTS PATH
//
// mutex    InterProcessMutex(PATH): acquire + release
// counter  DistributedAtomicLong(PATH).increment(), repeated until it succeeds
// reserve  InterProcessMutex(PATH/lock) + getData(PATH/stock) + setData(-1) + release
//
// One session per process, as a Curator user would write a worker. Protocol on
// stdin/stdout: after connecting and one warm-up operation it prints "ready";
// each "run SECONDS" line starts a timed run whose result is one JSON line
// {"ops": completed before the deadline, "ops_all": completed, "fails": n,
//  "retries": optimistic rounds lost, "lat_ms": [per op, before the deadline]};
// "quit" or end of input closes the session. A failure prints {"error": "..."}.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

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

    static long retries;

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
                    retries++;
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

    static String timedRun(Op op, double seconds) {
        long t0 = System.nanoTime(), deadline = t0 + (long) (seconds * 1e9);
        long ops = 0, all = 0, fails = 0;
        long r0 = retries;
        StringBuilder lat = new StringBuilder();
        while (System.nanoTime() < deadline) {
            long a = System.nanoTime();
            try {
                op.run();
            } catch (Exception e) {
                return "{\"error\": " + quote(e.toString()) + "}";
            }
            long b = System.nanoTime();
            all++;
            if (b <= deadline) {
                ops++;
                if (lat.length() > 0)
                    lat.append(',');
                lat.append(String.format("%.3f", (b - a) / 1e6));
            }
        }
        return "{\"ops\": " + ops + ", \"ops_all\": " + all + ", \"fails\": " + fails + ", \"retries\": "
                + (retries - r0) + ", \"lat_ms\": [" + lat + "]}";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.out.println("{\"error\": \"usage: CuratorPeer mutex|counter|reserve HOSTS PATH\"}");
            System.exit(2);
        }
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[1], 15000, 10000,
                new ExponentialBackoffRetry(50, 10, 2000));
        int rc = 0;
        try {
            c.start();
            if (!c.blockUntilConnected(60, TimeUnit.SECONDS))
                throw new IllegalStateException("no connection to " + args[1] + " within 60 s");
            Op op = build(args[0], c, args[2]);
            op.run();
            System.out.println("ready");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null && !line.equals("quit");) {
                if (!line.startsWith("run "))
                    continue;
                String out = timedRun(op, Double.parseDouble(line.substring(4)));
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
