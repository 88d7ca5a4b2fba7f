import ArgumentParser
import FjordSimulation

/// Runs the deterministic KRaft simulation over many seeds.
@main
struct FjordSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fjord-sim",
        abstract: "Deterministic whole-cluster simulation of Fjord's KRaft core, one seed per run."
    )

    @Option(help: "How many seeds to run.") var seeds = 100
    @Option(name: .customLong("first-seed"), help: "The first seed.") var firstSeed: UInt64 = 1
    @Option(help: "Voters (3 or 5).") var voters = 3
    @Option(help: "Observers (brokers fetching the metadata log).") var observers = 1
    @Option(help: "Simulated ms of the fault phase.") var faultMs: Int64 = 20_000
    @Flag(help: "Broken on purpose: votes are not persisted (the invariants must catch it).") var brokenSkipVotePersist = false
    @Flag(help: "Measure leader failover time instead (p50/p99 over the seeds).") var failover = false
    @Flag(help: "Print a summary line per seed.") var verbose = false
    @Option(help: "Chance of a crash right after persisting election state (default: drawn per seed).") var crashAfterPersist: Double?
    @Flag(help: "Run the metadata layer on top: the real controller on the voters, observers as brokers (register, heartbeat, ISR changes), topic creation; check the metadata invariants.") var controllers = false
    @Flag(help: "Broken on purpose (with --controllers): fencing a broker keeps its leaderships (the invariants must catch it).") var brokenFenceKeepsLeaders = false

    func run() throws {
        var options = Simulation.Options()
        options.voters = voters
        options.observers = observers
        options.faultPhaseMs = faultMs
        options.brokenSkipVotePersist = brokenSkipVotePersist
        options.crashAfterPersist = crashAfterPersist
        options.controllers = controllers
        options.brokenFenceKeepsLeaders = brokenFenceKeepsLeaders
        if failover {
            options.faultFree = true
            var times: [Int64] = []
            var stuck = 0
            for s in firstSeed..<(firstSeed + UInt64(seeds)) {
                let sim = Simulation(seed: s, options: options)
                if let t = try sim.measureFailover() { times.append(t) } else { stuck += 1 }
                if verbose { print("seed \(s): \(sim.summary)") }
            }
            times.sort()
            func pct(_ p: Double) -> Int64 { times.isEmpty ? -1 : times[min(times.count - 1, Int(Double(times.count) * p))] }
            print("failover (kill the leader → a new leader commits), \(times.count) seeds, \(voters) voters, default timeouts:")
            print("  p50 \(pct(0.5)) ms, p99 \(pct(0.99)) ms, max \(times.last ?? -1) ms; no new leader within 30 s: \(stuck)")
            print("\(times.count) passed, \(stuck) failed")
            if stuck > 0 { throw ExitCode(1) }
            return
        }
        var failed = 0
        for s in firstSeed..<(firstSeed + UInt64(seeds)) {
            let sim = Simulation(seed: s, options: options)
            do {
                try sim.run()
                if verbose { print("seed \(s): \(sim.summary)") }
            } catch {
                if verbose { print("seed \(s): \(sim.summary)") }
                failed += 1
                var cmd = "fjord-sim --seeds 1 --first-seed \(s) --voters \(voters) --observers \(observers) --fault-ms \(faultMs)"
                if brokenSkipVotePersist { cmd += " --broken-skip-vote-persist" }
                if let c = crashAfterPersist { cmd += " --crash-after-persist \(c)" }
                if controllers { cmd += " --controllers" }
                if brokenFenceKeepsLeaders { cmd += " --broken-fence-keeps-leaders" }
                print("seed \(s) FAILED: \(error)  [reproduce: \(cmd)]")
            }
        }
        print("\(seeds - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
