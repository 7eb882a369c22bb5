import Testing

@testable import MapsembleImport

@Suite("Share links of spreadsheet services become the URLs of their exports")
struct ShareLinkTests {
    private static let sheet = "https://docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
    private static let published = "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx7Yk_Ab-Cd3EfGh"

    private func google(_ url: String, _ format: String = "csv") -> ShareLink.Export {
        ShareLink.Export(url: url, format: format, service: "Google Sheets")
    }

    @Test("a Google Sheets edit or view link: the sheet as CSV, gid from the fragment or else the query")
    func googleSheets() {
        let sheet = Self.sheet
        let cases: [(String, String)] = [
            ("\(sheet)/edit#gid=1234567", "\(sheet)/export?format=csv&gid=1234567"),
            ("\(sheet)/edit?usp=sharing", "\(sheet)/export?format=csv"),
            ("\(sheet)/edit?gid=42#gid=42", "\(sheet)/export?format=csv&gid=42"),
            ("\(sheet)/edit?gid=7&usp=sharing", "\(sheet)/export?format=csv&gid=7"),
            ("\(sheet)/edit?gid=1#gid=2", "\(sheet)/export?format=csv&gid=2"),
            ("\(sheet)/edit#gid=99&range=A1:C3", "\(sheet)/export?format=csv&gid=99"),
            ("\(sheet)/edit#gid=0", "\(sheet)/export?format=csv&gid=0"),
            ("\(sheet)/edit#gid=abc", "\(sheet)/export?format=csv"),
            ("\(sheet)/view", "\(sheet)/export?format=csv"),
            ("\(sheet)/htmlview", "\(sheet)/export?format=csv"),
            ("\(sheet)/htmlview?gid=5", "\(sheet)/export?format=csv&gid=5"),
            ("\(sheet)/", "\(sheet)/export?format=csv"),
            ("\(sheet)", "\(sheet)/export?format=csv"),
            (
                "https://docs.google.com/spreadsheets/u/0/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit#gid=5",
                "\(sheet)/export?format=csv&gid=5"
            ),
            (
                "https://docs.google.com/spreadsheets/u/1/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/htmlview",
                "\(sheet)/export?format=csv"
            ),
            (
                "https://Docs.Google.COM/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit#gid=3",
                "\(sheet)/export?format=csv&gid=3"
            ),
            ("  \(sheet)/edit#gid=8\n", "\(sheet)/export?format=csv&gid=8"),
        ]
        for (link, url) in cases {
            #expect(ShareLink.export(link) == google(url), "\(link)")
        }
    }

