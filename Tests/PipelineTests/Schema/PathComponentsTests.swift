@testable import Pipeline
import Testing

/// Paths go by bytes, as the file system splits them, wherever files are chosen (recipe data, cache
/// keys, bundles), so that `bundle create` never writes what `bundle import` refuses.
@Suite struct PathComponentsTests {
  @Test func aSlashBoundToAMarkStillSeparatesComponents() {
    let tricky = "x\u{0600}/.hidden/file"            // U+0600 is a prepended mark: "\u{0600}/" is one Character
    #expect(!tricky.split(separator: "/").contains { $0.hasPrefix(".") }, "by characters the hidden folder is missed")
    #expect(PathComponents.hasHiddenComponent(tricky))
    #expect(PathComponents.of(tricky) == ["x\u{0600}", ".hidden", "file"])
    #expect(!PathComponents.hasHiddenComponent("data/a.txt") && PathComponents.hasHiddenComponent("data/.git/x"))
  }

  @Test func aFolderContainsOnlyWhatStartsWithItsBytes() {
    #expect(PathComponents.isBelow("/x/data/a", "/x/data") && PathComponents.isBelow("/x/data", "/x/data"))
    #expect(!PathComponents.isBelow("/x/data2/a", "/x/data"))
    // A decomposed é (e + U+0301) and a precomposed é are equal Swift strings but different folders.
    let decomposed = "/x/caf\u{0065}\u{0301}", precomposed = "/x/caf\u{00E9}"
    #expect(decomposed == precomposed)
    #expect(!PathComponents.isBelow(precomposed + "/a", decomposed))
    #expect(PathComponents.isBelow("/anything", "/"))
  }
}
