import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// Options `push` and `pull` share: which stages, and where the remote is.
struct RemoteOptions: ParsableArguments {
  @Argument(help: "Stages or matrix groups (default: every stage of lineage.lock).")
  var stages: [String] = []

  @Option(name: .long, help: "The remote cache, http://HOST:PORT/PATH (default: remote: in recipe.yaml).")
  var remote: String?

  /// The remote, the store and the lockfile's results of the chosen stages.
  func resolve(_ options: RecipeOptions) throws -> (RemoteCache, Store, [RemoteSync.LockedResult]) {
    let recipe = try options.loadRecipe()
    let lock = try options.loadLockfile(recipe)
    guard let url = remote ?? recipe.remote else {
      Console.error("error: no remote: give --remote http://HOST:PORT/PATH or set remote: in recipe.yaml")
      throw ExitCode.failure
    }
    let cache: RemoteCache
    do { cache = try RemoteCache(url: url) } catch {
      Console.error("error: \(error)")
      throw ExitCode.failure
    }
    let names: [String]
    do { names = stages.isEmpty ? lock.stages.keys.sorted() : try recipe.resolveTargets(stages) } catch {
      throw ExitCode(Console.report(error))
    }
    let results = names.compactMap { name in
      lock.stages[name].map { RemoteSync.LockedResult(stage: name, key: $0.key, outputs: $0.outputs) }
    }
    guard !results.isEmpty else {
      Console.error("error: lineage.lock records none of these stages; run them first")
      throw ExitCode.failure
    }
    return (cache, try options.openStore(), results)
  }
}

/// `lineage push`: upload the lockfile's results to a remote cache.
struct Push: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "push", 
    abstract: "Upload results (action records and their blobs) to a remote cache; only what it lacks.")

  @OptionGroup var options: RecipeOptions
  @OptionGroup var remote: RemoteOptions

  func run() async throws {
    let (cache, store, results) = try remote.resolve(options)
    do {
      let r = try await RemoteSync.push(results.map(\.key), from: store, to: cache)
      Console.error("pushed \(r.recordsSent) result\(r.recordsSent == 1 ? "" : "s") and \(r.blobsSent) blob\(r.blobsSent == 1 ? "" : "s") "
                    + "(\(byteCount(r.bytes))); the remote already had \(r.recordsSkipped) and \(r.blobsSkipped)")
      if !r.missing.isEmpty {
        Console.error("not in this store (run them first): \(r.missing.joined(separator: ", "))")
        throw ExitCode.failure
      }
    } catch let error as RemoteError {
      Console.error("error: \(error)")
      throw ExitCode.failure
    }
  }
}

/// `lineage pull`: download results from a remote cache, so that `run` restores them.
struct Pull: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "pull", 
    abstract: "Download the lockfile's results from a remote cache (every hash verified) so that run restores them.")

  @OptionGroup var options: RecipeOptions
  @OptionGroup var remote: RemoteOptions

  @Flag(name: .long, help: "Fail at once if another run holds the store, instead of waiting.")
  var noWait = false

  func run() async throws {
    let lock = try options.lockStore(noWait: noWait)
    defer { withExtendedLifetime(lock) {} }
    let (cache, store, results) = try remote.resolve(options)
    do {
      let r = try await RemoteSync.pull(results, into: store, from: cache)
      Console.error("pulled \(r.recordsReceived) result\(r.recordsReceived == 1 ? "" : "s") and \(r.blobsReceived) blob\(r.blobsReceived == 1 ? "" : "s") (\(byteCount(r.bytes)))"
                    + (r.missing.isEmpty ? "" : "; the remote lacks \(r.missing.count)"))
    } catch let error as RemoteError {
      Console.error("error: \(error)")
      throw ExitCode.failure
    }
  }
}
