import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage worker`: one MPI rank of a stage that runs on several (`ranks: N`). The executor starts
/// it through `mpirun`; it is not meant to be run by hand.
struct Worker: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "worker", 
    abstract: "Run one MPI rank of a stage (started by `lineage run` through mpirun).", shouldDisplay: false)

  @OptionGroup var options: RecipeOptions

  @Option(name: .long, help: "The job file the executor wrote (default: the job in LINEAGE_JOB).")
  var job: String?

  @Option(name: .long, help: "Where rank 0 writes the result.")
  var result: String

  func run() throws {
    Allocator.keepFreedMemory()  // as `lineage run` does for training in its own process
    let stop = StopSignal()
    // The executor asks a stage to stop with SIGUSR1 (mpirun passes it to every rank): the ranks agree
    // on a step, rank 0 saves a checkpoint, and the stage ends as interrupted. Set before MPI_Init, which
    // can take seconds, so that an early stop does not kill the rank.
    signal(SIGUSR1, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: DispatchQueue(label: "lineage.worker.signals"))
    source.setEventHandler { stop.stop() }
    source.resume()
    let group = try MPIProcessGroup()
    let status: Int32
    do {
      let environment = ProcessInfo.processInfo.environment
      // Rank 0 holds the store and writes the result where `lineage run` reads it: on its machine.
      if group.rank == 0, let launcher = environment["LINEAGE_LAUNCH_HOST"], !launcher.isEmpty,
         launcher != ProcessInfo.processInfo.hostName {
        throw ValidationError("rank 0 runs on \(ProcessInfo.processInfo.hostName), not on \(launcher) where `lineage run` started: list \(launcher) first in the host file")
      }
      let bytes: Data
      if let job {
        bytes = try Data(contentsOf: URL(fileURLWithPath: job))
      } else if let encoded = environment["LINEAGE_JOB"], let decoded = Data(base64Encoded: encoded) {
        bytes = decoded
      } else {
        throw ValidationError("no job: give --job FILE or LINEAGE_JOB (lineage worker is started by lineage run)")
      }
      let jobValue = try JSONDecoder().decode(WorkerJob.self, from: bytes)
      var recipeOptions = options
      recipeOptions.overrides = jobValue.overrides
      let recipe = try recipeOptions.loadRecipe()
      // Rank 0 alone opens the store: the others, perhaps on other hosts, get inputs and checkpoints from it.
      let store = group.rank == 0 ? try options.openStore() : nil
      status = StageWorker.run(recipe: recipe, store: store, job: jobValue, group: group, resultPath: result, stop: stop)
    } catch {
      FileHandle.standardError.write(Data("lineage worker (rank \(group.rank)): \(error)\n".utf8))
      group.abort(status: StageWorker.failed)
      throw ExitCode(StageWorker.failed)
    }
    source.cancel()
    if status == StageWorker.failed && group.size > 1 {
      // The other ranks may be waiting on this one in a collective call: end them all. Rank 0 has written
      // the result; the others give it a moment to, when they failed the same way at the same time.
      if group.rank != 0 { Thread.sleep(forTimeInterval: 3) }
      group.abort(status: status)
    }
    group.finalize()
    if status != 0 { throw ExitCode(status) }
  }
}
