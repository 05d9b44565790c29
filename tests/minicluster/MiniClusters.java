/*
 * Real Hadoop daemons for the tests, in one JVM: an HDFS NameNode and DataNode (MiniDFSCluster) and a
 * YARN ResourceManager and NodeManager (MiniYARNCluster), from org.apache.hadoop:hadoop-client-minicluster.
 *
 * tests/minicluster.py fetches the jars with Maven, compiles this file with javac and runs it:
 *
 *   java -cp <classes>:<jars>/* MiniClusters --conf-dir DIR --work-dir DIR [--nm-memory-mb 6144]
 *        [--nm-vcores 4] [--min-allocation-mb 256] [--delete-work-dir true]
 *
 * It writes core-site.xml, hdfs-site.xml, yarn-site.xml and capacity-scheduler.xml into --conf-dir (a
 * HADOOP_CONF_DIR for spark-submit), prints one line "READY {json}" on standard output and then serves
 * commands, one a line on standard input, fields separated by tabs, each answered by one JSON line:
 *
 *   put LOCAL HDFS | get HDFS LOCAL | ls PATH | lsr PATH | cat PATH | mkdir PATH | rm PATH | exists PATH
 *   apps | ping | stop
 *
 * Answers are {"ok":true,"result":...} or {"ok":false,"error":"..."}. It stops every daemon and exits
 * when its standard input closes (so a test process that dies leaves no daemon behind), on "stop", and
 * on SIGTERM or SIGINT (through a shutdown hook), then removes --work-dir if --delete-work-dir is true.
 * Logging goes to standard error.
 */

import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.util.VersionInfo;
import org.apache.hadoop.yarn.api.protocolrecords.KillApplicationRequest;
import org.apache.hadoop.yarn.api.records.ApplicationId;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.apache.hadoop.yarn.server.resourcemanager.rmapp.RMApp;

public final class MiniClusters {
    private static final String LOOPBACK = "127.0.0.1";
    private static final Map<String, String> CLIENT_CLOSE = Map.of(
            "dfs.client.block.write.locateFollowingBlock.initial.delay.ms", "50",
            "dfs.client.block.write.locateFollowingBlock.retries", "8");

    private final File confDir;
    private final File workDir;
    private final int nmMemoryMb;
    private final int nmVcores;
    private final int minAllocationMb;
    private final PrintStream protocol;
    private final boolean deleteWorkDir;

    private MiniDFSCluster dfs;
    private MiniYARNCluster yarn;
    private FileSystem fs;
    private String hdfsUri;
    private boolean stopped;
    private volatile boolean keepWorkDir;

    private MiniClusters(Map<String, String> options, PrintStream protocol) {
        this.confDir = new File(required(options, "conf-dir")).getAbsoluteFile();
        this.workDir = new File(required(options, "work-dir")).getAbsoluteFile();
        this.nmMemoryMb = Integer.parseInt(options.getOrDefault("nm-memory-mb", "6144"));
        this.nmVcores = Integer.parseInt(options.getOrDefault("nm-vcores", "4"));
        this.minAllocationMb = Integer.parseInt(options.getOrDefault("min-allocation-mb", "256"));
        this.deleteWorkDir = Boolean.parseBoolean(options.getOrDefault("delete-work-dir", "false"));
        this.protocol = protocol;
    }

    public static void main(String[] args) throws Exception {
        // Standard output carries the protocol only: whatever Hadoop prints goes to standard error.
        PrintStream protocol = new PrintStream(new FileOutputStream(java.io.FileDescriptor.out), true, "UTF-8");
        System.setOut(System.err);
        Map<String, String> options = new LinkedHashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value pairs, got " + args[i]);
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        MiniClusters clusters = new MiniClusters(options, protocol);
        Runtime.getRuntime().addShutdownHook(new Thread(clusters::stop, "minicluster-stop"));
        try {
            clusters.start();
        } catch (Throwable t) {
            t.printStackTrace();
            protocol.println("FAILED " + json(t.toString()));
            clusters.keepWorkDir = true;  // its log, for the test process to show
            clusters.stop();
            System.exit(2);
        }
        clusters.serve();
        clusters.stop();
        System.exit(0);
    }

    private static String required(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return value;
    }

