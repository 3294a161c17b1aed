package io.fraudring.neo4j;

import java.util.Optional;
import org.neo4j.configuration.Config;
import org.neo4j.gds.applications.operations.FeatureTogglesRepository;
import org.neo4j.gds.core.model.OpenModelCatalog;
import org.neo4j.gds.core.write.NativeExportBuildersProvider;
import org.neo4j.gds.logging.Log;
import org.neo4j.gds.metrics.Metrics;
import org.neo4j.gds.procedures.integration.DefaultExportLocation;
import org.neo4j.gds.procedures.integration.LogAccessor;
import org.neo4j.gds.procedures.integration.OpenGraphDataScienceExtensionBuilder;
import org.neo4j.kernel.api.procedure.GlobalProcedures;
import org.neo4j.kernel.extension.ExtensionFactory;
import org.neo4j.kernel.extension.context.ExtensionContext;
import org.neo4j.kernel.lifecycle.Lifecycle;
import org.neo4j.logging.internal.LogService;

/**
 * Registers the component the Graph Data Science procedures inject (their facade), as the GDS
 * plugin's own extension does in a server's plugins/ directory. That extension ships only in
 * the plugin's packaged jar, not on Maven Central, where the procedures and the builder used
 * here are. Open edition: native writes, no metrics, models kept in memory only.
 */
public final class GdsExtension extends ExtensionFactory<GdsExtension.Dependencies> {
  public GdsExtension() {
    super("fraudring.gds");
  }

  @Override
  public Lifecycle newInstance(ExtensionContext context, Dependencies deps) {
    Log log = new LogAccessor().getLog(deps.logService(), getClass());
    var built =
        OpenGraphDataScienceExtensionBuilder.create(
            log,
            deps.globalProcedures(),
            deps.config(),
            (db, config) -> new NativeExportBuildersProvider(),
            new DefaultExportLocation(log, deps.config()),
            new FeatureTogglesRepository(),
            Metrics.DISABLED,
            new OpenModelCatalog(),
            model -> {
              throw new UnsupportedOperationException("storing models is not available");
            },
            Optional.empty(),
            Optional.empty(),
            Optional.empty());
    return built.getLeft().build();
  }

  /** What Neo4j hands the extension. */
  public interface Dependencies {
    Config config();

    GlobalProcedures globalProcedures();

    LogService logService();
  }
}
