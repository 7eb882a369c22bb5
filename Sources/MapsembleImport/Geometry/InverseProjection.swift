import CPROJ
import Foundation

/// The inverse of the two projections most national grids use, Lambert conformal conic (Lambert-93,
/// the State Plane LCC zones) and transverse Mercator (UTM, Gauss-Krüger, the State Plane TM
/// zones, NZTM), in closed form: PROJ's inverse LCC finds the latitude by iteration and its
/// pipeline costs about 320 ns a point, this about a third of that (see `scripts/bench-shapes`).
///
/// PROJ stays the reference. `CoordinateTransform` uses one of these only when the operation PROJ
/// chose is exactly such a projection with nothing after it but the change to degrees (no datum
/// shift, no grid): `init?(pipeline:)` reads PROJ's own string of that operation. And it checks
/// points of every block against PROJ before trusting it with the block.
///
/// Formulas: the conic from Snyder, *Map Projections: A Working Manual* (USGS 1395, 1987), §15;
/// the transverse Mercator from Krüger's series to the sixth order in the third flattening n
/// (Karney, *Transverse Mercator with an accuracy of a few nanometers*, J. Geodesy 85, 2011);
/// the conformal to geodetic latitude by the series in n of the same paper. Truncated at n⁶, the
/// error is far below a millimetre.
struct InverseProjection: Sendable {
    private enum Kind: Sendable {
        /// Cone constant, scale constant (times a), radius at the origin latitude (times a).
        case conic(n: Double, c: Double, rho0: Double)
        /// Rectifying radius times the scale factor, northing of the origin latitude.
        case transverse(scaledA: Double, originNorthing: Double)
    }

    private let kind: Kind
    /// Input units to metres (US survey feet for many State Plane zones).
    private let toMetres: Double
    private let falseEasting: Double
    private let falseNorthing: Double
    private let centralMeridian: Double
    private let scale: Double
    private let a: Double
    /// Krüger's β (transverse Mercator, plane to Gauss-Schreiber), 1…6.
    private let beta: [Double]
    /// Conformal to geodetic latitude, sin(2jχ) coefficients, 1…6.
    private let delta: [Double]

