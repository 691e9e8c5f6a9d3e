/// POSIX ustar archives, read and written in memory: the container of a recipe bundle.
///
/// Just enough of the format for bundles, with no external `tar` process: regular files and
/// directories are written; every entry kind is read and reported (`TarEntry.Kind`), so that a caller
/// can refuse links and devices by name. Names up to 255 bytes use the ustar `prefix` field; longer
/// ones are refused rather than written in a GNU or pax extension. Sizes are octal, so an entry holds
/// at most 8 GiB − 1 bytes. Every header's checksum is verified, and an archive that ends before its
/// end-of-archive marker (two zero blocks) is reported as truncated, never read as shorter.
///
/// Layout of a 512-byte header (offsets in bytes): name 0..<100, mode 100..<108, uid 108..<116,
/// gid 116..<124, size 124..<136, mtime 136..<148, checksum 148..<156, typeflag 156, linkname
/// 157..<257, magic 257..<263 ("ustar\0"), version 263..<265 ("00"), uname, gname, devmajor,
/// devminor, prefix 345..<500. The data follows, padded with zeros to a multiple of 512.
public struct TarEntry: Equatable, Sendable {
  /// What an entry is, from its typeflag.
  public enum Kind: Equatable, Sendable, CustomStringConvertible {
    case regularFile
    case directory
    case symbolicLink(target: String)
    case hardLink(target: String)
    /// Devices, FIFOs, contiguous files, pax and GNU extension headers: the raw typeflag byte.
    case other(typeflag: UInt8)

    public var description: String {
      switch self {
      case .regularFile: return "regular file"
      case .directory: return "directory"
      case .symbolicLink(let target): return "symbolic link to '\(target)'"
      case .hardLink(let target): return "hard link to '\(target)'"
      case .other(let flag):
        let names: [UInt8: String] = [
          UInt8(ascii: "3"): "character device", UInt8(ascii: "4"): "block device", UInt8(ascii: "6"): "FIFO",
          UInt8(ascii: "7"): "contiguous file", UInt8(ascii: "x"): "pax extended header",
          UInt8(ascii: "g"): "pax global header", UInt8(ascii: "L"): "GNU long name", UInt8(ascii: "K"): "GNU long link",
        ]
        return names[flag] ?? "entry of type '\(String(decoding: [flag], as: UTF8.self))'"
      }
    }
  }

  /// The entry's name as stored (`prefix/name`), without a directory's trailing `/`.
  public var path: String
  public var kind: Kind
  /// The data of a regular file; empty for other kinds.
  public var contents: [UInt8]

  public init(path: String, kind: Kind, contents: [UInt8] = []) {
    self.path = path
    self.kind = kind
    self.contents = contents
  }
}