    @Test("a Google link's resource key goes with the export; its other query items do not")
    func googleResourceKey() {
        let sheet = Self.sheet
        #expect(
            ShareLink.export("\(sheet)/edit?usp=sharing&resourcekey=0-AbC_dEf&ouid=1234#gid=6")
                == google("\(sheet)/export?format=csv&gid=6&resourcekey=0-AbC_dEf"))
    }

    @Test("a sheet published to the web: its CSV, one sheet when a gid is given")
    func googlePublished() {
        let published = Self.published
        let cases: [(String, String)] = [
            ("\(published)/pubhtml?gid=0&single=true", "\(published)/pub?output=csv&gid=0&single=true"),
            ("\(published)/pubhtml?gid=1873&single=true", "\(published)/pub?output=csv&gid=1873&single=true"),
            ("\(published)/pubhtml", "\(published)/pub?output=csv"),
            ("\(published)/pubhtml?widget=true&headers=false", "\(published)/pub?output=csv"),
            ("\(published)/pubhtml/sheet?headers=false&gid=8", "\(published)/pub?output=csv&gid=8&single=true"),
            ("\(published)/pub?output=csv", "\(published)/pub?output=csv"),
            ("\(published)/pub?gid=3&single=true&output=csv", "\(published)/pub?output=csv&gid=3&single=true"),
            ("\(published)/pub?output=html", "\(published)/pub?output=csv"),
        ]
        for (link, url) in cases {
            #expect(ShareLink.export(link) == google(url), "\(link)")
        }
        #expect(ShareLink.export("\(published)/pub?output=xlsx") == google("\(published)/pub?output=xlsx", "xlsx"))
        #expect(ShareLink.export("\(published)/pub?output=pdf") == nil)
    }

    @Test("a Google export URL is kept as it is, its format told")
    func googleExport() {
        let sheet = Self.sheet
        #expect(ShareLink.export("\(sheet)/export?format=csv&gid=3") == google("\(sheet)/export?format=csv&gid=3"))
        #expect(ShareLink.export("\(sheet)/export?format=csv") == google("\(sheet)/export?format=csv"))
        #expect(ShareLink.export("\(sheet)/export?format=xlsx") == google("\(sheet)/export?format=xlsx", "xlsx"))
        #expect(ShareLink.export("\(sheet)/export?format=pdf") == nil)
        #expect(ShareLink.export("\(sheet)/export") == nil)
    }

    @Test("Google pages that are not a spreadsheet's are left alone")
    func googleOthers() {
        for link in [
            "https://docs.google.com/document/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
            "\(Self.sheet)/copy",
            "https://docs.google.com/spreadsheets/u/0/",
            "https://docs.google.com/spreadsheets/d/",
            "https://docs.google.com/spreadsheets/ccc?key=0AmPbTqX",
            "https://drive.google.com/file/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/view",
        ] {
            #expect(ShareLink.export(link) == nil, "\(link)")
        }
    }

    @Test("a Dropbox file link: dl=1 in place of dl=0 or added, rlkey and the other items kept in order")
    func dropbox() {
        let cases: [(String, String, String)] = [
            (
                "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/stores.csv?dl=0",
                "https://www.dropbox.com/s/a1b2c3d4e5f6g7h/stores.csv?dl=1", "csv"
            ),
            (
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.xlsx?rlkey=abc123def456&dl=0",
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.xlsx?rlkey=abc123def456&dl=1", "xlsx"
            ),
            (
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.xlsx?dl=0&rlkey=abc123def456&st=q1w2e3",
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.xlsx?dl=1&rlkey=abc123def456&st=q1w2e3", "xlsx"
            ),
            (
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.csv?rlkey=abc123def456",
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.csv?rlkey=abc123def456&dl=1", "csv"
            ),
            (
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.csv?rlkey=abc123def456&dl=1",
                "https://www.dropbox.com/scl/fi/x9y8z7w6v5u4/stores.csv?rlkey=abc123def456&dl=1", "csv"
            ),
            ("https://dropbox.com/s/k3y/Stores.ODS", "https://dropbox.com/s/k3y/Stores.ODS?dl=1", "ods"),
            ("https://dropbox.com/s/k3y/stores.xls?dl=0", "https://dropbox.com/s/k3y/stores.xls?dl=1", "xls"),
            ("https://dropbox.com/s/k3y/stores.zip?dl=0", "https://dropbox.com/s/k3y/stores.zip?dl=1", "zip"),
            (
                "https://dropbox.com/s/k3y/stores.geojson?dl=0", "https://dropbox.com/s/k3y/stores.geojson?dl=1",
                "geojson"
            ),
            (
                "https://dropbox.com/s/k3y/stores.csv.gz?dl=0", "https://dropbox.com/s/k3y/stores.csv.gz?dl=1",
                "csv.gz"
            ),
            (
                "https://www.dropbox.com/s/k3y/My%20Stores.CSV?dl=0",
                "https://www.dropbox.com/s/k3y/My%20Stores.CSV?dl=1", "csv"
            ),
            (
                "https://WWW.DropBox.com/s/k3y/stores.csv?dl=0",
                "https://www.dropbox.com/s/k3y/stores.csv?dl=1", "csv"
            ),
            (
                "http://www.dropbox.com/s/k3y/stores.csv?dl=0#top",
                "https://www.dropbox.com/s/k3y/stores.csv?dl=1", "csv"
            ),
        ]
        for (link, url, format) in cases {
            #expect(
                ShareLink.export(link) == ShareLink.Export(url: url, format: format, service: "Dropbox"), "\(link)")
        }
    }

    @Test("Dropbox folders and files of no format the import reads are left alone")
    func dropboxOthers() {
        for link in [
            "https://www.dropbox.com/s/k3y/stores?dl=0",
            "https://www.dropbox.com/s/k3y/report.pdf?dl=0",
            "https://www.dropbox.com/s/k3y/archive.tar.gz?dl=0",
            "https://www.dropbox.com/scl/fo/a1b2c3/h4i5j6?rlkey=abc&dl=0",
            "https://www.dropbox.com/sh/a1b2c3/AAB4c5?dl=0",
            "https://www.dropbox.com/home/stores.csv",
            "https://notdropbox.com/s/k3y/stores.csv?dl=0",
        ] {
            #expect(ShareLink.export(link) == nil, "\(link)")
        }
    }

    @Test("a file name's format: lowercased, a gzipped text format as csv.gz")
    func fileFormat() {
        #expect(ShareLink.fileFormat("stores.CSV") == "csv")
        #expect(ShareLink.fileFormat("Stores.Csv.GZ") == "csv.gz")
        #expect(ShareLink.fileFormat("stores.xlsx") == "xlsx")
        #expect(ShareLink.fileFormat("csv") == nil)
        #expect(ShareLink.fileFormat("stores.xlsx.gz") == nil)
        #expect(ShareLink.fileFormat("stores.docx") == nil)
    }

    @Test("a OneDrive link: the shares API with the link in unpadded base64url")
    func oneDrive() {
        // Expected tokens computed with Python: base64.urlsafe_b64encode(link).rstrip("=").
        let api = "https://api.onedrive.com/v1.0/shares/u!"
        // The tokens are long: each is split in two where it is written down.
        let example =
            "aHR0cHM6Ly9vbmVkcml2ZS5saXZlLmNvbS9yZWRpcj9yZXNpZD0xMjMxMjQ0MTkzOTEy"
            + "ITEyJmF1dGhLZXk9MTIwMTkxOSExMjkyMSEx"
        let unsafe =
            "aHR0cHM6Ly9PbmVEcml2ZS5MaXZlLmNvbS92aWV3LmFzcHg_cmVzaWQ9NUQ0QjJBMUMzRTZG"
            + "NzA4MSExMDYmYXV0aGtleT0hQUd-eA"
        let hinted =
            "aHR0cHM6Ly9vbmVkcml2ZS5saXZlLmNvbS9yZWRpcj9yZXNpZD01RDRCMkExQzNFNkY3MDgx"
            + "ITEwNSZhdXRoa2V5PSFBRmsyJml0aGludD1maWxlJTJjY3N2"
        let cases: [(String, String, String)] = [
            (
                "https://1drv.ms/x/s!AkVz3Ys7XbVpgQ4xTxUmB0ZlH6pd?e=5AbC1d",
                "aHR0cHM6Ly8xZHJ2Lm1zL3gvcyFBa1Z6M1lzN1hiVnBnUTR4VHhVbUIwWmxINnBkP2U9NUFiQzFk", "xlsx"
            ),
            (
                "https://1drv.ms/x/c/0a1b2c3d4e5f6789/EbCdEfGhIjKlMnOpQrStUvW?e=xYz123",
                "aHR0cHM6Ly8xZHJ2Lm1zL3gvYy8wYTFiMmMzZDRlNWY2Nzg5L0ViQ2RFZkdoSWpLbE1uT3BRclN0VXZXP2U9eFl6MTIz",
                "xlsx"
            ),
            // Microsoft's example of a sharing URL.
            (
                "https://onedrive.live.com/redir?resid=1231244193912!12&authKey=1201919!12921!1",
                example,
                "xlsx"
            ),
            // Standard base64 would hold `/`, `+` and `==` here; the host keeps its case as given.
            (
                "https://OneDrive.Live.com/view.aspx?resid=5D4B2A1C3E6F7081!106&authkey=!AG~x",
                unsafe,
                "xlsx"
            ),
            (
                "https://onedrive.live.com/redir?resid=5D4B2A1C3E6F7081!105&authkey=!AFk2&ithint=file%2ccsv",
                hinted,
                "csv"
            ),
        ]
        for (link, token, format) in cases {
            let expected = ShareLink.Export(url: api + token + "/root/content", format: format, service: "OneDrive")
            #expect(ShareLink.export(link) == expected, "\(link)")
        }
        // Surrounding blanks are not part of the link encoded.
        #expect(
            ShareLink.export(" https://1drv.ms/x/s!AkVz3Ys7XbVpgQ4xTxUmB0ZlH6pd?e=5AbC1d\n")?.url
                == api + "aHR0cHM6Ly8xZHJ2Lm1zL3gvcyFBa1Z6M1lzN1hiVnBnUTR4VHhVbUIwWmxINnBkP2U9NUFiQzFk/root/content")
    }

    @Test("OneDrive links to documents, folders or no item are left alone")
    func oneDriveOthers() {
        for link in [
            "https://1drv.ms/w/s!AkVz3Ys7XbVpgQ4xTxUmB0ZlH6pd",
            "https://1drv.ms/u/s!AkVz3Ys7XbVpgQ4xTxUmB0ZlH6pd",
            "https://1drv.ms/f/s!AkVz3Ys7XbVpgQ4xTxUmB0ZlH6pd",
            "https://onedrive.live.com/",
            "https://onedrive.live.com/?id=5D4B2A1C3E6F7081%21105&cid=5D4B2A1C3E6F7081",
            "https://onedrive.live.com/redir?resid=5D4B2A1C3E6F7081!105&ithint=folder%2c",
            "https://onedrive.live.com/redir?resid=5D4B2A1C3E6F7081!105&ithint=file%2cdocx",
        ] {
            #expect(ShareLink.export(link) == nil, "\(link)")
        }
    }

    @Test("a SharePoint Excel link: download=1 in place of web=1 or added, e= and the other items kept")
    func sharePoint() {
        let file = "https://contoso.sharepoint.com/:x:/r/sites/Sales/Shared%20Documents/stores.xlsx"
        let cases: [(String, String)] = [
            (
                "https://contoso.sharepoint.com/:x:/g/personal/jane_contoso_com/EbCdEfGhIjK?e=AbC123",
                "https://contoso.sharepoint.com/:x:/g/personal/jane_contoso_com/EbCdEfGhIjK?e=AbC123&download=1"
            ),
            (
                "\(file)?d=w12ab&csf=1&web=1&e=XyZ",
                "\(file)?d=w12ab&csf=1&download=1&e=XyZ"
            ),
            (
                "https://contoso-my.sharepoint.com/:x:/s/Team/EaBcDeF?download=1",
                "https://contoso-my.sharepoint.com/:x:/s/Team/EaBcDeF?download=1"
            ),
            (
                "https://contoso.sharepoint.com/:x:/g/EaBcDeF",
                "https://contoso.sharepoint.com/:x:/g/EaBcDeF?download=1"
            ),
            (
                "https://Contoso.SharePoint.com/:x:/g/EaBcDeF?e=k3Y",
                "https://contoso.sharepoint.com/:x:/g/EaBcDeF?e=k3Y&download=1"
            ),
        ]
        for (link, url) in cases {
            #expect(
                ShareLink.export(link) == ShareLink.Export(url: url, format: "xlsx", service: "SharePoint"), "\(link)")
        }
    }

    @Test("SharePoint links to other documents or plain paths are left alone")
    func sharePointOthers() {
        for link in [
            "https://contoso.sharepoint.com/:w:/g/EaBcDeF?e=k3Y",
            "https://contoso.sharepoint.com/:x:/p/EaBcDeF?e=k3Y",
            "https://contoso.sharepoint.com/sites/Sales/Shared%20Documents/stores.xlsx",
            "https://sharepoint.com/:x:/g/EaBcDeF",
            "https://contoso.sharepoint.com.example.org/:x:/g/EaBcDeF",
        ] {
            #expect(ShareLink.export(link) == nil, "\(link)")
        }
    }

    @Test("anything else is downloaded as it is")
    func notShareLinks() {
        for link in [
            "https://example.org/stores.csv",
            "https://example.org/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
            "https://docs.google.com.example.org/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
            "https://user:secret@docs.google.com/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
            "https://docs.google.com:8443/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit",
            "ftp://www.dropbox.com/s/k3y/stores.csv?dl=0",
            "stores.csv",
            "/data/stores.csv",
            "",
        ] {
            #expect(ShareLink.export(link) == nil, "\(link)")
        }
    }
}
