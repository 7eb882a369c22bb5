#!/usr/bin/env python3
"""Makes the .ods / .xls / zipped-CSV fixtures of the spreadsheet tests.

Regenerate (from the repository root; needs xlwt: `pip install xlwt==1.3.0`, or Debian's python3-xlwt):

    python3 Tests/Fixtures/sheets/make_fixtures.py

Everything is deterministic: the rows come from random.Random(SEED), and every ZIP member gets a fixed
timestamp, so running the script twice gives byte-identical files (with the same zlib and xlwt).
Writes, beside this script:

  twin.csv            20,000 generated rows plus the header  id,name,lon,lat,amount,opened,code
                      UTF-8, LF, final newline, RFC 4180 quoting only where needed.
                      id 1..20000; name short text with é ü ß 日本, sometimes a comma, a double quote or
                      an ampersand; lon in [-180,180], lat in [-85,85], at most 6 decimals, shortest form
                      (repr(float(text)) == text, with integers written without ".0", never an exponent);
                      amount at most 2 decimals, shortest form; opened an ISO date 1990-01-01..2030-12-31;
                      code five digits with leading zeros ("00123"), always text.
                      Every 97th row (id % 97 == 0) has no amount, every 89th (id % 89 == 0) no name.
  twin.ods            the same table, one sheet "stores": id/lon/lat/amount are float cells whose
                      office:value is the CSV text, opened a date cell (office:date-value), name and code
                      string cells, empty cells <table:table-cell/>; ends with LibreOffice's huge repeated
                      empty row. Written by hand with zipfile (mimetype first and stored).
  twin.xls            the same table as BIFF8 (xlwt), sheet "stores": numbers as numbers, opened as a date
                      number with format YYYY-MM-DD, name and code as text, empty cells not written at all.
  twin.csv.zip        a ZIP holding twin.csv only.
  two-members.zip     a ZIP holding a.csv (header + rows 1-10 of twin.csv) and b.csv (header + rows 11-20).
  cells.ods           sheet "cells" (kind,value: one row per CELL_CASES entry) and sheet "repeat"
                      (number-columns-repeated / number-rows-repeated cases).
  cells.xls           sheet "cells", the same cases written by xlwt.
  cells.expected.csv  kind,value: the exact text the reader must give for each case (both files).
  repeat.expected.csv the exact rows (header included) expected from cells.ods sheet "repeat".
  dates1904.xls       a workbook in the 1904 date system (DATEMODE=1), sheet "cells": date 2024-02-29.
  dates1904.expected.csv  its expected kind,value rows.

Notes for readers of these files:
  * .ods: the last row of every sheet is one empty row repeated down to row 1,048,576 (LibreOffice's
    sheet height) with 1024 empty columns; twin.ods's content.xml is about 16 MB unpacked.
  * .xls (xlwt 1.3.0): whole numbers that fit 30 bits are RK/MULRK integers, numbers with at most two
    decimals are usually RK "x100" values (decode as Double(i) / 100, not i * 0.01), the rest NUMBER;
    dates are plain numbers whose XF points to a custom FORMAT ("YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS");
    the date-time 2024-02-29 13:45:00 is stored as 45351.572916666664 (round to the second); True is a
    BOOLERR record; "@" and "0%" are built-in formats 49 and 9; the SST of twin.xls spans CONTINUE
    records. dates1904.xls stores 2024-02-29 as 43889 (45351 in the 1900 system).
"""
import csv
import datetime
import io
import os
import random
import re
import sys
import zipfile
from xml.sax.saxutils import escape

import xlwt

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240229
ROWS = 20000
HEADER = ["id", "name", "lon", "lat", "amount", "opened", "code"]
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
ODS_MAX_ROWS = 1048576   # LibreOffice's sheet height: the trailing empty row is repeated up to it
ODS_MAX_COLS = 1024


# ----------------------------------------------------------------------------------------- twin rows

