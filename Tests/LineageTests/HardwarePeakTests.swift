import Testing
@testable import lineage

/// The hardware peak derived from `/proc/cpuinfo` texts, against values computed by hand.
@Suite struct HardwarePeakTests {
  /// Two processors as this project's machine reports them (abridged): an AMD EPYC, family 25 (Zen 4),
  /// AVX-512, two cores without SMT, `cpu MHz` the nominal 2.6 GHz.
  static let zen4 = """
    processor\t: 0
    vendor_id\t: AuthenticAMD
    cpu family\t: 25
    model name\t: AMD EPYC
    cpu MHz\t\t: 2596.138
    physical id\t: 0
    siblings\t: 2
    core id\t\t: 0
    cpu cores\t: 2
    flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl

    processor\t: 1
    vendor_id\t: AuthenticAMD
    cpu family\t: 25
    model name\t: AMD EPYC
    cpu MHz\t\t: 2596.138
    physical id\t: 0
    siblings\t: 2
    core id\t\t: 1
    cpu cores\t: 2
    flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl
    """

  /// An Intel CPU with SMT: 4 processors on 2 cores, AVX2 and FMA, no AVX-512.
  static let intelSMT = (0..<4).map { i in
    """
    processor\t: \(i)
    vendor_id\t: GenuineIntel
    cpu family\t: 6
    cpu MHz\t\t: 3000.000
    physical id\t: 0
    core id\t\t: \(i / 2)
    flags\t\t: fpu sse sse2 fma avx avx2

    """
  }.joined()

  static func cpu(vendor: String, family: Int, flags: String) -> String {
    "processor\t: 0\nvendor_id\t: \(vendor)\ncpu family\t: \(family)\ncpu MHz\t\t: 2000.000\ncore id\t\t: 0\nflags\t\t: \(flags)\n"
  }

  @Test func zen4WithoutCpufreqUsesTheMeasuredClock() throws {
    let peak = try #require(HardwarePeak(cpuinfo: Self.zen4, maxFrequencyKHz: nil, measuredGHz: 3.6))
    #expect(peak.cores == 2)
    #expect(peak.vectorBits == 512)
    #expect(peak.fmaUnits == 1)             // a 512-bit FMA is two halves on Zen 4's two 256-bit pipes
    #expect(peak.flopsPerCycle == 32)       // 16 lanes × 2 × 1
    #expect(abs(peak.gflops - 230.4) < 1e-9)  // 2 × 3.6 × 32
    #expect(peak.clockSource == .measured(reportedGHz: 2.596138))
    #expect(peak.derivation.hasPrefix("230 GFLOP/s = 2 cores × 3.60 GHz (measured"))
    #expect(peak.derivation.contains("/proc/cpuinfo says 2.60 GHz (nominal)"))
    #expect(peak.derivation.contains("32 FP32 FLOP/cycle (avx512f: 16 lanes × 2 × 1 FMA/cycle"))
  }

  @Test func cpufreqMaximumComesFirst() throws {
    let peak = try #require(HardwarePeak(cpuinfo: Self.zen4, maxFrequencyKHz: 3_700_000, measuredGHz: 3.6))
    #expect(peak.clockSource == .cpufreqMaximum)
    #expect(abs(peak.gflops - 236.8) < 1e-9)  // 2 × 3.7 × 32
    #expect(peak.derivation.contains("3.70 GHz (cpufreq cpuinfo_max_freq)"))
  }

  @Test func smtSiblingsShareTheirCore() throws {
    let peak = try #require(HardwarePeak(cpuinfo: Self.intelSMT, maxFrequencyKHz: nil, measuredGHz: nil))
    #expect(peak.cores == 2)                // 4 processors, core ids 0 and 1
    #expect(peak.clockSource == .cpuinfo)
    #expect(peak.flopsPerCycle == 32)       // 8 lanes × 2 × 2 FMA pipes
    #expect(abs(peak.gflops - 192) < 1e-9)  // 2 × 3.0 × 32
  }

  @Test(arguments: [
    ("AuthenticAMD", 23, "sse2 avx avx2 fma", 16),             // Zen 1: 8 lanes × 2 × 1 (256-bit FMA in halves)
    ("AuthenticAMD", 25, "sse2 avx avx2 fma", 32),             // Zen 3: 8 × 2 × 2
    ("AuthenticAMD", 26, "sse2 avx avx2 fma avx512f", 64),     // Zen 5: 16 × 2 × 2
    ("GenuineIntel", 6, "sse2 avx avx2 fma avx512f", 64),      // Xeon Gold/Platinum: 16 × 2 × 2
    ("GenuineIntel", 6, "sse2 avx", 16),                       // Sandy Bridge: 8 × (1 mul + 1 add)
    ("GenuineIntel", 6, "sse2", 8),                            // SSE2 only: 4 × (1 mul + 1 add)
  ])
  func flopsPerCycleFollowTheFlags(vendor: String, family: Int, flags: String, expected: Int) throws {
    let peak = try #require(HardwarePeak(cpuinfo: Self.cpu(vendor: vendor, family: family, flags: flags),
                                         maxFrequencyKHz: nil, measuredGHz: nil))
    #expect(peak.flopsPerCycle == expected)
    #expect(abs(peak.gflops - 2.0 * Double(expected)) < 1e-9)  // 1 core × 2.0 GHz
  }

  @Test func noProcessorOrNoClockGivesNoPeak() {
    #expect(HardwarePeak(cpuinfo: "", maxFrequencyKHz: nil, measuredGHz: 3) == nil)
    #expect(HardwarePeak(cpuinfo: "processor\t: 0\nflags\t: fma avx\n", maxFrequencyKHz: nil, measuredGHz: nil) == nil)
  }

  #if arch(x86_64)
  /// The measured clock is a plausible one (no timing target: the machine may be loaded).
  @Test func measuredClockIsPlausible() throws {
    let ghz = try #require(HardwarePeak.measuredClockGHz())
    #expect(ghz > 0.5 && ghz < 7, "\(ghz) GHz")
  }
  #endif
}
