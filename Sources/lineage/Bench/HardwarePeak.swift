import Foundation

/// The float32 peak of this machine's cores: cores × clock × FLOPs per cycle, the denominator of MFU.
///
/// Derived, not measured: the vector width and the FMA units per core come from the CPU's flags in
/// `/proc/cpuinfo`, the cores from its distinct core ids (SMT siblings share their core's FMA units).
/// The clock is the rated maximum from cpufreq (`cpuinfo_max_freq`) when the kernel exposes it; a
/// virtual machine usually does not, and its `cpu MHz` is the nominal (TSC) clock, below the one the
/// cores run at (here 2.60 GHz against 3.6 measured, which put sgemm above such a "peak"), so the
/// clock is then measured with a chain of dependent multiply–adds. `derivation` says which was used.
///
/// FLOPs per cycle per core = float32 lanes × 2 (an FMA is a multiply and an add) × FMA pipes:
/// - width: 512 bits with `avx512f`, 256 with `avx`, else 128 (SSE2, the x86-64 baseline);
/// - FMA pipes (`fmaUnits(…)`): 2 with `fma` — except AMD Zen 1 (family 23), which runs a 256-bit FMA
///   as two 128-bit halves, and Zen 4 (family 25), which runs a 512-bit one as two 256-bit halves: 1 —
///   and 1 (a multiplier and an adder) without `fma`. Intel parts with one 512-bit FMA unit (Xeon
///   Bronze and Silver, some client chips) cannot be told apart by their flags: for them this peak is
///   twice the real one.
struct HardwarePeak: Equatable {
  var cores: Int
  var clockGHz: Double
  var clockSource: ClockSource
  var vectorBits: Int
  var fmaUnits: Int
  /// Why `fmaUnits` has its value, for the derivation line.
  var fmaReason: String

  enum ClockSource: Equatable {
    /// `/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq`: the rated maximum.
    case cpufreqMaximum
    /// Measured on one core, because there is no cpufreq; `reportedGHz` is what `cpu MHz` says.
    case measured(reportedGHz: Double?)
    /// `cpu MHz` in `/proc/cpuinfo`: neither cpufreq nor a measurement was available.
    case cpuinfo
  }

  /// float32 FLOPs one core completes per cycle.
  var flopsPerCycle: Int { vectorBits / 32 * 2 * fmaUnits }

  var gflops: Double { Double(cores) * clockGHz * Double(flopsPerCycle) }

  /// How the peak was obtained, in one line, e.g. `232 GFLOP/s = 2 cores × 3.63 GHz (…) × 32 FLOP/cycle (…)`.
  var derivation: String {
    let clock: String
    switch clockSource {
    case .cpufreqMaximum: clock = "cpufreq cpuinfo_max_freq"
    case .measured(let reported):
      clock = "measured, dependent multiply–adds on one core; no cpufreq"
        + (reported.map { String(format: ", /proc/cpuinfo says %.2f GHz (nominal)", $0) } ?? "")
    case .cpuinfo: clock = "cpu MHz in /proc/cpuinfo"
    }
    let flags = vectorBits == 512 ? "avx512f" : vectorBits == 256 ? "avx" : "no avx"
    return String(format: "%.0f GFLOP/s = %d cores × %.2f GHz (%@) × %d FP32 FLOP/cycle (%@: %d lanes × 2 × %d FMA/cycle, %@)",
                  gflops, cores, clockGHz, clock, flopsPerCycle, flags, vectorBits / 32, fmaUnits, fmaReason)
  }
}

// MARK: - Deriving it from /proc/cpuinfo

