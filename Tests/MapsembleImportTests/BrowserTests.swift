import Foundation
import Testing

@Suite("Reports in a browser", .enabled(if: chromium != nil || ProcessInfo.processInfo.environment["CI"] != nil))
struct BrowserTests {
    struct Rendering {
        var dom: String
        var image: PNGImage
    }

    /// Imports a sample into the embedded sandbox and renders its report: the DOM after the
    /// scripts ran, and a 1100 × 900 screenshot.
    func render(sample: String, name: String) throws -> Rendering {
        #expect(chromium != nil, "CI renders the reports: scripts/test installs chromium")
        let dir = TempDir()
        let result = try runCLI([
            "run", projectDirectory + "/samples/\(sample)/pipeline.yml", "--sandbox", "--report-dir", dir.path,
        ])
        #expect(result.status <= 1, "\(result.stderr)")
        let page = dir.path + "/\(name).report.html"
        let dom = try headless(["--dump-dom"], page: page, in: dir)
        try headless(["--screenshot=\(dir.path)/shot.png"], page: page, in: dir)
        return Rendering(dom: dom, image: try PNGImage(path: dir.path + "/shot.png"))
    }

    /// The root element's start tag, where the page's script notes how it went.
    func root(_ dom: String) -> String {
        guard let start = dom.range(of: "<html") else { return "" }
        return String(dom[start.lowerBound...].prefix { $0 != ">" })
    }

    /// The number in `data-rendered="N"` on the root element, once the page's script has run.
    func rendered(_ dom: String) -> Int? {
        guard let range = root(dom).range(of: "data-rendered=\"") else { return nil }
        return Int(root(dom)[range.upperBound...].prefix { $0.isNumber })
    }

    static func isBlue(_ p: (r: Int, g: Int, b: Int)) -> Bool { p.b > 180 && p.r < 110 && p.g < 150 }
    static func isRed(_ p: (r: Int, g: Int, b: Int)) -> Bool { p.r > 170 && p.g < 90 && p.b < 90 }

    @Test("The stores sample's report renders without script errors: land, sea and blue points")
    func normalReport() throws {
        guard chromium != nil else { return }
        let rendering = try render(sample: "stores", name: "stores")
        #expect(root(rendering.dom).contains("data-error") == false, "\(root(rendering.dom))")
        #expect(rendered(rendering.dom) == 15)
        let image = rendering.image
        #expect(image.width == 1100 && image.height == 900)
        // Not blank: the map's land, sea, coast, points and text make many colours.
        #expect(image.colours > 200)
        let map = (x: 80..<1020, y: 180..<700)
        let sea = image.count(x: map.x, y: map.y) { $0.b > $0.r + 8 && $0.r > 220 }
        let land = image.count(x: map.x, y: map.y) { $0.r >= 248 && $0.g >= 246 && $0.b <= 248 && $0.b >= 240 }
        #expect(sea > 40_000 && land > 40_000, "sea \(sea), land \(land)")
        #expect(image.count(x: map.x, y: map.y, where: Self.isBlue) > 100)
        #expect(image.count(x: map.x, y: map.y, where: Self.isRed) == 0)
    }

    @Test("The swapped sample's report shows at a glance: red points by the Horn of Africa, blue ones in Germany")
    func swappedReport() throws {
        guard chromium != nil else { return }
        let rendering = try render(sample: "swapped", name: "parcel-lockers")
        #expect(root(rendering.dom).contains("data-error") == false, "\(root(rendering.dom))")
        #expect((rendered(rendering.dom) ?? 0) > 400)
        let image = rendering.image
        #expect(image.colours > 200)
        // The map spans Germany (top left) to the Gulf of Aden (bottom right).
        let germany = (x: 300..<560, y: 180..<330)
        let horn = (x: 640..<900, y: 560..<700)
        #expect(image.count(x: germany.x, y: germany.y, where: Self.isBlue) > 300)
        #expect(image.count(x: horn.x, y: horn.y, where: Self.isRed) > 300)
        #expect(image.count(x: horn.x, y: horn.y, where: Self.isBlue) == 0)
        #expect(rendering.dom.contains("where they land with the columns swapped"))
    }
}
