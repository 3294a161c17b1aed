package io.fraudring.neo4j;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Neo4j Community in process for tests, benchmarks and the demo: Bolt with authentication on a
 * free loopback port, no HTTP. The password comes from the environment (never the command line,
 * which other users can read). Prints one line {@code NEO4J_URI=bolt://127.0.0.1:PORT} once the
 * server answers, then runs until SIGTERM (or SIGINT), when it shuts the database down and
 * deletes its files.
 *
 * <p>Usage: {@code NEO4J_PASSWORD=... java -jar fraudring-neo4j.jar DIR [PAGECACHE_MB]}
 */
public final class TestServer {
  private TestServer() {}

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: NEO4J_PASSWORD=... java -jar fraudring-neo4j.jar DIR [PAGECACHE_MB]");
      System.exit(2);
    }
    String password = System.getenv("NEO4J_PASSWORD");
    if (password == null || password.length() < 8) {
      System.err.println("NEO4J_PASSWORD: must be set, at least 8 characters");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    long pagecacheMb = args.length > 1 ? Long.parseLong(args[1]) : 512L;
    Files.createDirectories(dir);
    int port = freePort();
    // Graph Data Science, when built in: its jars sit in plugins/ beside this jar
    Path plugins =
        Path.of(TestServer.class.getProtectionDomain().getCodeSource().getLocation().toURI())
            .resolveSibling("plugins");
    Neo4j neo4j =
        Neo4jBuilders.newInProcessBuilder(dir)
            .withDisabledServer()
            .withConfig(GraphDatabaseSettings.auth_enabled, true)
            .withConfig(GraphDatabaseSettings.pagecache_memory, pagecacheMb * 1024L * 1024L)
            .withConfig(GraphDatabaseSettings.plugin_dir, plugins)
            .withConfig(GraphDatabaseSettings.procedure_unrestricted, List.of("gds.*"))
            .withConfig(BoltConnector.enabled, true)
            .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
            .withConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
            .build();
    // Embedded calls run without authentication: they set the password Bolt clients must give.
    neo4j
        .databaseManagementService()
        .database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME)
        .executeTransactionally(
            "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
            Map.of("password", password));
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  neo4j.close();
                  stopped.countDown();
                }));
    System.out.println("NEO4J_URI=bolt://127.0.0.1:" + port);
    System.out.flush();
    stopped.await();
  }
}
