import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage bundle`: share a recipe with its results as one tar file.
struct BundleCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bundle",
    abstract: "Pack a recipe and its results into one file, or import such a file.",
    discussion: """
      A bundle is a tar file holding the stage files, lineage.lock, the data files stages read, and the \
      chosen stages' outputs and action records, listed with their SHA-256 in manifest.json. Importing \
      verifies every hash before anything enters the store; `lineage run` in the imported recipe then \
      restores those stages instead of running them.
      """,
    subcommands: [Create.self, Import.self])

  /// `lineage bundle create`.
  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", 
      abstract: "Write the recipe and the lockfile's results of the stages (all when none named) to a bundle.")

    @OptionGroup var options: RecipeOptions

    @Argument(help: "Stages or matrix groups whose results to include (default: every stage of lineage.lock).")
    var stages: [String] = []

    @Flag(name: .long, help: "Also include the results of every stage the named ones depend on.")
    var withAncestors = false

    @Option(name: .shortAndLong, help: "The bundle file to write.")
    var output: String

    func run() async throws {
      let recipe = try options.loadRecipe()
      let store = try options.openStore()
      let selection: RecipeBundle.Selection = stages.isEmpty ? .allLocked
        : withAncestors ? .stagesWithAncestors(stages) : .stages(stages)
      do {
        let bundle = try RecipeBundle.make(recipe: recipe, store: store, selection: selection)
        try bundle.write(toFile: output)
        let bytes = bundle.artifacts.values.reduce(0) { $0 + $1.count }
        Console.out("wrote \(output): \(bundle.stages.count) stage\(bundle.stages.count == 1 ? "" : "s") "
                      + "(\(bundle.stages.map(\.name).joined(separator: ", "))), \(bundle.artifacts.count) "
                      + "artifact\(bundle.artifacts.count == 1 ? "" : "s") (\(byteCount(bytes))), "
                      + "\(bundle.recipeFiles.count) recipe file\(bundle.recipeFiles.count == 1 ? "" : "s")")
      } catch {
        Console.error("error: \(error)")
        throw ExitCode.failure
      }
    }
  }

  /// `lineage bundle import`.
  struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", 
      abstract: "Verify a bundle, add its results to the store and write its recipe files.",
      discussion: """
        Nothing is written when any entry is unsafe (absolute, '..', a link or device), unlisted in the \
        manifest, or differs from the size and SHA-256 the manifest gives it. A recipe file that already \
        exists with other contents is not replaced without --force.
        """)

    @Argument(help: "The bundle file.")
    var file: String

    @Option(name: .long, help: "The recipe folder to write the stage files into.")
    var recipe: String = "Stages"

    @Option(name: .long, help: "The store folder (default: RECIPE/.lineage).")
    var store: String?

    @Flag(name: .long, help: "Replace recipe files that exist with other contents.")
    var force = false

    func run() async throws {
      do {
        // Verified in full before the store is even opened: a refused bundle leaves no trace.
        let bundle = try RecipeBundle(contentsOfFile: file)
        let storePath = store ?? recipe + "/.lineage"
        // Importing a shared bundle into a new folder is the common case: make the folders the lock
        // and the store live in (only now, after the bundle was verified).
        do {
          for folder in [recipe, storePath] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
          }
        } catch {
          Console.error("error: cannot create the folder for the import: \(error.localizedDescription)")
          throw ExitCode.failure
        }
        let lock = try RunLock(storePath: storePath, wait: true) { pid in
          Console.error("waiting for another lineage process\(pid.map { " (pid \($0))" } ?? "") to finish with this store…")
        }
        defer { withExtendedLifetime(lock) {} }
        let opened = try openStore(at: storePath)
        let report = try bundle.install(into: opened, recipeDirectory: recipe, replacingFiles: force)
        Console.out("imported \(report.stages.count) stage\(report.stages.count == 1 ? "" : "s") "
                      + "(\(report.stages.joined(separator: ", "))): \(report.blobsAdded) new blob"
                      + "\(report.blobsAdded == 1 ? "" : "s"), \(report.blobsAlreadyPresent) already present; "
                      + "\(report.filesWritten.count) recipe file\(report.filesWritten.count == 1 ? "" : "s") written to "
                      + "\(recipe), \(report.filesUnchanged.count) unchanged")
      } catch let error as BundleError {
        Console.error("error: \(file): \(error)")
        throw ExitCode.failure
      }
    }
  }
}