    private void start() throws Exception {
        long t0 = System.nanoTime();
        confDir.mkdirs();
        workDir.mkdirs();

        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(workDir, "dfs").getPath());
        conf.setInt("dfs.replication", 1);
        conf.setBoolean("dfs.permissions.enabled", false);
        // A client closing a file asks the NameNode to complete it until the DataNode has reported the
        // last block, waiting 400 ms before its first retry: about every second write here (WebHDFS's
        // writes in the DataNode, Spark's in its tasks) lost those 400 ms. The same checks, the first
        // retry after 50 ms, as patient in all (8 retries, about 12.8 s, against 5 from 400 ms)
        for (Map.Entry<String, String> entry : CLIENT_CLOSE.entrySet()) {
            conf.set(entry.getKey(), entry.getValue());
        }
        dfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).format(true).build();
        dfs.waitActive();
        hdfsUri = "hdfs://" + LOOPBACK + ":" + dfs.getNameNodePort();
        fs = FileSystem.newInstance(URI.create(hdfsUri), conf);
        long tDfs = System.nanoTime();

        // a configuration of its own: MiniDFSCluster's (test-only settings such as the StaticMapping
        // topology class) would reach the clients through yarn-site.xml
        YarnConfiguration yconf = new YarnConfiguration(new Configuration());
        yconf.set("fs.defaultFS", hdfsUri);
        // MiniYARNCluster sets the NodeManager's memory from this key (4096 MB when it is absent)
        yconf.setInt(YarnConfiguration.YARN_MINICLUSTER_NM_PMEM_MB, nmMemoryMb);
        yconf.setInt(YarnConfiguration.NM_PMEM_MB, nmMemoryMb);
        yconf.setInt(YarnConfiguration.NM_VCORES, nmVcores);
        yconf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, minAllocationMb);
        yconf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_MB, nmMemoryMb);
        yconf.setInt(YarnConfiguration.RM_SCHEDULER_MAXIMUM_ALLOCATION_VCORES, nmVcores);
        // one attempt: an application that fails, fails at once instead of being run a second time
        yconf.setInt(YarnConfiguration.RM_AM_MAX_ATTEMPTS, 1);
        // a fullish disk must not mark the NodeManager's directories bad (then it runs no container)
        yconf.setFloat("yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage", 99.9f);
        yconf.setLong("yarn.nodemanager.disk-health-checker.min-free-space-per-disk-mb", 100);
        yconf.setBoolean(YarnConfiguration.LOG_AGGREGATION_ENABLED, false);
        yconf.setBoolean(YarnConfiguration.TIMELINE_SERVICE_ENABLED, false);
        Map<String, String> queues = capacityScheduler();
        for (Map.Entry<String, String> entry : queues.entrySet()) {
            yconf.set(entry.getKey(), entry.getValue());
        }
        yarn = new MiniYARNCluster("imagerank", 1, 1, 1, 1);
        yarn.init(yconf);
        yarn.start();
        if (!yarn.waitForNodeManagersToConnect(120_000)) {
            throw new IllegalStateException("the NodeManager did not register with the ResourceManager");
        }
        Configuration running = yarn.getConfig();
        long deadline = System.currentTimeMillis() + 60_000;
        while (running.get(YarnConfiguration.RM_ADDRESS, ":0").endsWith(":0")) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException(
                    "the ResourceManager has no port: " + running.get(YarnConfiguration.RM_ADDRESS));
            }
            Thread.sleep(100);
        }
        long tYarn = System.nanoTime();

        Map<String, String> core = new LinkedHashMap<>();
        core.put("fs.defaultFS", hdfsUri);
        core.put("hadoop.security.authentication", "simple");
        writeXml("core-site.xml", core);
        Map<String, String> hdfs = new LinkedHashMap<>();
        hdfs.put("dfs.replication", "1");
        hdfs.put("dfs.permissions.enabled", "false");
        hdfs.putAll(CLIENT_CLOSE);  // the same for the clients that read this file (Spark's executors)
        // the NameNode's HTTP server (WebHDFS): where Python processes without libhdfs reach HDFS
        hdfs.put("dfs.namenode.http-address", LOOPBACK + ":" + dfs.getNameNode().getHttpAddress().getPort());
        writeXml("hdfs-site.xml", hdfs);
        writeXml("capacity-scheduler.xml", queues);
        // every yarn.* setting of the running cluster, resolved: the ResourceManager's addresses with
        // their ports, the scheduler's limits (the rest, fs.defaultFS included, is core-site's to say)
        Map<String, String> yarnSite = new java.util.TreeMap<>();
        for (Map.Entry<String, String> entry : running) {
            if (entry.getKey().startsWith("yarn.")) {
                yarnSite.put(entry.getKey(), running.get(entry.getKey()));
            }
        }
        writeXml("yarn-site.xml", yarnSite);

        Map<String, Object> ready = new LinkedHashMap<>();
        ready.put("hdfs", hdfsUri);
        ready.put("rm_address", running.get(YarnConfiguration.RM_ADDRESS));
        ready.put("rm_web", running.get(YarnConfiguration.RM_WEBAPP_ADDRESS));
        ready.put("namenode_web", dfs.getNameNode().getHttpAddress().toString());
        ready.put("yarn_work_dir", yarn.getTestWorkDir().getAbsolutePath());
        ready.put("hadoop", VersionInfo.getVersion());
        ready.put("nm_memory_mb", nmMemoryMb);
        ready.put("nm_vcores", nmVcores);
        ready.put("pid", ProcessHandle.current().pid());
        ready.put("hdfs_start_s", (tDfs - t0) / 1e9);
        ready.put("yarn_start_s", (tYarn - tDfs) / 1e9);
        protocol.println("READY " + json(ready));
    }

    private static Map<String, String> capacityScheduler() {
        // without a capacity-scheduler.xml on the classpath the CapacityScheduler has no queue at all
        Map<String, String> queues = new LinkedHashMap<>();
        queues.put("yarn.scheduler.capacity.root.queues", "default");
        queues.put("yarn.scheduler.capacity.root.capacity", "100");
        queues.put("yarn.scheduler.capacity.root.default.capacity", "100");
        queues.put("yarn.scheduler.capacity.root.default.maximum-capacity", "100");
        queues.put("yarn.scheduler.capacity.root.default.state", "RUNNING");
        queues.put("yarn.scheduler.capacity.root.default.acl_submit_applications", "*");
        queues.put("yarn.scheduler.capacity.root.default.user-limit-factor", "1");
        // the default 0.1 would let one small application master run at a time
        queues.put("yarn.scheduler.capacity.maximum-am-resource-percent", "0.6");
        return queues;
    }

    private void writeXml(String name, Map<String, String> properties) throws IOException {
        StringBuilder xml = new StringBuilder("<?xml version=\"1.0\"?>\n<configuration>\n");
        for (Map.Entry<String, String> entry : properties.entrySet()) {
            if (entry.getValue() == null) {
                continue;
            }
            xml.append("  <property><name>").append(escapeXml(entry.getKey())).append("</name><value>")
               .append(escapeXml(entry.getValue())).append("</value></property>\n");
        }
        xml.append("</configuration>\n");
        File partial = new File(confDir, name + ".tmp");
        try (OutputStream out = new FileOutputStream(partial)) {
            out.write(xml.toString().getBytes(StandardCharsets.UTF_8));
        }
        if (!partial.renameTo(new File(confDir, name))) {
            throw new IOException("could not write " + name);
        }
    }

    private static String escapeXml(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }

    /** Commands from standard input until it closes or says stop. */
    private void serve() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] fields = line.split("\t", -1);
            if (fields[0].equals("stop")) {
                protocol.println("{\"ok\":true,\"result\":null}");
                return;
            }
            String answer;
            try {
                answer = "{\"ok\":true,\"result\":" + json(run(fields)) + "}";
            } catch (Throwable t) {
                StringWriter trace = new StringWriter();
                t.printStackTrace(new PrintWriter(trace));
                System.err.println("command failed: " + line + "\n" + trace);
                answer = "{\"ok\":false,\"error\":" + json(t.toString()) + "}";
            }
            protocol.println(answer);
        }
    }

    private Object run(String[] fields) throws Exception {
        String command = fields[0];
        switch (command) {
            case "ping":
                return "pong";
            case "put": {
                need(fields, 3);
                Path target = new Path(fields[2]);
                fs.copyFromLocalFile(false, true, new Path(new File(fields[1]).getAbsoluteFile().toURI()), target);
                return fs.makeQualified(target).toString();
            }
            case "get": {
                need(fields, 3);
                File local = new File(fields[2]).getAbsoluteFile();
                fs.copyToLocalFile(false, new Path(fields[1]), new Path(local.toURI()), true);
                return local.getPath();
            }
            case "ls": {
                need(fields, 2);
                List<Object> entries = new ArrayList<>();
                for (FileStatus status : fs.listStatus(new Path(fields[1]))) {
                    entries.add(entry(status));
                }
                return entries;
            }
            case "lsr": {
                need(fields, 2);
                List<Object> entries = new ArrayList<>();
                RemoteIterator<LocatedFileStatus> files = fs.listFiles(new Path(fields[1]), true);
                while (files.hasNext()) {
                    entries.add(entry(files.next()));
                }
                return entries;
            }
            case "cat": {
                need(fields, 2);
                try (FSDataInputStream stream = fs.open(new Path(fields[1]))) {
                    return new String(stream.readAllBytes(), StandardCharsets.UTF_8);
                }
            }
            case "mkdir":
                need(fields, 2);
                return fs.mkdirs(new Path(fields[1]));
            case "rm":
                need(fields, 2);
                return fs.delete(new Path(fields[1]), true);
            case "exists":
                need(fields, 2);
                return fs.exists(new Path(fields[1]));
            case "apps": {
                List<Object> apps = new ArrayList<>();
                for (RMApp app : yarn.getResourceManager().getRMContext().getRMApps().values()) {
                    Map<String, Object> one = new LinkedHashMap<>();
                    one.put("id", app.getApplicationId().toString());
                    one.put("name", app.getName());
                    one.put("type", app.getApplicationType());
                    one.put("user", app.getUser());
                    one.put("queue", app.getQueue());
                    // as YARN's clients see it (FINISHED while the ResourceManager's own state is FINISHING)
                    one.put("state", app.createApplicationState().toString());
                    one.put("rm_state", app.getState().toString());
                    one.put("final_status", app.getFinalApplicationStatus().toString());
                    one.put("diagnostics", app.getDiagnostics().toString());
                    apps.add(one);
                }
                return apps;
            }
            case "kill": {  // as `yarn application -kill <id>` does: the ResourceManager ends every container
                need(fields, 2);
                ApplicationId id = ApplicationId.fromString(fields[1]);
                return yarn.getResourceManager().getClientRMService()
                        .forceKillApplication(KillApplicationRequest.newInstance(id)).getIsKillCompleted();
            }
            default:
                throw new IllegalArgumentException("unknown command " + command);
        }
    }

    private static void need(String[] fields, int count) {
        if (fields.length != count) {
            throw new IllegalArgumentException(fields[0] + " takes " + (count - 1) + " argument(s)");
        }
    }

    private Map<String, Object> entry(FileStatus status) {
        Map<String, Object> one = new LinkedHashMap<>();
        one.put("path", status.getPath().toString());
        one.put("dir", status.isDirectory());
        one.put("size", status.getLen());
        return one;
    }

    /** Whether a container the NodeManager launched has not completed. */
    private boolean containersRunning() {
        for (org.apache.hadoop.yarn.server.nodemanager.containermanager.container.Container container
                : yarn.getNodeManager(0).getNMContext().getContainers().values()) {
            if (container.cloneAndGetContainerStatus().getState()
                    != org.apache.hadoop.yarn.api.records.ContainerState.COMPLETE) {
                return true;
            }
        }
        return false;
    }

    private synchronized void stop() {
        if (stopped) {
            return;
        }
        stopped = true;
        try {
            // YARN's graceful stop waits on applications the NodeManager still remembers, finished or not
            // (up to its kill wait, about 7 s), then on the log handler's pending deletions of their logs
            // (10 s): 17-23 s at the end of a session whose applications are all done. With no container
            // running there is nothing for it to end: the daemons' threads end with this JVM (System.exit
            // after stop) and the work folder goes below. A container still running is killed as usual.
            if (yarn != null && containersRunning()) {
                yarn.stop();
            } else if (yarn != null) {
                System.err.println("no container running: YARN's daemons end with this JVM");
            }
        } catch (Throwable t) {
            t.printStackTrace();
        }
        try {
            if (fs != null) {
                fs.close();
            }
        } catch (Throwable t) {
            t.printStackTrace();
        }
        try {
            if (dfs != null) {
                dfs.shutdown(true);
            }
        } catch (Throwable t) {
            t.printStackTrace();
        }
        System.err.println("minicluster stopped");
        if (deleteWorkDir && !keepWorkDir) {  // the test process may be gone (killed): nobody else would remove it
            try (java.util.stream.Stream<java.nio.file.Path> paths = java.nio.file.Files.walk(workDir.toPath())) {
                paths.sorted(java.util.Comparator.reverseOrder()).map(java.nio.file.Path::toFile).forEach(File::delete);
            } catch (Throwable t) {
                System.err.println("could not remove " + workDir + ": " + t);
            }
        }
    }

    private static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof Boolean || value instanceof Integer || value instanceof Long) {
            return value.toString();
        }
        if (value instanceof Double) {
            return String.format(java.util.Locale.ROOT, "%.3f", (Double) value);
        }
        if (value instanceof Map) {
            StringBuilder out = new StringBuilder("{");
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                if (out.length() > 1) {
                    out.append(',');
                }
                out.append(json(entry.getKey().toString())).append(':').append(json(entry.getValue()));
            }
            return out.append('}').toString();
        }
        if (value instanceof List) {
            StringBuilder out = new StringBuilder("[");
            for (Object item : (List<?>) value) {
                if (out.length() > 1) {
                    out.append(',');
                }
                out.append(json(item));
            }
            return out.append(']').toString();
        }
        String text = value.toString();
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }
}
