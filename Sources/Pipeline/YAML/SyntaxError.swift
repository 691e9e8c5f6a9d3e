/// Turns libyaml's terse errors ("did not find expected key", "mapping values are not allowed in
/// this context") into messages in a recipe author's terms, placed where the fix goes.
///
/// libyaml reports where it noticed a problem, which is often not where the mistake is: an unclosed
/// quote is noticed at the end of the file, a missing ':' on the next line. Each rule below looks at
/// the text around both of libyaml's marks (the problem and its context) to name the likely mistake;
/// anything unrecognised keeps libyaml's words and places.
struct SyntaxError {
  let file: String
  let bytes: [UInt8]
  /// The text's lines as unicode scalars, without their line break (`\n` or `\r\n`).
  let lines: [[Unicode.Scalar]]

  init(file: String, bytes: [UInt8]) {
    self.file = file
    self.bytes = bytes
    lines = SourceText.lines(of: bytes).map { Array($0.unicodeScalars) }
  }

  /// A 0-based libyaml mark.
  struct Mark {
    var line: Int
    var column: Int
  }

  // MARK: - Reader errors: bytes that are not text

  /// libyaml's reader refused a byte at `offset`: invalid UTF-8, or a control character.
  func readerError(problem: String, offset: Int) -> YAMLError {
    if let bad = SyntaxError.firstInvalidUTF8(in: bytes) {
      return YAMLError("invalid UTF-8 byte \(SyntaxError.hex(bytes[bad])); save the file as UTF-8",
                       at: locationOfByte(bad))
    }
    let place = locationOfByte(offset)
    if problem.contains("control characters"), let c = scalar(at: place) {
      let name = c.value == 0 ? " (NUL)" : ""
      return YAMLError("control character \(SyntaxError.codePoint(c))\(name) is not allowed in a YAML file",
                       at: place)
    }
    return YAMLError(problem, at: place)
  }

  /// The offset of the first byte that does not start a valid UTF-8 sequence (overlong forms and
  /// surrogates included), or nil.
  static func firstInvalidUTF8(in bytes: [UInt8]) -> Int? {
    var i = 0
    while i < bytes.count {
      let b = bytes[i]
      let length: Int
      var low: UInt8 = 0x80, high: UInt8 = 0xBF   // allowed range of the second byte
      switch b {
      case 0x00...0x7F: i += 1; continue
      case 0xC2...0xDF: length = 2
      case 0xE0: length = 3; low = 0xA0
      case 0xED: length = 3; high = 0x9F
      case 0xE1...0xEF: length = 3
      case 0xF0: length = 4; low = 0x90
      case 0xF4: length = 4; high = 0x8F
      case 0xF1...0xF3: length = 4
      default: return i
      }
      guard i + length <= bytes.count, (low...high).contains(bytes[i + 1]) else { return i }
      for k in 2..<length where !(0x80...0xBF).contains(bytes[i + k]) { return i }
      i += length
    }
    return nil
  }

  // MARK: - Scanner and parser errors

  func syntaxError(problem: String, at problemMark: Mark, context: String?, contextMark: Mark) -> YAMLError {
    let place = clamped(location(problemMark))
    let opener = location(contextMark)
    if let mark = strayByteOrderMark() {
      return YAMLError("invisible byte order mark (U+FEFF) inside the file; delete it", at: mark)
    }
    if problem.contains("tab character") || (problem.contains("cannot start any token") && scalar(at: place) == "\t") {
      return YAMLError("tab characters are not allowed for indentation; use spaces", at: place)
    }
    let context = context ?? ""
    if context.contains("quoted scalar"), problem.contains("end of stream"), let quote = scalar(at: opener) {
      return YAMLError("unterminated string: this \(quote) has no closing \(quote)", at: opener)
    }
    if problem.contains("unknown escape character") {
      let escape = scalar(at: SourceLocation(file: file, line: place.line, column: place.column + 1)).map { "'\\\($0)' " } ?? ""
      return YAMLError("unknown escape \(escape)in a double-quoted string; write '\\\\' for a backslash, or use single quotes",
                       at: place)
    }
    if problem.contains("could not find expected ':'"), context.contains("simple key") {
      return YAMLError("missing ':' in '\(SyntaxError.trimmed(text(of: opener.line), dropping: [" "]))' "
                         + "(a key and its value are written 'key: value')", at: opener)
    }
    if problem.contains("mapping values are not allowed") {
      return colonInValue(at: place)
    }
    if problem.contains("block sequence entries are not allowed") {
      return YAMLError("a list cannot start on the line of its key; put each '- item' on a line of its own, indented",
                       at: place)
    }
    if problem.contains("did not find expected ',' or"), context.contains("flow") {
      return unclosedFlow(at: place, opener: opener, isMapping: context.contains("mapping"))
    }
    if problem.contains("did not find expected key") || problem.contains("did not find expected '-' indicator") {
      if let error = misplacedLine(at: place, opener: opener, inList: problem.contains("'-'")) { return error }
    }
    if problem.contains("cannot start any token"), let c = scalar(at: place) {
      return YAMLError("'\(c)' cannot start a plain value; quote the value", at: place)
    }
    var message = problem
    if !context.isEmpty {
      message += " (\(context) at line \(contextMark.line + 1), column \(contextMark.column + 1))"
    }
    return YAMLError(message, at: place)
  }