    /// From PROJ's string of an operation to WGS 84 degrees, as `proj_as_proj_string` writes it:
    /// `+proj=pipeline [+step +proj=unitconvert +xy_in=U +xy_out=m] +step +inv +proj=lcc|tmerc|utm
    /// … +step +proj=unitconvert +xy_in=rad +xy_out=deg`. Nil for anything else, or any parameter
    /// not read here, which PROJ then handles.
    init?(pipeline: String) {
        var steps = pipeline.split(separator: " ").map(String.init)
        guard steps.first == "+proj=pipeline" else { return nil }
        steps.removeFirst()
        // The steps, each a list of `+key[=value]`.
        var parsed: [[String]] = []
        for token in steps {
            if token == "+step" {
                parsed.append([])
            } else {
                guard !parsed.isEmpty, token.hasPrefix("+") else { return nil }
                parsed[parsed.count - 1].append(String(token.dropFirst()))
            }
        }
        guard parsed.last == ["proj=unitconvert", "xy_in=rad", "xy_out=deg"] else { return nil }
        parsed.removeLast()
        var toMetres = 1.0
        if parsed.count == 2 {
            let units: [String: Double] = ["m": 1, "km": 1000, "ft": 0.3048, "us-ft": 1200 / 3937]
            let first = parsed.removeFirst()
            guard first.count == 3, first[0] == "proj=unitconvert", first[2] == "xy_out=m",
                first[1].hasPrefix("xy_in="), let factor = units[String(first[1].dropFirst(6))]
            else { return nil }
            toMetres = factor
        }
        guard parsed.count == 1, parsed[0].first == "inv", parsed[0].count > 1 else { return nil }
        var parameters: [String: String] = [:]
        for item in parsed[0].dropFirst() {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            parameters[parts[0]] = parts.count == 2 ? parts[1] : ""
        }
        guard let projection = parameters.removeValue(forKey: "proj") else { return nil }
        func angle(_ key: String) -> Double? { parameters[key].flatMap(Double.init).map { $0 * .pi / 180 } }
        func number(_ key: String) -> Double? { parameters[key].flatMap(Double.init) }

        // The ellipsoid: a name PROJ knows, or a and rf (or b).
        var known: Set<String> = ["ellps", "a", "rf", "b"]
        guard let (a, flattening) = Self.ellipsoid(parameters) else { return nil }
        let e2 = flattening * (2 - flattening)
        let e = e2.squareRoot()
        let n = flattening / (2 - flattening)
        self.a = a
        self.toMetres = toMetres
        delta = Self.conformalToGeodetic(n)

        switch projection {
        case "lcc":
            known.formUnion(["lat_0", "lon_0", "lat_1", "lat_2", "k_0", "k", "x_0", "y_0"])
            guard let phi1 = angle("lat_1") else { return nil }
            let phi2 = angle("lat_2") ?? phi1
            let phi0 = angle("lat_0") ?? phi1
            func msfn(_ phi: Double) -> Double { cos(phi) / (1 - e2 * sin(phi) * sin(phi)).squareRoot() }
            func tsfn(_ phi: Double) -> Double {
                let s = sin(phi)
                return tan((.pi / 2 - phi) / 2) / pow((1 - e * s) / (1 + e * s), e / 2)
            }
            var cone = sin(phi1)
            if abs(phi1 - phi2) >= 1e-10 {
                cone = log(msfn(phi1) / msfn(phi2)) / log(tsfn(phi1) / tsfn(phi2))
            }
            guard cone != 0, cone.isFinite else { return nil }
            let c = msfn(phi1) * pow(tsfn(phi1), -cone) / cone
            let rho0 = abs(abs(phi0) - .pi / 2) < 1e-10 ? 0 : c * pow(tsfn(phi0), cone)
            kind = .conic(n: cone, c: c, rho0: rho0)
            centralMeridian = angle("lon_0") ?? 0
            scale = number("k_0") ?? number("k") ?? 1
            falseEasting = number("x_0") ?? 0
            falseNorthing = number("y_0") ?? 0
            beta = []
        case "tmerc", "utm":
            if projection == "utm" {
                known.formUnion(["zone", "south"])
                guard let zone = parameters["zone"].flatMap(Int.init), (1...60).contains(zone) else { return nil }
                centralMeridian = (Double(zone - 1) * 6 - 180 + 3) * .pi / 180
                scale = 0.9996
                falseEasting = 500_000
                falseNorthing = parameters["south"] != nil ? 10_000_000 : 0
            } else {
                known.formUnion(["lat_0", "lon_0", "k_0", "k", "x_0", "y_0"])
                centralMeridian = angle("lon_0") ?? 0
                scale = number("k_0") ?? number("k") ?? 1
                falseEasting = number("x_0") ?? 0
                falseNorthing = number("y_0") ?? 0
            }
            let n2 = n * n
            // Rectifying radius over a.
            let rectifying = (1 + n2 / 4 + n2 * n2 / 64 + n2 * n2 * n2 / 256) / (1 + n)
            let alpha = Self.krügerAlpha(n)
            beta = Self.krügerBeta(n)
            // The origin latitude's distance along the meridian, through its conformal latitude.
            let phi0 = projection == "utm" ? 0 : angle("lat_0") ?? 0
            let chi0 = asin(tanh(atanh(sin(phi0)) - e * atanh(e * sin(phi0))))
            var xi0 = chi0
            for j in 1...6 { xi0 += alpha[j - 1] * sin(2 * Double(j) * chi0) }
            kind = .transverse(scaledA: scale * rectifying, originNorthing: scale * rectifying * xi0)
        default:
            return nil
        }
        guard Set(parameters.keys).isSubset(of: known), a > 0, flattening >= 0, flattening < 0.1 else { return nil }
    }