extension HardwarePeak {
  /// The peak from the text of `/proc/cpuinfo` (x86 layout), a cpufreq maximum in kHz if there is one,
  /// and a measured clock if there is one (used only without cpufreq); nil when the text names no
  /// processor or no clock at all.
  init?(cpuinfo: String, maxFrequencyKHz: Int?, measuredGHz: Double?) {
    var processors = 0
    var coreIDs = Set<String>()
    var physicalID = "0", flags: Set<Substring> = [], vendor = "", family = -1
    var reportedMHz: Double?
    for line in cpuinfo.split(separator: "\n") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      let key = line[..<colon].trimmingCharacters(in: .whitespaces)
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      switch key {
      case "processor": processors += 1
      case "physical id": physicalID = value
      case "core id": coreIDs.insert(physicalID + "/" + value)
      case "vendor_id": vendor = value
      case "cpu family": family = Int(value) ?? -1
      case "cpu MHz": reportedMHz = reportedMHz ?? Double(value)
      case "flags": if flags.isEmpty { flags = Set(value.split(separator: " ")) }
      default: break
      }
    }
    guard processors > 0 else { return nil }
    cores = coreIDs.isEmpty ? processors : coreIDs.count
    if let maxFrequencyKHz, maxFrequencyKHz > 0 {
      clockGHz = Double(maxFrequencyKHz) / 1e6
      clockSource = .cpufreqMaximum
    } else if let measuredGHz {
      clockGHz = measuredGHz
      clockSource = .measured(reportedGHz: reportedMHz.map { $0 / 1000 })
    } else if let reportedMHz {
      clockGHz = reportedMHz / 1000
      clockSource = .cpuinfo
    } else {
      return nil
    }
    vectorBits = flags.contains("avx512f") ? 512 : flags.contains("avx") ? 256 : 128
    (fmaUnits, fmaReason) = HardwarePeak.fmaUnits(flags: flags, vendor: vendor, family: family, vectorBits: vectorBits)
  }

  /// FMA pipes per core at `vectorBits`, and why.
  static func fmaUnits(flags: Set<Substring>, vendor: String, family: Int, vectorBits: Int) -> (Int, String) {
    guard flags.contains("fma") else { return (1, "no fma: one multiplier and one adder") }
    if vendor == "AuthenticAMD" && family == 23 && vectorBits == 256 {
      return (1, "AMD family 23 (Zen 1/+) splits a 256-bit FMA into two 128-bit halves")
    }
    if vendor == "AuthenticAMD" && family == 25 && vectorBits == 512 {
      return (1, "AMD family 25 (Zen 4) runs a 512-bit FMA as two halves on its two 256-bit pipes")
    }
    if vendor == "GenuineIntel" && vectorBits == 512 {
      return (2, "two 512-bit FMA units assumed, as in Xeon Gold and Platinum; half for parts with one")
    }
    return (2, "two FMA pipes")
  }

  /// This machine's peak: /proc/cpuinfo, cpufreq if present, else a clock measured here (≈ 60 ms).
  static func current() -> HardwarePeak? {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
    let maxKHz = (try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding: .utf8))
      .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    return HardwarePeak(cpuinfo: cpuinfo, maxFrequencyKHz: maxKHz, measuredGHz: maxKHz == nil ? measuredClockGHz() : nil)
  }

  /// The clock of the core this runs on: the fastest of 5 timings of a chain of `x = x·x + c`, where
  /// each step waits for the last (a 64-bit multiply, 3 cycles on x86-64 cores since Nehalem and Zen,
  /// then an add, 1 cycle: 4 cycles a step). Timed in this thread's CPU time, so time the scheduler
  /// gives to other processes does not count. nil off x86-64, where the latencies differ.
  static func measuredClockGHz() -> Double? {
    #if arch(x86_64)
    let steps = 10_000_000
    var best = 0.0
    for round in 0..<5 {
      let start = threadCPUSeconds()
      let x = dependentMultiplyAdds(steps, seed: UInt64(round + 3))
      let seconds = threadCPUSeconds() - start
      if x == 1 { return nil }  // never (x·x + 0x9E37 is 3 or 0 mod 4): uses the result, so the chain runs
      best = max(best, Double(steps * 4) / seconds / 1e9)
    }
    return best
    #else
    return nil
    #endif
  }

  @inline(never)
  static func dependentMultiplyAdds(_ steps: Int, seed: UInt64) -> UInt64 {
    var x = seed
    for _ in 0..<steps { x = x &* x &+ 0x9E37 }  // no closed form: the compiler cannot fold the chain
    return x
  }

  static func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
  }
}