  /// "mapping values are not allowed in this context": a ':' where no key may start. Either a plain
  /// value holds ': ', or the line continues the value of the line above (a missing ':' there, or
  /// a key indented too deep).
  private func colonInValue(at place: SourceLocation) -> YAMLError {
    let line = text(of: place.line)
    let before = line.prefix(max(0, place.column - 1))
    if let i = before.indices.first(where: { before[$0] == ":" && $0 + 1 < before.count && before[$0 + 1] == " " }) {
      let key = SyntaxError.trimmed(before[..<i], dropping: [" ", "-"])
      let value = SyntaxError.trimmed(line[(i + 2)...], dropping: [" "])
      let quoted = value.contains("\"") ? "'\(value)'" : "\"\(value)\""
      return YAMLError("a plain value cannot contain ': '; quote it: \(key): \(quoted)", at: place)
    }
    let key = SyntaxError.trimmed(before, dropping: [" ", "-"])
    let here = SourceLocation(file: file, line: place.line, column: firstNonBlank(of: place.line))
    guard let above = previousContentLine(before: place.line) else {
      return YAMLError("unexpected ':' after '\(key)'", at: place)
    }
    let aboveText = SyntaxError.trimmed(text(of: above), dropping: [" "])
    if !aboveText.contains(":") && !aboveText.hasPrefix("-") {
      return YAMLError("missing ':' in '\(aboveText)' (a key and its value are written 'key: value')",
                       at: SourceLocation(file: file, line: above, column: firstNonBlank(of: above)))
    }
    let aboveKey = SyntaxError.trimmed(text(of: above).prefix { $0 != ":" }, dropping: [" ", "-"])
    return YAMLError("bad indentation: '\(key)' is indented deeper than '\(aboveKey)' on line \(above), "
                       + "which already has a value; line up the keys of one map", at: here)
  }