/// Why an archive could not be read or written. Offsets are the byte offsets of the header concerned.
public enum TarError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The archive ends inside a header or inside an entry's data (`entry` names the entry when known).
  case truncated(offset: Int, entry: String?)
  /// The archive ends after a complete entry, without its end-of-archive marker.
  case missingEndMarker(offset: Int)
  /// A header's bytes do not add up to its checksum field.
  case badChecksum(offset: Int, stored: Int, computed: Int)
  /// A header without the `ustar` magic.
  case notUstar(offset: Int)
  /// A numeric field that is not octal (base-256 sizes, over 8 GiB, are not supported).
  case badNumber(offset: Int, field: String)
  /// A name that is empty or not UTF-8.
  case badName(offset: Int)
  /// Non-zero bytes after the end-of-archive marker.
  case dataAfterEnd(offset: Int)
  /// Writing: a name that does not fit the ustar name and prefix fields (255 bytes, split at a `/`).
  case nameTooLong(String)
  /// Writing: an empty name or one with a NUL byte.
  case invalidName(String)
  /// Writing: more than the 8 GiB − 1 bytes an octal size field holds.
  case fileTooLarge(path: String, size: Int)

  public var description: String {
    switch self {
    case .truncated(let offset, let entry?):
      return "the archive is truncated: entry '\(entry)' (header at byte \(offset)) ends past the end of the file"
    case .truncated(let offset, nil):
      return "the archive is truncated: it ends inside the header at byte \(offset)"
    case .missingEndMarker(let offset):
      return "the archive is truncated: it ends at byte \(offset) without its end-of-archive marker"
    case .badChecksum(let offset, let stored, let computed):
      return "the header at byte \(offset) is damaged: its checksum says \(stored), its bytes add up to \(computed)"
    case .notUstar(let offset): return "the header at byte \(offset) is not a POSIX ustar header"
    case .badNumber(let offset, let field):
      return "the header at byte \(offset) has an unreadable \(field) field (only octal numbers are supported)"
    case .badName(let offset): return "the header at byte \(offset) has an empty name or one that is not UTF-8"
    case .dataAfterEnd(let offset): return "the archive has data after its end-of-archive marker, at byte \(offset)"
    case .nameTooLong(let name):
      return "'\(name)' is too long for a ustar archive (at most 100 bytes after the last '/' that leaves 155 before it)"
    case .invalidName(let name): return "'\(name)' cannot be an archive entry name"
    case .fileTooLarge(let path, let size): return "'\(path)' has \(size) bytes; a ustar entry holds at most 8 GiB − 1"
    }
  }
}

// MARK: - Writing

/// Builds a ustar archive in memory, deterministically: every header has mtime 0, uid and gid 0, empty
/// user and group names, mode 0644 (0755 for directories), so the same entries give the same bytes.
public struct TarWriter: Sendable {
  private var bytes: [UInt8] = []

  public init() {}

  /// Appends a regular file.
  public mutating func appendFile(_ path: String, contents: [UInt8]) throws(TarError) {
    try append(TarEntry(path: path, kind: .regularFile, contents: contents))
  }

  /// Appends any entry; links and other kinds are written with their typeflag (tests craft them).
  public mutating func append(_ entry: TarEntry) throws(TarError) {
    let typeflag: UInt8
    var linkName = ""
    var name = entry.path
    switch entry.kind {
    case .regularFile: typeflag = UInt8(ascii: "0")
    case .directory:
      typeflag = UInt8(ascii: "5")
      if !name.hasSuffix("/") { name += "/" }
    case .symbolicLink(let target):
      typeflag = UInt8(ascii: "2")
      linkName = target
    case .hardLink(let target):
      typeflag = UInt8(ascii: "1")
      linkName = target
    case .other(let flag): typeflag = flag
    }
    let data = entry.kind == .regularFile ? entry.contents : []
    guard data.count <= TarFormat.maxSize else { throw .fileTooLarge(path: entry.path, size: data.count) }
    let (prefix, shortName) = try TarFormat.split(name)
    let link = Array(linkName.utf8)
    guard link.count <= 100, !link.contains(0) else { throw .nameTooLong(linkName) }

    var header = [UInt8](repeating: 0, count: TarFormat.block)
    header.replaceSubrange(0..<shortName.count, with: shortName)
    TarFormat.putOctal(entry.kind == .directory ? 0o755 : 0o644, into: &header, at: 100, width: 8)
    TarFormat.putOctal(0, into: &header, at: 108, width: 8)           // uid
    TarFormat.putOctal(0, into: &header, at: 116, width: 8)           // gid
    TarFormat.putOctal(data.count, into: &header, at: 124, width: 12)
    TarFormat.putOctal(0, into: &header, at: 136, width: 12)          // mtime
    header[156] = typeflag
    header.replaceSubrange(157..<(157 + link.count), with: link)
    header.replaceSubrange(257..<265, with: Array("ustar\u{0}00".utf8))
    TarFormat.putOctal(0, into: &header, at: 329, width: 8)           // devmajor
    TarFormat.putOctal(0, into: &header, at: 337, width: 8)           // devminor
    header.replaceSubrange(345..<(345 + prefix.count), with: prefix)
    // Checksum: six octal digits, NUL, space — computed with the field itself read as eight spaces.
    let sum = TarFormat.checksum(header[...]).unsigned
    TarFormat.putOctal(sum, into: &header, at: 148, width: 7)
    header[155] = UInt8(ascii: " ")

    bytes += header
    bytes += data
    bytes += [UInt8](repeating: 0, count: TarFormat.padding(data.count))
  }

