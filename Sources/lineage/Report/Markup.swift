import Foundation

/// A small typed tree of HTML and inline SVG elements, rendered as well-formed XML that browsers
/// read as HTML.
///
/// Why not JohnSundell/Plot (in the package mirror): Plot 0.14 writes attribute values as given
/// (`name="value"`, unescaped), so a stage doc holding a `"` would break out of a `title` attribute,
/// and its text escaping keeps `&name;` sequences as entities, so a doc that says `&lt;` would read
/// `<`. Every name and doc in the report comes from a stage file and must be escaped, attributes
/// included; and Plot has no SVG elements, so every chart would go through its untyped
/// `.element(named:)` anyway. Here every text and attribute value is escaped when rendered, tags are
/// an enum, and every element is closed, so the tests can parse the whole page as XML.
enum Markup {
  case element(Tag, [Attribute], [Markup])
  case text(String)
  /// The page's own style sheet, written as is: HTML reads `<style>` as raw text, where an entity
  /// would stay an entity. It is a constant of this program, never text from a recipe.
  case styleSheet(StaticString)

  /// An attribute; its value is escaped when rendered.
  struct Attribute {
    var name: String
    var value: String
  }

  /// The elements the report uses: HTML ones, then SVG ones (`title` serves both).
  enum Tag: String {
    case html, head, meta, title, style, body, header, main, footer, section, nav
    case h1, h2, h3, p, div, span, a, strong, em, small, code
    case figure, figcaption, table, caption, thead, tbody, tr, th, td, ul, li
    case svg, defs, marker, g, rect, line, path, polyline, circle, tspan, svgText = "text"

    /// HTML's void elements, written `<meta … />`; every other element gets a closing tag, even when
    /// empty, because `<div/>` does not close in HTML.
    var isVoid: Bool { self == .meta }
  }

  // MARK: - Building

  static func el(_ tag: Tag, _ attributes: [Attribute] = [], _ children: [Markup] = []) -> Markup {
    .element(tag, attributes, children)
  }

  static func el(_ tag: Tag, _ attributes: [Attribute] = [], text: String) -> Markup {
    .element(tag, attributes, [.text(text)])
  }

  // MARK: - Rendering

  var rendered: String {
    var out = ""
    render(into: &out)
    return out
  }

  func render(into out: inout String) {
    switch self {
    case .text(let text):
      out += Markup.escaped(text)
    case .styleSheet(let css):
      let text = css.description
      precondition(!text.contains("<") && !text.contains("&"), "the style sheet must stay valid XML text")
      out += text
    case .element(let tag, let attributes, let children):
      out += "<" + tag.rawValue
      for attribute in attributes {
        out += " " + attribute.name + "=\"" + Markup.escaped(attribute.value) + "\""
      }
      if tag.isVoid {
        precondition(children.isEmpty, "<\(tag.rawValue)> has no content")
        out += "/>"
        return
      }
      out += ">"
      for child in children { child.render(into: &out) }
      out += "</" + tag.rawValue + ">"
      // A line break after block-level elements keeps the file readable without changing the page.
      if Markup.breaksLine.contains(tag) { out += "\n" }
    }
  }

  private static let breaksLine: Set<Tag> = [.head, .meta, .title, .style, .header, .main, .footer, .section, .h1, .h2,
                                             .h3, .p, .div, .figure, .table, .tr, .svg, .g, .ul]

  /// Text safe in element content and in double- or single-quoted attributes. Characters XML 1.0
  /// forbids (control characters other than tab, newline and carriage return) become U+FFFD, so a
  /// stray byte in a doc cannot make the page malformed.
  static func escaped(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
      case _ where scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value):
        out += "\u{FFFD}"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out
  }
}

/// `"name" => "value"` reads like the attribute it makes.
infix operator =>: AssignmentPrecedence
func => (name: String, value: String) -> Markup.Attribute { Markup.Attribute(name: name, value: value) }

/// SVG coordinates: one decimal is finer than a pixel and keeps the file small.
func coordinate(_ x: Double) -> String {
  precondition(x.isFinite, "charts plot finite values only (the metrics reader drops the others)")
  let rounded = (x * 10).rounded() / 10
  return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
}
