import Foundation

/// A self-contained HTML page around a `MapPicture`: inline style and script, no network access
/// needed to open it (no CDN, no tiles). The script draws the picture on a canvas over an SVG
/// outline of the land, builds the legend, shows a row's line and code on hover, and jumps to the
/// row's entry in the page on click. With `live`, it fetches the picture again from that URL every
/// two seconds (the sandbox viewer, while an import runs).
///
/// The root element gets `data-rendered` (the number of points drawn) and `data-render-ms` (how
/// long drawing took) once the script has run, and `data-error` if a script error happened: a
/// headless browser's dump of the page shows them.
public enum MapPage {
    /// HTML-escaped text.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The whole page. `header` and `sections` are HTML (escaped by the caller).
    public static func document(
        title: String, header: String, picture: MapPicture, sections: String, live: String? = nil
    ) -> String {
        let liveAttribute = live.map { " data-live=\"\(escape($0))\"" } ?? ""
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>\(style)</style>
            </head>
            <body\(liveAttribute)>
            <main>
            \(header)
            <figure class="map">
            <div id="map" style="aspect-ratio: \(picture.width) / \(picture.height)">
            <svg id="land" viewBox="0 0 \(picture.width) \(picture.height)" preserveAspectRatio="none" aria-hidden="true"><rect width="100%" height="100%" class="sea"/><path d=""/></svg>
            <canvas id="points" width="\(picture.width)" height="\(picture.height)"></canvas>
            <div id="tip" hidden></div>
            <div id="scale"><span></span><b></b></div>
            </div>
            <figcaption><ul id="legend"></ul><p id="caption"></p></figcaption>
            </figure>
            \(sections)
            </main>
            <script type="application/json" id="picture">\(picture.json())</script>
            <script>\(script)</script>
            </body>
            </html>

            """
    }

    /// Horizontal bars, one per entry: `(label, count, CSS colour)`, scaled to the largest count.
    public static func bars(_ entries: [(label: String, count: Int, color: String)]) -> String {
        let largest = max(entries.map(\.count).max() ?? 1, 1)
        var html = "<div class=\"bars\">"
        for entry in entries {
            let percent = Double(entry.count) / Double(largest) * 100
            let width = entry.count > 0 ? max(percent, 0.5) : 0
            html += "<div class=\"bar\"><span class=\"name\">\(escape(entry.label))</span>"
            html +=
                "<span class=\"track\"><span style=\"width:\(String(format: "%.2f", width))%;background:\(entry.color)\"></span></span>"
            html += "<span class=\"count\">\(grouped(entry.count))</span></div>"
        }
        return html + "</div>"
    }

    /// A number with thousands separators: 1,234,567.
    public static func grouped(_ number: Int) -> String {
        let digits = String(number.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (number < 0 ? "-" : "") + out
    }

    public static let style = """
        :root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--sea:#eef4fa;--land:#fbfaf6;--coast:#b8c4cf}
        *{box-sizing:border-box}
        body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#f7f7f8}
        main{max-width:1000px;margin:0 auto;padding:20px}
        h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}h3{font-size:14px;margin:18px 0 6px}
        .sub{color:var(--muted);margin:0 0 12px}
        .pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;vertical-align:middle;margin-left:6px}
        .ok{background:#dcfce7;color:#166534}.warn{background:#fef3c7;color:#92400e}.bad{background:#fee2e2;color:#991b1b}
        .stats{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
        .stat{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:120px}
        .stat b{display:block;font-size:20px}.stat span{color:var(--muted);font-size:12px}
        figure.map{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px}
        #map{position:relative;width:100%;overflow:hidden;border-radius:4px}
        #map svg,#map canvas{position:absolute;inset:0;width:100%;height:100%}
        #land .sea{fill:var(--sea)}#land path{fill:var(--land);stroke:var(--coast);stroke-width:.8;stroke-linejoin:round}
        #tip{position:absolute;pointer-events:none;background:rgba(17,24,39,.9);color:#fff;padding:3px 7px;border-radius:4px;font-size:12px;white-space:nowrap}
        #scale{position:absolute;left:10px;bottom:8px;font-size:11px;color:#374151}
        #scale b{display:block;height:5px;border:1.5px solid #374151;border-top:0}
        figcaption{padding:6px 4px 0}
        #legend{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px}
        #legend i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;vertical-align:-1px}
        #legend i.ring{background:none!important;border:2px solid}
        #caption{color:var(--muted);margin:4px 0 0;font-size:12px}
        .bars{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
        .bar{display:grid;grid-template-columns:220px 1fr 90px;gap:10px;align-items:center;margin:3px 0}
        .bar .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
        .bar .track{background:#f3f4f6;border-radius:3px;height:14px;overflow:hidden}
        .bar .track span{display:block;height:100%}
        .bar .count{text-align:right;font-variant-numeric:tabular-nums}
        dl.facts{display:grid;grid-template-columns:220px 1fr;gap:4px 12px;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px;margin:0}
        dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
        .scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:8px}
        table{border-collapse:collapse;font-size:12px;width:100%}
        th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
        td.msg{white-space:normal;min-width:260px}
        th{background:#f9fafb;font-weight:600}
        tr:target{background:#fef9c3}
        a{color:#1d4ed8}
        code{font-size:12px;background:#f3f4f6;padding:0 3px;border-radius:3px}
        """

    static let script = """
        (function () {
          "use strict";
          var root = document.documentElement;
          window.addEventListener("error", function (event) {
            root.setAttribute("data-error", String(event.message || event));
          });
          var hits = [];
          function draw(picture) {
            var canvas = document.getElementById("points");
            var ratio = window.devicePixelRatio || 1;
            canvas.width = picture.w * ratio;
            canvas.height = picture.h * ratio;
            document.getElementById("map").style.aspectRatio = picture.w + " / " + picture.h;
            var land = document.getElementById("land");
            land.setAttribute("viewBox", "0 0 " + picture.w + " " + picture.h);
            land.querySelector("path").setAttribute("d", picture.land);
            var context = canvas.getContext("2d");
            context.setTransform(ratio, 0, 0, ratio, 0, 0);
            context.clearRect(0, 0, picture.w, picture.h);
            hits = [];
            var drawn = 0;
            var legend = document.getElementById("legend");
            legend.textContent = "";
            // Lines of swapped rows first (under everything), then the rows that passed, then the
            // rejected rows on top.
            picture.layers.forEach(function (layer) {
              var i, pairs = layer.pairs;
              if (!pairs) { return; }
              context.strokeStyle = layer.color;
              context.lineWidth = 0.6;
              context.globalAlpha = 0.3;
              context.beginPath();
              for (i = 0; i < pairs.length; i += 4) {
                context.moveTo(pairs[i], pairs[i + 1]);
                context.lineTo(pairs[i + 2], pairs[i + 3]);
              }
              context.stroke();
              context.globalAlpha = 0.8;
              context.lineWidth = 1;
              for (i = 0; i < pairs.length; i += 4) {
                context.beginPath();
                context.arc(pairs[i + 2], pairs[i + 3], 2.5, 0, 2 * Math.PI);
                context.stroke();
              }
              context.globalAlpha = 1;
            });
            // Lines and polygons under the dots: polygons filled lightly, both outlined.
            picture.layers.forEach(function (layer) {
              if (!layer.shapes) { return; }
              context.strokeStyle = layer.color;
              context.fillStyle = layer.color;
              context.lineWidth = 1.2;
              layer.shapes.forEach(function (shape) {
                context.beginPath();
                for (var p = 1; p < shape.length; p++) {
                  var path = shape[p];
                  for (var i = 0; i < path.length; i += 2) {
                    if (i === 0) { context.moveTo(path[i], path[i + 1]); } else { context.lineTo(path[i], path[i + 1]); }
                  }
                  if (shape[0]) { context.closePath(); }
                }
                if (shape[0]) {
                  context.globalAlpha = 0.25;
                  context.fill("evenodd");
                }
                context.globalAlpha = 0.9;
                context.stroke();
              });
              context.globalAlpha = 1;
            });
            picture.layers.forEach(function (layer) {
              var i, cells = layer.cells;
              if (!cells) { return; }
              context.fillStyle = layer.color;
              var most = 1;
              for (i = 2; i < cells.length; i += 3) { most = Math.max(most, cells[i]); }
              // Few points: dots one can see; many: pixels shaded by how many rows each holds.
              var radius = cells.length < 1500 ? 3.5 : cells.length < 15000 ? 2.2 : 1.4;
              for (i = 0; i < cells.length; i += 3) {
                context.globalAlpha = 0.5 + 0.5 * Math.log(1 + cells[i + 2]) / Math.log(1 + most);
                context.beginPath();
                context.arc(cells[i], cells[i + 1], radius, 0, 2 * Math.PI);
                context.fill();
                drawn += 1;
              }
              context.globalAlpha = 1;
            });
            // The coast again over the dense pixels, thin, so that the land shows through them.
            if (window.Path2D && picture.land) {
              context.strokeStyle = "rgba(71,85,105,0.55)";
              context.lineWidth = 0.6;
              context.stroke(new Path2D(picture.land));
            }
            picture.layers.forEach(function (layer) {
              var i, points = layer.points;
              if (!points) { return; }
              context.fillStyle = layer.color;
              context.strokeStyle = "rgba(0,0,0,0.35)";
              context.lineWidth = 0.8;
              for (i = 0; i < points.length; i += 3) {
                context.beginPath();
                context.arc(points[i], points[i + 1], 3.5, 0, 2 * Math.PI);
                context.fill();
                context.stroke();
                hits.push([points[i], points[i + 1], points[i + 2], layer.label]);
                drawn += 1;
              }
            });
            picture.layers.forEach(function (layer) {
              var item = document.createElement("li");
              var dot = document.createElement("i");
              dot.style.background = layer.color;
              item.appendChild(dot);
              var shown = layer.cells ? "" : (layer.shown < layer.total ? " (" + layer.shown.toLocaleString("en") + " shown)" : "");
              item.appendChild(document.createTextNode(layer.label + ": " + layer.total.toLocaleString("en") + shown));
              legend.appendChild(item);
              if (layer.pairs && layer.pairs.length) {
                var swapped = document.createElement("li");
                var ring = document.createElement("i");
                ring.className = "ring";
                ring.style.borderColor = layer.color;
                swapped.appendChild(ring);
                swapped.appendChild(document.createTextNode("where they land with the columns swapped"));
                legend.appendChild(swapped);
              }
            });
            document.getElementById("caption").textContent = picture.caption || "";
            var scale = document.getElementById("scale");
            if (picture.scale) {
              scale.hidden = false;
              scale.querySelector("span").textContent = picture.scale.label;
              scale.style.width = (100 * picture.scale.px / picture.w) + "%";
            } else {
              scale.hidden = true;
            }
            root.setAttribute("data-rendered", String(drawn));
          }
          function nearest(event) {
            var canvas = document.getElementById("points");
            var box = canvas.getBoundingClientRect();
            var unit = box.width / (canvas.width / (window.devicePixelRatio || 1));
            var x = (event.clientX - box.left) / unit, y = (event.clientY - box.top) / unit;
            var best = null, bestDistance = 49;
            hits.forEach(function (hit) {
              var d = (hit[0] - x) * (hit[0] - x) + (hit[1] - y) * (hit[1] - y);
              if (d < bestDistance) { bestDistance = d; best = hit; }
            });
            return best ? { hit: best, left: best[0] * unit, top: best[1] * unit } : null;
          }
          var map = document.getElementById("map");
          var tip = document.getElementById("tip");
          map.addEventListener("mousemove", function (event) {
            var found = nearest(event);
            if (!found) { tip.hidden = true; map.style.cursor = ""; return; }
            tip.hidden = false;
            tip.textContent = "line " + found.hit[2] + " \\u00b7 " + found.hit[3];
            tip.style.left = (found.left + 8) + "px";
            tip.style.top = (found.top - 26) + "px";
            map.style.cursor = document.getElementById("line-" + found.hit[2]) ? "pointer" : "";
          });
          map.addEventListener("mouseleave", function () { tip.hidden = true; });
          map.addEventListener("click", function (event) {
            var found = nearest(event);
            if (found && document.getElementById("line-" + found.hit[2])) { location.hash = "line-" + found.hit[2]; }
          });
          var started = window.performance ? performance.now() : 0;
          draw(JSON.parse(document.getElementById("picture").textContent));
          if (window.performance) { root.setAttribute("data-render-ms", String(Math.round(performance.now() - started))); }
          var live = document.body.getAttribute("data-live");
          if (live && window.fetch) {
            setInterval(function () {
              fetch(live, { cache: "no-store" })
                .then(function (response) { return response.ok ? response.json() : null; })
                .then(function (picture) { if (picture) { draw(picture); } })
                .catch(function () {});
            }, 2000);
          }
        })();
        """
}