    /// a in metres and the flattening, from `ellps=` (PROJ's own list) or `a=` with `rf=` or `b=`.
    private static func ellipsoid(_ parameters: [String: String]) -> (Double, Double)? {
        var major = parameters["a"]
        var shape = parameters["rf"].map { "rf=" + $0 } ?? parameters["b"].map { "b=" + $0 }
        if let name = parameters["ellps"] {
            guard major == nil, shape == nil, let known = Self.namedEllipsoids[name] else { return nil }
            (major, shape) = known
        }
        guard let major, let shape, major.hasPrefix("a=") || parameters["a"] != nil,
            let a = Double(major.hasPrefix("a=") ? String(major.dropFirst(2)) : major)
        else { return nil }
        if shape.hasPrefix("rf="), let rf = Double(shape.dropFirst(3)), rf > 0 { return (a, 1 / rf) }
        if shape.hasPrefix("b="), let b = Double(shape.dropFirst(2)), b > 0 { return (a, (a - b) / a) }
        return nil
    }

    /// PROJ's ellipsoids by name: `a=…` and `rf=…` or `b=…`, as `proj_list_ellps` gives them.
    private static let namedEllipsoids: [String: (String, String)] = {
        var named: [String: (String, String)] = [:]
        guard var entry = proj_list_ellps() else { return named }
        while let id = entry.pointee.id, let major = entry.pointee.major, let shape = entry.pointee.ell {
            named[String(cString: id)] = (String(cString: major), String(cString: shape))
            entry += 1
        }
        return named
    }()

    /// Krüger's α (Karney 2011, eq. 35), for the origin's meridian distance.
    private static func krügerAlpha(_ n: Double) -> [Double] {
        series(
            n,
            [
                [1 / 2, -2 / 3, 5 / 16, 41 / 180, -127 / 288, 7891 / 37800],
                [0, 13 / 48, -3 / 5, 557 / 1440, 281 / 630, -1_983_433 / 1_935_360],
                [0, 0, 61 / 240, -103 / 140, 15061 / 26880, 167_603 / 181_440],
                [0, 0, 0, 49561 / 161_280, -179 / 168, 6_601_661 / 7_257_600],
                [0, 0, 0, 0, 34729 / 80640, -3_418_889 / 1_995_840],
                [0, 0, 0, 0, 0, 212_378_941 / 319_334_400],
            ])
    }

    /// Krüger's β (Karney 2011, eq. 36).
    private static func krügerBeta(_ n: Double) -> [Double] {
        series(
            n,
            [
                [1 / 2, -2 / 3, 37 / 96, -1 / 360, -81 / 512, 96199 / 604_800],
                [0, 1 / 48, 1 / 15, -437 / 1440, 46 / 105, -1_118_711 / 3_870_720],
                [0, 0, 17 / 480, -37 / 840, -209 / 4480, 5569 / 90720],
                [0, 0, 0, 4397 / 161_280, -11 / 504, -830_251 / 7_257_600],
                [0, 0, 0, 0, 4583 / 161_280, -108_847 / 3_991_680],
                [0, 0, 0, 0, 0, 20_648_693 / 638_668_800],
            ])
    }

    /// Conformal latitude χ to geodetic latitude φ = χ + Σ δⱼ sin 2jχ.
    private static func conformalToGeodetic(_ n: Double) -> [Double] {
        series(
            n,
            [
                [2, -2 / 3, -2, 116 / 45, 26 / 45, -2854 / 675],
                [0, 7 / 3, -8 / 5, -227 / 45, 2704 / 315, 2323 / 945],
                [0, 0, 56 / 15, -136 / 35, -1262 / 105, 73814 / 2835],
                [0, 0, 0, 4279 / 630, -332 / 35, -399_572 / 14175],
                [0, 0, 0, 0, 4174 / 315, -144_838 / 6237],
                [0, 0, 0, 0, 0, 601_676 / 22275],
            ])
    }

