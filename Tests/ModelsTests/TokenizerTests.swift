import Foundation
import Models
import Testing

@Suite struct TokenizerTests {
  static let samples = [
    "", "hello world", "¿Dónde está el niño? Años, pingüino.", "emoji 🦙 👩‍👩‍👧 🇪🇸 and CJK 中文字",
    "What is 12 + 7 * 3?\n7 * 3 = 21\n12 + 21 = 33", "tabs\tand\r\nnewlines  double  spaces",
    "<think>reason</think><answer>42</answer>", "a < b > c </thinking> <s>start</s> <pad>",
  ]

  static let corpus = [
    "The cat sat on the mat. The cat ate the rat.", "El gato se sentó en la alfombra. ¿Dónde está el gato?",
    "What is 12 + 7 * 3?", "the the the then there these", "emoji 🦙🦙🦙 llama",
  ]

  @Test(arguments: samples)
  func bytesRoundTrip(text: String) {
    let t = ByteTokenizer()
    #expect(t.decode(t.encode(text)) == text)
    #expect(t.encode(text).allSatisfy { $0 >= 0 && Int($0) < t.vocabularySize })
  }

  @Test(arguments: samples)
  func bpeRoundTrip(text: String) {
    let t = BPETokenizer.train(texts: TokenizerTests.corpus, vocabularySize: 320, minFrequency: 2)
    #expect(t.decode(t.encode(text)) == text)
    #expect(t.encode(text).allSatisfy { $0 >= 0 && Int($0) < t.vocabularySize })
  }

  @Test func specialTokensAreSingleIds() {
    let t = ByteTokenizer()
    #expect(t.encode("<think>x</think>") == [SpecialToken.thinkOpen.id, 120, SpecialToken.thinkClose.id])
    #expect(t.encode("<answer>") == [t.id(of: .answerOpen)])
    let bpe = BPETokenizer.train(texts: TokenizerTests.corpus, vocabularySize: 300)
    #expect(bpe.encode("<s>the</s>").first == SpecialToken.bos.id)
    #expect(bpe.encode("<s>the</s>").last == SpecialToken.eos.id)
  }

  @Test func trainingIsDeterministicAndCompresses() {
    let a = BPETokenizer.train(texts: TokenizerTests.corpus, vocabularySize: 330)
    let b = BPETokenizer.train(texts: TokenizerTests.corpus.reversed(), vocabularySize: 330)
    #expect(a == b, "merges do not depend on the order of texts")
    #expect(a.serialized() == b.serialized())
    let text = "The cat sat on the mat."
    #expect(a.encode(text).count < ByteTokenizer().encode(text).count)
    #expect(a.vocabularySize <= 330)
  }

  @Test func mergesNeverCrossWordsOrJoinDigits() {
    let t = BPETokenizer.train(texts: Array(repeating: "ab 12 ab 12", count: 50), vocabularySize: 300)
    let ids = t.encode("12")
    #expect(ids == [Int32(UInt8(ascii: "1")), Int32(UInt8(ascii: "2"))])
    #expect(t.encode(" ab").count == 1, "the leading space joins its word")
  }

  @Test func serialisationRoundTripsAndRejectsGarbage() throws {
    let t = BPETokenizer.train(texts: TokenizerTests.corpus, vocabularySize: 310)
    #expect(try BPETokenizer(serialized: t.serialized()) == t)
    #expect(throws: TokenizerError.self) { _ = try BPETokenizer(serialized: Array("{}".utf8)) }
    var forward = t.serialized()
    let text = String(decoding: forward, as: UTF8.self).replacingFirst("\"merges\":[[", with: "\"merges\":[[9999,")
    forward = Array(text.utf8)
    #expect(throws: TokenizerError.self) { _ = try BPETokenizer(serialized: forward) }
  }
}

extension String {
  func replacingFirst(_ target: String, with replacement: String) -> String {
    guard let r = range(of: target) else { return self }
    return String(self[..<r.lowerBound]) + replacement + String(self[r.upperBound...])
  }
}