  /// The archive: the entries appended so far and the end-of-archive marker (two zero blocks).
  public func finished() -> [UInt8] {
    bytes + [UInt8](repeating: 0, count: 2 * TarFormat.block)
  }
}

// MARK: - Reading

/// Reads a ustar archive held in memory.
public enum TarReader {
  /// Every entry of `archive`, in order.
  ///
  /// Accepts POSIX ustar and GNU (`ustar  `) magic. Pax and GNU extension headers are returned as
  /// `.other` entries, not interpreted.
  ///
  /// - Throws: `TarError` for a truncated archive, a header whose checksum is wrong, a header that is
  ///   not ustar, an unreadable size, or non-zero bytes after the end-of-archive marker.
  public static func entries(of archive: [UInt8]) throws(TarError) -> [TarEntry] {
    var entries: [TarEntry] = []
    var offset = 0
    while true {
      guard offset < archive.count else { throw .missingEndMarker(offset: offset) }
      guard offset + TarFormat.block <= archive.count else { throw .truncated(offset: offset, entry: nil) }
      let header = archive[offset..<(offset + TarFormat.block)]
      if header.allSatisfy({ $0 == 0 }) {
        try checkEnd(archive, at: offset)
        return entries
      }
      let entry = try readHeader(header, at: offset)
      let dataStart = offset + TarFormat.block
      let dataEnd = dataStart + entry.size
      guard dataEnd + TarFormat.padding(entry.size) <= archive.count else {
        throw .truncated(offset: offset, entry: entry.path)
      }
      entries.append(TarEntry(path: entry.path, kind: entry.kind,
                              contents: entry.kind == .regularFile ? Array(archive[dataStart..<dataEnd]) : []))
      offset = dataEnd + TarFormat.padding(entry.size)
    }
  }

  /// The end-of-archive marker is two zero blocks; anything after them must be zero padding (tar
  /// writers round archives up to their record size).
  private static func checkEnd(_ archive: [UInt8], at offset: Int) throws(TarError) {
    let second = offset + TarFormat.block
    guard second + TarFormat.block <= archive.count else { throw .missingEndMarker(offset: offset) }
    if let stray = archive[second...].firstIndex(where: { $0 != 0 }) {
      throw .dataAfterEnd(offset: stray)
    }
  }

  private static func readHeader(_ header: ArraySlice<UInt8>, at offset: Int) throws(TarError)
    -> (path: String, kind: TarEntry.Kind, size: Int) {
    let base = header.startIndex
    func field(_ range: Range<Int>) -> ArraySlice<UInt8> { header[(base + range.lowerBound)..<(base + range.upperBound)] }

    guard let stored = TarFormat.octal(field(148..<156)) else { throw .badNumber(offset: offset, field: "checksum") }
    let sums = TarFormat.checksum(header)
    guard stored == sums.unsigned || stored == sums.signed else {
      throw .badChecksum(offset: offset, stored: stored, computed: sums.unsigned)
    }
    guard field(257..<262).elementsEqual("ustar".utf8) else { throw .notUstar(offset: offset) }
    guard let size = TarFormat.octal(field(124..<136)) else { throw .badNumber(offset: offset, field: "size") }

    guard let name = TarFormat.string(field(0..<100)), let prefix = TarFormat.string(field(345..<500)) else {
      throw .badName(offset: offset)
    }
    var path = prefix.isEmpty ? name : prefix + "/" + name
    let typeflag = header[base + 156]
    let kind: TarEntry.Kind
    switch typeflag {
    case 0, UInt8(ascii: "0"): kind = .regularFile
    case UInt8(ascii: "5"): kind = .directory
    case UInt8(ascii: "1"), UInt8(ascii: "2"):
      guard let target = TarFormat.string(field(157..<257)) else { throw .badName(offset: offset) }
      kind = typeflag == UInt8(ascii: "1") ? .hardLink(target: target) : .symbolicLink(target: target)
    default: kind = .other(typeflag: typeflag)
    }
    if kind == .directory, path.count > 1, path.hasSuffix("/") { path.removeLast() }
    guard !path.isEmpty else { throw .badName(offset: offset) }
    return (path, kind, size)
  }
}