    /// Each row's polynomial in n (coefficients of n¹…n⁶).
    private static func series(_ n: Double, _ rows: [[Double]]) -> [Double] {
        rows.map { row in
            var power = 1.0
            var sum = 0.0
            for coefficient in row {
                power *= n
                sum += coefficient * power
            }
            return sum
        }
    }

    /// Transforms `count` points, `step` Doubles apart, in place: easting and northing in the
    /// system's units become longitude and latitude in degrees.
    func toDegrees(x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>, step: Int, count: Int) {
        let degrees = 180 / Double.pi
        var index = 0
        for _ in 0..<count {
            let (longitude, latitude) = inverse(x[index], y[index])
            x[index] = longitude * degrees
            y[index] = latitude * degrees
            index += step
        }
    }

    /// One point: longitude and latitude in radians.
    @inline(__always)
    private func inverse(_ easting: Double, _ northing: Double) -> (Double, Double) {
        let east = easting * toMetres - falseEasting
        let north = northing * toMetres - falseNorthing
        var chi: Double
        var lambda: Double
        switch kind {
        case .conic(let n, let c, let rho0):
            var x = east / (a * scale)
            var y = rho0 - north / (a * scale)
            var rho = (x * x + y * y).squareRoot()
            guard rho != 0 else { return (centralMeridian, n > 0 ? .pi / 2 : -.pi / 2) }
            if n < 0 {
                rho = -rho
                x = -x
                y = -y
            }
            // t = ts of the point; χ = π/2 − 2 atan t.
            let t = exp(log(rho / c) / n)
            chi = .pi / 2 - 2 * atan(t)
            lambda = atan2(x, y) / n
        case .transverse(let scaledA, let originNorthing):
            let xi0 = (north + originNorthing * a) / (scaledA * a)
            let eta0 = east / (scaledA * a)
            // Where PROJ's inverse gives up (the series diverge): outside the projection's domain.
            guard abs(eta0) <= 2.623395162778 else { return (.nan, .nan) }
            // ξ = ξ' − Σ βⱼ sin 2jξ' cosh 2jη', η = η' − Σ βⱼ cos 2jξ' sinh 2jη'.
            let sin2 = sin(2 * xi0)
            let cos2 = cos(2 * xi0)
            let grow = exp(2 * eta0)
            let sinh2 = (grow - 1 / grow) / 2
            let cosh2 = (grow + 1 / grow) / 2
            var xi = xi0
            var eta = eta0
            // sin/cos of 2jξ' and sinh/cosh of 2jη' by the angle-sum recurrences.
            var sinJ = sin2
            var cosJ = cos2
            var sinhJ = sinh2
            var coshJ = cosh2
            for j in 0..<6 {
                xi -= beta[j] * sinJ * coshJ
                eta -= beta[j] * cosJ * sinhJ
                (sinJ, cosJ) = (sinJ * cos2 + cosJ * sin2, cosJ * cos2 - sinJ * sin2)
                (sinhJ, coshJ) = (sinhJ * cosh2 + coshJ * sinh2, coshJ * cosh2 + sinhJ * sinh2)
            }
            let expEta = exp(eta)
            let sinhEta = (expEta - 1 / expEta) / 2
            let coshEta = (expEta + 1 / expEta) / 2
            chi = asin(sin(xi) / coshEta)
            lambda = atan2(sinhEta, cos(xi))
        }
        // φ = χ + Σ δⱼ sin 2jχ, by Clenshaw's recurrence.
        let cos2chi = 2 * cos(2 * chi)
        var b1 = 0.0
        var b2 = 0.0
        for j in stride(from: 5, through: 0, by: -1) {
            (b1, b2) = (cos2chi * b1 - b2 + delta[j], b1)
        }
        let phi = chi + b1 * sin(2 * chi)
        lambda += centralMeridian
        // Longitudes wrap to −π…π.
        if abs(lambda) > .pi { lambda -= 2 * .pi * (lambda / (2 * .pi)).rounded() }
        return (lambda, phi)
    }
}
