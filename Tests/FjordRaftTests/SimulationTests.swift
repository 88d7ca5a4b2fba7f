import FjordRaft
import FjordSimulation
import XCTest

/// The deterministic simulation under faults: every named invariant holds for every seed,
/// and a deliberately broken shell is caught — proof the invariants can fail.
final class SimulationTests: XCTestCase {
    func testSeedsHoldEveryInvariant() throws {
        var options = Simulation.Options()
        options.faultPhaseMs = 8_000
        var failures: [String] = []
        for voters in [3, 5] {
            options.voters = voters
            options.observers = 1
            for seed in UInt64(1)...40 {
                do { try Simulation(seed: seed, options: options).run() } catch {
                    failures.append("voters \(voters) seed \(seed): \(error)")
                }
            }
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }

    func testBrokenVotePersistenceIsCaught() throws {
        var options = Simulation.Options()
        options.brokenSkipVotePersist = true
        options.voters = 5
        options.crashAfterPersist = 0.5
        options.faultPhaseMs = 5_000
        var caught = 0
        for seed in UInt64(1)...80 {
            do { try Simulation(seed: seed, options: options).run() } catch let v as Simulation.Violation {
                if v.invariant == "VoteDurability" || v.invariant == "ElectionSafety" { caught += 1 }
            }
        }
        XCTAssertGreaterThan(caught, 0, "forgetting votes must be caught by VoteDurability/ElectionSafety")
    }

    /// Snapshots and trimmed logs on every seed: replicas behind a leader's log start catch
    /// up through FetchSnapshot, and every node's state machine agrees offset by offset.
    func testSeedsWithSnapshotsHoldEveryInvariant() throws {
        var options = Simulation.Options()
        options.faultPhaseMs = 8_000
        options.snapshots = true
        options.observers = 2
        var failures: [String] = []
        var installed = 0
        for seed in UInt64(1)...30 {
            let sim = Simulation(seed: seed, options: options)
            do { try sim.run() } catch { failures.append("seed \(seed): \(error)") }
            installed += sim.snapshotsInstalled
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        XCTAssertGreaterThan(installed, 0, "no replica ever needed a snapshot: the faults do not exercise FetchSnapshot")
    }

    func testBrokenSnapshotIsCaught() throws {
        var options = Simulation.Options()
        options.snapshots = true
        options.brokenSnapshotOffByOne = true
        options.faultPhaseMs = 8_000
        var caught = 0
        for seed in UInt64(1)...30 {
            do { try Simulation(seed: seed, options: options).run() } catch let v as Simulation.Violation {
                if v.invariant == "StateMachineSafety" || v.invariant == "SnapshotInstall" || v.invariant == "SnapshotCoversTrimmedLog" { caught += 1 }
            }
        }
        XCTAssertGreaterThan(caught, 0, "a snapshot that claims an unapplied record must be caught")
    }

    /// The real controller on the voters, three brokers, topics and ISR changes under the
    /// same faults: the metadata invariants (leader in ISR, leader unfenced, one leader per
    /// epoch, epochs grow) hold on every node's image, and the cluster heals.
    func testControllerLayerHoldsMetadataInvariants() throws {
        var options = Simulation.Options()
        options.controllers = true
        options.observers = 3
        options.faultPhaseMs = 10_000
        var failures: [String] = []
        var changes = 0
        for seed in UInt64(1)...15 {
            let sim = Simulation(seed: seed, options: options)
            do { try sim.run() } catch { failures.append("seed \(seed): \(error)") }
            changes += sim.metadataRecordCounts["partitionChange"] ?? 0
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        XCTAssertGreaterThan(changes, 15, "the brokers and faults barely changed any partition")
    }

    func testBrokenFencingIsCaught() throws {
        var options = Simulation.Options()
        options.controllers = true
        options.observers = 3
        options.brokenFenceKeepsLeaders = true
        var caught = 0
        for seed in UInt64(1)...10 {
            do { try Simulation(seed: seed, options: options).run() } catch let v as Simulation.Violation {
                if v.invariant == "LeaderIsUnfenced" { caught += 1 }
            }
        }
        XCTAssertGreaterThan(caught, 0, "a fenced broker left leading must be caught")
    }

    func testFailoverElectsAndCommitsQuickly() throws {
        var options = Simulation.Options()
        options.faultFree = true
        var times: [Int64] = []
        for seed in UInt64(1)...30 {
            times.append(try XCTUnwrap(Simulation(seed: seed, options: options).measureFailover(), "seed \(seed)"))
        }
        // Functional bound (not a performance assertion): a new leader commits within the
        // fetch timeout plus a few election rounds of simulated time.
        XCTAssertLessThan(times.max()!, 10_000)
    }
}