// MARK: - Fields

/// The ustar header's field encodings, shared by the reader and the writer.
enum TarFormat {
  static let block = 512
  /// The largest size eleven octal digits hold.
  static let maxSize = (1 << 33) - 1

  /// Zeros after `size` bytes of data, up to the next block boundary.
  static func padding(_ size: Int) -> Int { (block - size % block) % block }

  /// Splits a name into the ustar `prefix` and `name` fields: the whole name when it fits in 100
  /// bytes, else at the last `/` that leaves at most 100 bytes after it and 155 before it.
  static func split(_ path: String) throws(TarError) -> (prefix: [UInt8], name: [UInt8]) {
    let bytes = Array(path.utf8)
    guard !bytes.isEmpty, !bytes.contains(0) else { throw .invalidName(path) }
    if bytes.count <= 100 { return ([], bytes) }
    let slash = UInt8(ascii: "/")
    for i in stride(from: min(bytes.count - 1, 155), through: 1, by: -1) where bytes[i] == slash {
      let name = Array(bytes[(i + 1)...])
      guard !name.isEmpty, name.count <= 100 else { break }
      return (Array(bytes[..<i]), name)
    }
    throw .nameTooLong(path)
  }

  /// Writes `value` as zero-padded octal digits followed by a NUL, `width` bytes in all.
  static func putOctal(_ value: Int, into header: inout [UInt8], at start: Int, width: Int) {
    var digits = Array(String(value, radix: 8).utf8)
    precondition(digits.count <= width - 1, "\(value) does not fit a \(width)-byte octal field")
    digits = [UInt8](repeating: UInt8(ascii: "0"), count: width - 1 - digits.count) + digits
    header.replaceSubrange(start..<(start + width - 1), with: digits)
    header[start + width - 1] = 0
  }

  /// An octal field: optional leading spaces, digits, then NUL or spaces. Nil for anything else,
  /// including the base-256 form (high bit set) some writers use for sizes over 8 GiB.
  static func octal(_ field: ArraySlice<UInt8>) -> Int? {
    var value = 0
    var digits = 0
    var ended = false
    for byte in field {
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "7") where !ended:
        value = value * 8 + Int(byte - UInt8(ascii: "0"))
        digits += 1
        guard digits <= 12 else { return nil }
      case UInt8(ascii: " ") where digits == 0 && !ended: continue
      case 0, UInt8(ascii: " "): ended = true
      default: return nil
      }
    }
    return digits > 0 ? value : nil
  }

  /// A NUL-terminated (or full-width) UTF-8 field; nil when not UTF-8.
  static func string(_ field: ArraySlice<UInt8>) -> String? {
    let end = field.firstIndex(of: 0) ?? field.endIndex
    let bytes = field[field.startIndex..<end]
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil  // invalid UTF-8 decodes to U+FFFD, which differs
  }

  /// The header's byte sums with the checksum field counted as eight spaces: unsigned (POSIX) and
  /// signed (what some historic writers computed).
  static func checksum(_ header: ArraySlice<UInt8>) -> (unsigned: Int, signed: Int) {
    var unsigned = 0, signed = 0
    for (i, byte) in header.enumerated() {
      let b = (148..<156).contains(i) ? UInt8(ascii: " ") : byte
      unsigned += Int(b)
      signed += Int(Int8(bitPattern: b))
    }
    return (unsigned, signed)
  }
}
