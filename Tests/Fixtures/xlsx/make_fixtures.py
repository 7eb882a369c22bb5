#!/usr/bin/env python3
"""Makes the .xlsx fixtures of the spreadsheet tests with openpyxl (pip install openpyxl==3.1.5),
a real spreadsheet writer, plus one workbook written part by part for the cell kinds openpyxl
does not write (inline strings, formula string results, prefixed tags, cells without r).

    python3 Tests/Fixtures/xlsx/make_fixtures.py

Writes, beside this script:
  cells.xlsx     sheet "Stores": every cell kind (see the rows below)
  multi.xlsx     sheets "Read me" and "Sites": sheet selection by name and position
  dates1904.xlsx a workbook in the 1904 date system
  merged.xlsx    a header cell merged across two columns
  handmade.xlsx  inline strings, t="str", an x: prefix, a row without r, merged-looking header
  twin.csv / twin.xlsx  the same 5,000 generated rows as CSV and as a workbook
"""
import csv, datetime, os, subprocess, sys, zipfile
import openpyxl
from openpyxl.styles import numbers

HERE = os.path.dirname(os.path.abspath(__file__))


def cells():
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Stores"
    sheet.append(["id", "name", "zip", "lat", "lon", "opened", "opened_at", "open", "big_id", "rating", "note"])
    rows = [
        # leading zeros kept in a text cell; a date; a date-time; a boolean; a 16-digit id as text
        (1, "Kaffeehaus Mitte", "01067", 52.520008, 13.404954, datetime.date(2021, 3, 14),
         datetime.datetime(2021, 3, 14, 9, 30, 0), True, "1234567890123456", 4.5, "line one\nline two"),
        # a whole number, a negative coordinate, a float with many digits, false
        (2, "Café \"Zur Post\", Süd", "80331", -33.8688, 151.2093, datetime.date(1999, 12, 31),
         datetime.datetime(2000, 1, 1, 0, 0, 1), False, 9007199254740993, 3.14159265358979, None),
        # a large and a tiny number (Excel stores them with an exponent)
        (3, "Tiny", "00001", 0.0000001, 1e-7 + 10, datetime.date(1900, 3, 1), None, None, 12345678901234567890, 1e20, "x"),
        # an error cell: the row is rejected as invalid_cell
        (4, "Broken", "12345", "#N/A", 10.0, None, None, None, None, None, None),
    ]
    for row in rows:
        sheet.append(list(row))
    for row in sheet.iter_rows(min_row=2):
        row[2].number_format = numbers.FORMAT_TEXT          # zip: text
        row[5].number_format = "dd.mm.yyyy"                  # opened: a custom date format
        row[6].number_format = "yyyy-mm-dd hh:mm:ss"         # opened_at: date and time
        row[8].number_format = numbers.FORMAT_TEXT
    # A gap: row 7 has cells in A, B, D, E only (row 6 is empty and skipped).
    sheet["A7"] = 7
    sheet["B7"] = "Gap"
    sheet["D7"] = 48.85
    sheet["E7"] = 2.35
    # A value right of the header: the row is rejected as malformed_row.
    sheet.append([8, "Too wide", "1", 1.5, 1.5, None, None, None, None, None, None, "stray"])
    book.save(os.path.join(HERE, "cells.xlsx"))


def multi():
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Read me"
    notes["A1"] = "The data is on the second sheet."
    sites = book.create_sheet("Sites")
    sites.append(["code", "lat", "lon"])
    sites.append(["S1", 50.5, 4.5])
    sites.append(["S2", 51.5, 5.5])
    book.save(os.path.join(HERE, "multi.xlsx"))


def merged():
    """A header cell merged across two columns (B1:C1 "Address")."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sites"
    sheet.append(["id", "Address", None, "lat", "lon"])
    sheet.merge_cells("B1:C1")
    sheet.append([1, "Main St 1", "Berlin", 52.5, 13.4])
    book.save(os.path.join(HERE, "merged.xlsx"))


def dates1904():
    book = openpyxl.Workbook()
    book.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    sheet = book.active
    sheet.append(["id", "lat", "lon", "day"])
    sheet.append([1, 10.5, 20.5, datetime.date(2024, 2, 29)])
    sheet["D2"].number_format = "yyyy-mm-dd"
    book.save(os.path.join(HERE, "dates1904.xlsx"))


def handmade():
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="/xl/worksheets/sheet1.xml"/>'
        '</Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?>'
        '<x:workbook xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<x:sheets><x:sheet name="Export" sheetId="1" r:id="rId1"/></x:sheets></x:workbook>',
        "xl/worksheets/sheet1.xml": '<?xml version="1.0" encoding="UTF-8"?>'
        '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<x:dimension ref="A1:D4"/><x:sheetData>'
        '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>id</x:t></x:is></x:c>'
        '<x:c r="B1" t="inlineStr"><x:is><x:r><x:t>na</x:t></x:r><x:r><x:t>me</x:t></x:r></x:is></x:c>'
        '<x:c r="C1" t="inlineStr"><x:is><x:t>lat</x:t></x:is></x:c><x:c r="D1" t="inlineStr"><x:is><x:t>lon</x:t></x:is></x:c></x:row>'
        '<x:row r="2"><x:c r="A2"><x:v>1</x:v></x:c><x:c r="B2" t="str"><x:f>CONCAT("A","&amp;B")</x:f><x:v>A&amp;B</x:v></x:c>'
        '<x:c r="C2"><x:v>45.5</x:v></x:c><x:c r="D2"><x:v>6.25</x:v></x:c></x:row>'
        '<x:row><x:c><x:v>2</x:v></x:c><x:c t="inlineStr"><x:is><x:t xml:space="preserve"> spaced_x0009_tab </x:t></x:is></x:c>'
        '<x:c><x:v>1.5E1</x:v></x:c><x:c><x:v>-7.0000000000000009</x:v></x:c></x:row>'
        '<x:row r="4" spans="1:4"/>'
        '<x:row r="5"><x:c r="A5"><x:v>3</x:v></x:c><x:c r="B5" t="inlineStr"><x:is><x:t><![CDATA[<raw> & ready]]></x:t></x:is></x:c>'
        '<x:c r="C5"><x:v>1</x:v></x:c><x:c r="D5"><x:v>2</x:v></x:c></x:row>'
        '</x:sheetData></x:worksheet>',
    }
    with zipfile.ZipFile(os.path.join(HERE, "handmade.xlsx"), "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)


def twin(rows=5000):
    """The benchmark generator's rows as CSV and as a workbook: numbers as numbers, the rest as text."""
    shared = os.path.join(HERE, "..", "..", "..", "..", "shared", "bench", "gen_csv.py")
    csv_path = os.path.join(HERE, "twin.csv")
    subprocess.run([sys.executable, shared, str(rows), "--seed", "42", "--out", csv_path], check=True)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("twin")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        sheet.append(header)
        for row in reader:
            values = []
            for name, value in zip(header, row):
                if name in ("id",):
                    values.append(int(value))
                elif name in ("lat", "lon", "value") and value != "":
                    number = float(value)
                    # Written as the CSV's digits would read back: Python's repr is the shortest.
                    values.append(number if repr(number) == value else value)
                else:
                    values.append(value)
            sheet.append(values)
    book.save(os.path.join(HERE, "twin.xlsx"))


if __name__ == "__main__":
    cells()
    multi()
    dates1904()
    merged()
    handmade()
    twin()
    print("written:", ", ".join(sorted(n for n in os.listdir(HERE) if n.endswith((".xlsx", ".csv")))))