def decimal_text(units, decimals):
    """units / 10**decimals in shortest form: no trailing zeros, no ".0", no exponent, no "-0"."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    whole, frac = divmod(units, 10 ** decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    text = sign + str(whole) + ("." + frac_text if frac_text else "")
    return "0" if text == "-0" else text


def round_trips(text):
    """True when a spreadsheet double prints back as exactly this text (Python's repr is shortest)."""
    shown = repr(float(text))
    if shown.endswith(".0"):
        shown = shown[:-2]
    return shown == text and "e" not in shown


def coordinate(rng, limit):
    while True:
        decimals = rng.choice([6, 6, 6, 6, 5, 4, 3, 2, 1, 0])
        text = decimal_text(rng.randint(-limit * 10 ** decimals, limit * 10 ** decimals), decimals)
        if round_trips(text):   # rejects e.g. 0.00005 (Python and Swift print 5e-05)
            return text


WORDS = ["Café", "Müller", "Straße", "日本", "Bäckerei", "Zürich", "Élan", "Nord", "Süd", "Markt",
         "Post", "Haus", "Kiosk", "Grüße", "Tokyo", "Fähre", "Brücke", "Mühle", "Crème", "Ost"]


def name(rng):
    words = rng.sample(WORDS, rng.choice([1, 2, 2, 3]))
    roll = rng.random()
    if roll < 0.04:
        return words[0] + ", " + " ".join(words[1:] or ["Mitte"])        # a comma
    if roll < 0.07:
        return words[0] + ' "' + " ".join(words[1:] or ["Zur Post"]) + '"'  # double quotes
    if roll < 0.08:
        return words[0] + " & Söhne"                                       # XML escaping in .ods
    text = " ".join(words)
    if rng.random() < 0.3:
        text += " " + str(rng.randint(1, 99))
    return text


def twin_rows():
    """[id, name, lon, lat, amount, opened, code] as CSV text (opened is also kept as a date)."""
    rng = random.Random(SEED)
    first, last = datetime.date(1990, 1, 1), datetime.date(2030, 12, 31)
    span = (last - first).days
    rows = []
    for ident in range(1, ROWS + 1):
        row_name = name(rng)
        lon = coordinate(rng, 180)
        lat = coordinate(rng, 85)
        decimals = rng.choice([2, 2, 1, 0])   # -1000 .. 50000, in cents, tenths or whole units
        amount = decimal_text(rng.randint(-100000, 5000000) // 10 ** (2 - decimals), decimals)
        opened = (first + datetime.timedelta(days=rng.randint(0, span))).isoformat()
        code = "%05d" % rng.randint(0, 9999)   # always at least one leading zero
        if ident % 89 == 0:
            row_name = ""
        if ident % 97 == 0:
            amount = ""
        rows.append([str(ident), row_name, lon, lat, amount, opened, code])
    return rows


def csv_text(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return out.getvalue()


def write_file(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_zip(name, members, level=9):
    """members: [(member name, bytes or str, stored?)]; fixed timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(os.path.join(HERE, name), "w") as archive:
        for member, data, stored in members:
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if isinstance(data, str):
                data = data.encode("utf-8")
            archive.writestr(info, data, compresslevel=None if stored else level)


# ----------------------------------------------------------------------------------------- ODS

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "number": "urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "calcext": "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0",
}
XMLNS = " ".join('xmlns:%s="%s"' % item for item in NS.items())

# Number styles as LibreOffice writes them (N = data styles, ce = cell styles).
ODS_AUTO_STYLES = (
    '<number:date-style style:name="N1"><number:year number:style="long"/><number:text>-</number:text>'
    '<number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/>'
    '</number:date-style>'
    '<number:date-style style:name="N2"><number:year number:style="long"/><number:text>-</number:text>'
    '<number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/>'
    '<number:text> </number:text><number:hours number:style="long"/><number:text>:</number:text>'
    '<number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/>'
    '</number:date-style>'
    '<number:percentage-style style:name="N3"><number:number number:decimal-places="0" '
    'number:min-decimal-places="0" number:min-integer-digits="1"/><number:text>%</number:text>'
    '</number:percentage-style>'
    '<number:currency-style style:name="N4"><number:number number:decimal-places="2" '
    'number:min-decimal-places="2" number:min-integer-digits="1" number:grouping="true"/>'
    '<number:text> </number:text><number:currency-symbol number:language="de" number:country="DE">€'
    '</number:currency-symbol></number:currency-style>'
    '<style:style style:name="ce1" style:family="table-cell" style:parent-style-name="Default" '
    'style:data-style-name="N1"/>'
    '<style:style style:name="ce2" style:family="table-cell" style:parent-style-name="Default" '
    'style:data-style-name="N2"/>'
    '<style:style style:name="ce3" style:family="table-cell" style:parent-style-name="Default" '
    'style:data-style-name="N3"/>'
    '<style:style style:name="ce4" style:family="table-cell" style:parent-style-name="Default" '
    'style:data-style-name="N4"/>'
    '<style:style style:name="T1" style:family="text"><style:text-properties fo:font-weight="bold"/>'
    '</style:style>'
)


def ods_paragraphs(text):
    """Cell text as <text:p> elements, one per line. ODF collapses white space, so a run of spaces between
    words keeps one literal space and the rest becomes <text:s text:c="n"/>; at either end of a line the
    whole run is <text:s>."""
    out = []
    for line in text.split("\n"):
        pieces = re.split("( +)", line)   # words at even positions, space runs at odd ones
        body = []
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                body.append(escape(piece))
                continue
            between = pieces[i - 1] != "" and pieces[i + 1] != ""
            rest = len(piece) - (1 if between else 0)
            body.append((" " if between else "") + ('<text:s text:c="%d"/>' % rest if rest > 1 else
                                                    "<text:s/>" if rest == 1 else ""))
        out.append("<text:p>%s</text:p>" % "".join(body))
    return "".join(out)


def ods_string(text, calcext=False):
    extra = ' calcext:value-type="string"' if calcext else ""
    return '<table:table-cell office:value-type="string"%s>%s</table:table-cell>' % (extra, ods_paragraphs(text))


def ods_float(text, calcext=False):
    extra = ' calcext:value-type="float"' if calcext else ""
    return ('<table:table-cell office:value-type="float" office:value="%s"%s><text:p>%s</text:p>'
            '</table:table-cell>' % (text, extra, text))


def ods_date(value, shown, style="ce1", calcext=False):
    extra = ' calcext:value-type="date"' if calcext else ""
    return ('<table:table-cell table:style-name="%s" office:value-type="date" office:date-value="%s"%s>'
            '<text:p>%s</text:p></table:table-cell>' % (style, value, extra, shown))


ODS_EMPTY = "<table:table-cell/>"


def ods_row(cells):
    """A row; consecutive identical cells are folded into table:number-columns-repeated, like LibreOffice."""
    out, i = [], 0
    while i < len(cells):
        j = i
        while j + 1 < len(cells) and cells[j + 1] == cells[i]:
            j += 1
        cell = cells[i]
        if j > i:
            cell = cell.replace("<table:table-cell", '<table:table-cell table:number-columns-repeated="%d"' % (j - i + 1), 1)
        out.append(cell)
        i = j + 1
    return "<table:table-row>%s</table:table-row>" % "".join(out)


def ods_trailer(used_rows):
    """LibreOffice ends every sheet with one empty row repeated to the bottom of the sheet."""
    return ('<table:table-row table:number-rows-repeated="%d"><table:table-cell table:number-columns-repeated="%d"/>'
            "</table:table-row>" % (ODS_MAX_ROWS - used_rows, ODS_MAX_COLS))


def ods_table(name, row_xml, used_rows):
    return ('<table:table table:name="%s"><table:table-column table:number-columns-repeated="%d"/>%s%s'
            "</table:table>" % (escape(name), ODS_MAX_COLS, "".join(row_xml), ods_trailer(used_rows)))


def write_ods(name, tables):
    content = ('<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content %s office:version="1.2">'
               "<office:automatic-styles>%s</office:automatic-styles><office:body><office:spreadsheet>%s"
               "</office:spreadsheet></office:body></office:document-content>" % (XMLNS, ODS_AUTO_STYLES, "".join(tables)))
    styles = ('<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles %s office:version="1.2">'
              '<office:styles><style:default-style style:family="table-cell"/>'
              '<style:style style:name="Default" style:family="table-cell"/></office:styles>'
              "</office:document-styles>" % XMLNS)
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:version="1.2" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    write_zip(name, [
        ("mimetype", "application/vnd.oasis.opendocument.spreadsheet", True),
        ("META-INF/manifest.xml", manifest, False),
        ("content.xml", content, False),
        ("styles.xml", styles, False),
    ])


def twin_ods(rows):
    xml = [ods_row([ods_string(h) for h in HEADER])]
    for ident, row_name, lon, lat, amount, opened, code in rows:
        xml.append(ods_row([
            ods_float(ident),
            ods_string(row_name) if row_name else ODS_EMPTY,
            ods_float(lon),
            ods_float(lat),
            ods_float(amount) if amount else ODS_EMPTY,
            ods_date(opened, opened),
            ods_string(code),
        ]))
    write_ods("twin.ods", [ods_table("stores", xml, len(rows) + 1)])


# ----------------------------------------------------------------------------------------- XLS

XLS_DATE = xlwt.easyxf(num_format_str="YYYY-MM-DD")
XLS_DATETIME = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
XLS_TEXT = xlwt.easyxf(num_format_str="@")
XLS_PERCENT = xlwt.easyxf(num_format_str="0%")
XLS_CURRENCY = xlwt.easyxf(num_format_str='#,##0.00 "€"')
XLS_WRAP = xlwt.easyxf("alignment: wrap on")


def number(text):
    """The double a spreadsheet holds for this CSV text (whole numbers as int, which xlwt stores the same)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def twin_xls(rows):
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("stores")
    for c, h in enumerate(HEADER):
        sheet.write(0, c, h)
    for r, (ident, row_name, lon, lat, amount, opened, code) in enumerate(rows, start=1):
        sheet.write(r, 0, int(ident))
        if row_name:
            sheet.write(r, 1, row_name)
        sheet.write(r, 2, number(lon))
        sheet.write(r, 3, number(lat))
        if amount:
            sheet.write(r, 4, number(amount))
        sheet.write(r, 5, datetime.date.fromisoformat(opened), XLS_DATE)
        sheet.write(r, 6, code, XLS_TEXT)
    book.save(os.path.join(HERE, "twin.xls"))


# ----------------------------------------------------------------------------------------- value cases

DATE = datetime.date(2024, 2, 29)
DATETIME = datetime.datetime(2024, 2, 29, 13, 45, 0)

# (kind, expected text, ODS <table:table-cell> XML, (xls value, xls style))
CELL_CASES = [
    ("text_leading_zeros", "007", ods_string("007", True), ("007", XLS_TEXT)),
    ("integer", "42", ods_float("42", True), (42, None)),
    ("negative_decimal", "-3.25", ods_float("-3.25", True), (-3.25, None)),
    ("large_integer", "123456789012", ods_float("123456789012", True), (123456789012, None)),
    ("small_decimal", "0.000125", ods_float("0.000125", True), (0.000125, None)),
    ("date", "2024-02-29", ods_date("2024-02-29", "2024-02-29", "ce1", True), (DATE, XLS_DATE)),
    ("datetime", "2024-02-29T13:45:00",
     ods_date("2024-02-29T13:45:00", "2024-02-29 13:45:00", "ce2", True), (DATETIME, XLS_DATETIME)),
    ("boolean", "true",
     '<table:table-cell office:value-type="boolean" office:boolean-value="true" calcext:value-type="boolean">'
     "<text:p>TRUE</text:p></table:table-cell>", (True, None)),
    ("percentage", "0.5",
     '<table:table-cell table:style-name="ce3" office:value-type="percentage" office:value="0.5" '
     'calcext:value-type="percentage"><text:p>50%</text:p></table:table-cell>', (0.5, XLS_PERCENT)),
    ("currency", "12.5",
     '<table:table-cell table:style-name="ce4" office:value-type="currency" office:currency="EUR" '
     'office:value="12.5" calcext:value-type="currency"><text:p>12,50 €</text:p></table:table-cell>',
     (12.5, XLS_CURRENCY)),
    ("unicode", "Zürich 日本", ods_string("Zürich 日本", True), ("Zürich 日本", None)),
    ("comma_quote", 'a, "b"', ods_string('a, "b"', True), ('a, "b"', None)),
    ("paragraphs", "line1\nline2",
     '<table:table-cell office:value-type="string" calcext:value-type="string">'
     "<text:p>line1</text:p><text:p>line2</text:p></table:table-cell>", ("line1\nline2", XLS_WRAP)),
    ("spaces", "a   b",
     '<table:table-cell office:value-type="string" calcext:value-type="string">'
     '<text:p>a<text:s text:c="3"/>b</text:p></table:table-cell>', ("a   b", None)),
    # Extras beyond the brief, at the end so they are easy to drop:
    ("escaped", '<tag> & "q"', ods_string('<tag> & "q"', True), ('<tag> & "q"', None)),
    ("span", "bold part",
     '<table:table-cell office:value-type="string" calcext:value-type="string">'
     '<text:p>bold <text:span text:style-name="T1">part</text:span></text:p></table:table-cell>',
     ("bold part", None)),
    ("annotated", "note",   # the comment's <text:p> is not part of the value
     '<table:table-cell office:value-type="string" calcext:value-type="string">'
     "<office:annotation><dc:date>2024-02-29T00:00:00</dc:date><text:p>a comment</text:p></office:annotation>"
     "<text:p>note</text:p></table:table-cell>", ("note", None)),
]

# Sheet "repeat" of cells.ods: (row XML, expected CSV rows).
REPEAT_ROWS = [
    (ods_row([ods_string("a"), ods_string("b"), ods_string("c")]), [["a", "b", "c"]]),
    # one value cell repeated over three columns
    ('<table:table-row><table:table-cell table:number-columns-repeated="3" office:value-type="string">'
     "<text:p>x</text:p></table:table-cell></table:table-row>", [["x", "x", "x"]]),
    # one row repeated three times
    ('<table:table-row table:number-rows-repeated="3">%s%s%s</table:table-row>'
     % (ods_float("1"), ods_float("2"), ods_float("3")), [["1", "2", "3"]] * 3),
    # an empty cell in the middle, written as a (single) repeated empty cell
    ('<table:table-row>%s<table:table-cell table:number-columns-repeated="1"/>%s</table:table-row>'
     % (ods_float("4"), ods_float("6")), [["4", "", "6"]]),
    # two leading empty cells folded into one element
    ('<table:table-row><table:table-cell table:number-columns-repeated="2"/>%s</table:table-row>'
     % ods_float("9"), [["", "", "9"]]),
    # trailing empty cells repeated to the sheet's right edge (LibreOffice does this for formatted rows)
    ('<table:table-row>%s<table:table-cell table:number-columns-repeated="%d"/></table:table-row>'
     % (ods_float("10"), ODS_MAX_COLS - 1), [["10", "", ""]]),
]


def cells_ods():
    cell_rows = [ods_row([ods_string("kind", True), ods_string("value", True)])]
    cell_rows += ["<table:table-row>%s%s</table:table-row>" % (ods_string(kind, True), cell)
                  for kind, _, cell, _ in CELL_CASES]
    repeat_used = sum(len(expected) for _, expected in REPEAT_ROWS)
    write_ods("cells.ods", [
        ods_table("cells", cell_rows, len(CELL_CASES) + 1),
        ods_table("repeat", [xml for xml, _ in REPEAT_ROWS], repeat_used),
    ])
    expected = [["kind", "value"]] + [[kind, text] for kind, text, _, _ in CELL_CASES]
    write_file("cells.expected.csv", csv_text(expected))
    write_file("repeat.expected.csv", csv_text([row for _, rows in REPEAT_ROWS for row in rows]))


def cells_xls():
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("cells")
    sheet.write(0, 0, "kind")
    sheet.write(0, 1, "value")
    for r, (kind, _, _, (value, style)) in enumerate(CELL_CASES, start=1):
        sheet.write(r, 0, kind)
        if style is None:
            sheet.write(r, 1, value)
        else:
            sheet.write(r, 1, value, style)
    book.save(os.path.join(HERE, "cells.xls"))


def dates1904_xls():
    book = xlwt.Workbook(encoding="utf-8")
    book.dates_1904 = True        # writes DATEMODE=1; xlwt then counts days from 1904-01-01
    sheet = book.add_sheet("cells")
    sheet.write(0, 0, "kind")
    sheet.write(0, 1, "value")
    sheet.write(1, 0, "date")
    sheet.write(1, 1, DATE, XLS_DATE)
    book.save(os.path.join(HERE, "dates1904.xls"))
    write_file("dates1904.expected.csv", csv_text([["kind", "value"], ["date", "2024-02-29"]]))


# ----------------------------------------------------------------------------------------- main

def main():
    rows = twin_rows()
    twin = csv_text([HEADER] + rows)
    write_file("twin.csv", twin)
    write_zip("twin.csv.zip", [("twin.csv", twin, False)])
    write_zip("two-members.zip", [
        ("a.csv", csv_text([HEADER] + rows[:10]), False),
        ("b.csv", csv_text([HEADER] + rows[10:20]), False),
    ])
    twin_ods(rows)
    twin_xls(rows)
    cells_ods()
    cells_xls()
    dates1904_xls()
    names = sorted(n for n in os.listdir(HERE) if not n.endswith(".py"))
    print("written:", ", ".join(names), file=sys.stderr)


if __name__ == "__main__":
    main()