  static func trimmed(_ scalars: some BidirectionalCollection<Unicode.Scalar>, dropping: Set<Unicode.Scalar>) -> String {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars.drop { dropping.contains($0) }.reversed().drop { dropping.contains($0) }.reversed())
    return String(view)
  }

  /// "did not find expected ',' or '}'": a flow collection not closed, a missing ',', or an
  /// unquoted `${…}` (whose braces end a plain value in flow style).
  private func unclosedFlow(at place: SourceLocation, opener: SourceLocation, isMapping: Bool) -> YAMLError {
    let line = text(of: place.line)
    let i = place.column - 1
    if i >= 1, i < line.count, line[i] == "{", line[i - 1] == "$" {
      let end = line[i...].firstIndex(of: "}") ?? line.count - 1
      let reference = SyntaxError.trimmed(line[(i - 1)...min(end, line.count - 1)], dropping: [])
      return YAMLError("quote '\(reference)' inside '{…}' or '[…]': write \"\(reference)\"",
                       at: SourceLocation(file: file, line: place.line, column: place.column - 1))
    }
    let (open, close) = isMapping ? ("{", "}") : ("[", "]")
    if place.line != opener.line {
      let atEnd = (place.line...max(place.line, lines.count)).allSatisfy { text(of: $0).allSatisfy { $0 == " " } }
      let comma = atEnd ? "" : " (or a ',' is missing before line \(place.line))"
      return YAMLError("this '\(open)' is never closed: add '\(close)'\(comma)", at: opener)
    }
    return YAMLError("expected ',' or '\(close)' here, inside the '\(open)' at column \(opener.column); is a ',' missing?",
                     at: place)
  }

  /// "did not find expected key": a line that belongs to no map around it.
  private func misplacedLine(at place: SourceLocation, opener: SourceLocation, inList: Bool) -> YAMLError? {
    guard let c = scalar(at: place) else { return nil }
    if c == "]" || c == "}" {
      return YAMLError("unexpected '\(c)': no '\(c == "]" ? "[" : "{")' is open here", at: place)
    }
    if c == "-", let above = previousContentLine(before: place.line), text(of: above).drop(while: { $0 == " " }).first == "-",
       firstNonBlank(of: above) != place.column {
      return YAMLError("bad indentation: this '- ' at column \(place.column) does not line up with the one on line \(above) "
                         + "(column \(firstNonBlank(of: above)))", at: place)
    }
    if c == "-", !inList {
      return YAMLError("a list item cannot stand among the keys of a map (the map at line \(opener.line)); remove the '- '",
                       at: place)
    }
    guard place.column == firstNonBlank(of: place.line), place.column != opener.column else { return nil }
    let word = SyntaxError.trimmed(text(of: place.line).dropFirst(place.column - 1).prefix { $0 != ":" && $0 != " " },
                                   dropping: [])
    let what = inList ? "no list item above it" : "no key above it"
    return YAMLError("bad indentation: '\(word)' at column \(place.column) lines up with \(what)", at: place)
  }

  // MARK: - Places and text

  func location(_ mark: Mark) -> SourceLocation {
    SourceLocation(file: file, line: mark.line + 1, column: mark.column + 1)
  }

  /// libyaml places an error found at the end of the input after the last line; point at the end of
  /// the last line instead, where an editor can show it.
  private func clamped(_ place: SourceLocation) -> SourceLocation {
    guard place.line > lines.count, let last = lines.last else { return place }
    return SourceLocation(file: file, line: lines.count, column: last.count + 1)
  }

  private func text(of line: Int) -> [Unicode.Scalar] {
    line >= 1 && line <= lines.count ? lines[line - 1] : []
  }

  private func scalar(at place: SourceLocation) -> Unicode.Scalar? {
    let line = text(of: place.line)
    return place.column >= 1 && place.column <= line.count ? line[place.column - 1] : nil
  }

  private func firstNonBlank(of line: Int) -> Int {
    (text(of: line).firstIndex { $0 != " " } ?? 0) + 1
  }

  /// The nearest line above `line` with something other than blanks or a comment.
  private func previousContentLine(before line: Int) -> Int? {
    var n = line - 1
    while n >= 1 {
      let trimmed = text(of: n).drop { $0 == " " }
      if let first = trimmed.first, first != "#" { return n }
      n -= 1
    }
    return nil
  }

  /// A U+FEFF anywhere but at the very start, where it marks the encoding: invisible in an editor.
  private func strayByteOrderMark() -> SourceLocation? {
    for (n, line) in lines.enumerated() {
      for (i, c) in line.enumerated() where c == "\u{FEFF}" && (n > 0 || i > 0) {
        return SourceLocation(file: file, line: n + 1, column: i + 1)
      }
    }
    return nil
  }

  /// Line and column (in unicode scalars) of a byte offset.
  private func locationOfByte(_ offset: Int) -> SourceLocation {
    var line = 0
    var lineStart = 0
    for i in 0..<min(offset, bytes.count) where bytes[i] == 0x0A {
      line += 1
      lineStart = i + 1
    }
    let prefix = bytes[lineStart..<min(offset, bytes.count)]
    let column = String(decoding: prefix, as: UTF8.self).unicodeScalars.count
    return SourceLocation(file: file, line: line + 1, column: column + 1)
  }

  static func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return "0x" + (digits.count == 1 ? "0" : "") + digits
  }

  static func codePoint(_ c: Unicode.Scalar) -> String {
    let digits = String(c.value, radix: 16, uppercase: true)
    return "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
  }
}

/// The lines of a source file as an editor shows them.
enum SourceText {
  /// Lines split at `\n`, each without its `\n` or `\r\n`; invalid UTF-8 decoded as U+FFFD.
  ///
  /// Splits bytes rather than a `String`: in Swift `"\r\n"` is one `Character`, so splitting a
  /// string at `"\n"` would leave a CRLF file in one piece.
  static func lines(of bytes: some Collection<UInt8>) -> [String] {
    bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
      String(decoding: line.last == 0x0D ? line.dropLast() : line[...], as: UTF8.self)
    }
  }
}
