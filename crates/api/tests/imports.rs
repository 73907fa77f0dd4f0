//! Importing published scores of past cycles; year-on-year comparison from the first day.

mod common;

use common::TestApp;
use serde_json::json;
use sqlx::PgPool;

const Y2021: &str = "entity_code,entity_kind,entity_name,province_code,unit_name,score\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Dinas Kependudukan dan Pencatatan Sipil,\"60,48\"\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Puskesmas Sungailiat,\"55,00\"\n\
19.71,city,Pemerintah Kota Pangkalpinang,19,Dinas Kependudukan dan Pencatatan Sipil,82.5\n";

const Y2022: &str = "entity_code,entity_kind,entity_name,province_code,unit_name,score\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Dinas Kependudukan dan Pencatatan Sipil,\"95,32\"\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Puskesmas Sungailiat,\"88,00\"\n\
19.71,city,Pemerintah Kota Pangkalpinang,19,Dinas Kependudukan dan Pencatatan Sipil,77.99\n\
19.02,regency,Pemerintah Kabupaten Belitung,19,Dinas Kependudukan dan Pencatatan Sipil,91.66\n\
KEMENKES,ministry,Kementerian Kesehatan,,Direktorat Jenderal Pelayanan Kesehatan,70\n";

/// `Y2022` as Excel in an Indonesian locale saves it: a byte-order mark, `;` between fields,
/// decimal commas, CRLF line ends.
const Y2022_EXCEL: &str = "\u{feff}entity_code;entity_kind;entity_name;province_code;unit_name;score\r\n\
19.01;regency;Pemerintah Kabupaten Bangka;19;Dinas Kependudukan dan Pencatatan Sipil;95,32\r\n\
19.01;regency;Pemerintah Kabupaten Bangka;19;Puskesmas Sungailiat;88,00\r\n\
19.71;city;Pemerintah Kota Pangkalpinang;19;Dinas Kependudukan dan Pencatatan Sipil;77,99\r\n\
19.02;regency;Pemerintah Kabupaten Belitung;19;Dinas Kependudukan dan Pencatatan Sipil;91,66\r\n\
KEMENKES;ministry;Kementerian Kesehatan;;Direktorat Jenderal Pelayanan Kesehatan;70\r\n";

#[sqlx::test(migrations = "../../migrations")]
async fn past_scores_are_imported_graded_ranked_and_compared(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());

    let r = app
        .post_raw("/api/v1/cycles/2021/import", admin, "text/csv", Y2021)
        .await;
    r.assert_ok();
    assert_eq!(
        (
            r.body["units"].as_i64(),
            r.body["entities"].as_i64(),
            r.body["units_created"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let r = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", Y2022)
        .await;
    r.assert_ok();
    assert_eq!(
        (
            r.body["entities_created"].as_i64(),
            r.body["revision"].as_i64(),
            r.body["changed"].as_bool()
        ),
        (Some(1), Some(1), Some(true))
    );

    // Imported cycles are published: anyone can read them.
    let cycle = app.get("/api/v1/cycles/2022", None).await;
    assert_eq!(
        (
            cycle.body["state"].as_str(),
            cycle.body["imported"].as_bool(),
            cycle.body["methodology"].as_str()
        ),
        (Some("published"), Some(true), Some("ori-2022"))
    );
    let r = app
        .get("/api/v1/cycles/2022/results/entities?kind=regency", None)
        .await;
    let items = r.body["items"].as_array().unwrap();
    let codes: Vec<&str> = items.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["19.01", "19.02"], "best first");
    let bangka = &items[0];
    // (95.32 + 88.00) / 2 = 91.66, same as Belitung's: they share rank 1.
    assert_eq!(bangka["score"], "91.66");
    assert_eq!(items[1]["national_rank"], json!({ "rank": 1, "of": 2 }));
    assert_eq!(bangka["national_rank"], json!({ "rank": 1, "of": 2 }));
    assert_eq!(
        bangka["provincial_rank"],
        json!({ "rank": 1, "of": 3 }),
        "cities and regencies together"
    );
    assert_eq!(
        bangka["grade"],
        json!({ "code": "A", "label": "Kualitas Tertinggi", "zone": "green" })
    );
    // 2021 (zones) → 2022 (grades): 57.74 kuning → 91.66 green is a move up, compared by zone.
    assert_eq!(bangka["previous"]["year"], 2021);
    assert_eq!(bangka["previous"]["score"], "57.74");
    assert_eq!(bangka["previous"]["grade"]["code"], "kuning");
    assert_eq!(bangka["previous"]["delta"], "33.92");
    assert_eq!(bangka["previous"]["movement"], "up");
    let city = app
        .get("/api/v1/cycles/2022/results/entities?kind=city", None)
        .await;
    assert_eq!(city.body["items"][0]["grade"]["code"], "C", "77.99 is C");
    assert_eq!(
        city.body["items"][0]["previous"]["movement"], "down",
        "hijau 82.50 → kuning"
    );
    let ministry = app
        .get("/api/v1/cycles/2022/results/entities?kind=ministry", None)
        .await;
    assert_eq!(ministry.body["items"][0]["provincial_rank"], json!(null));

    let history = app
        .get("/api/v1/results/entities/19.01/history", None)
        .await;
    let years: Vec<i64> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years, [2021, 2022]);

    // Re-importing the same file changes nothing; a corrected file makes a new revision.
    let again = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", Y2022)
        .await;
    assert_eq!(
        (
            again.body["changed"].as_bool(),
            again.body["revision"].as_i64()
        ),
        (Some(false), Some(1))
    );
    // The same file saved by an Indonesian-locale Excel reads the same: nothing changes.
    let excel = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", Y2022_EXCEL)
        .await;
    excel.assert_ok();
    assert_eq!(
        (
            excel.body["changed"].as_bool(),
            excel.body["revision"].as_i64()
        ),
        (Some(false), Some(1))
    );
    // A short line of such a file is named by its line.
    let short = Y2022_EXCEL.replace(";Puskesmas Sungailiat;88,00", ";88,00");
    let r = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", short)
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(r.fields(), ["line 3"], "{}", r.text);
    assert_eq!(
        r.body["errors"][0]["message"],
        "expected 6 columns, found 5"
    );
    let corrected = Y2022.replace("77.99", "78.00");
    let r = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", corrected)
        .await;
    assert_eq!(
        (r.body["changed"].as_bool(), r.body["revision"].as_i64()),
        (Some(true), Some(2))
    );
    let city = app
        .get("/api/v1/cycles/2022/results/entities?kind=city", None)
        .await;
    assert_eq!(city.body["items"][0]["grade"]["code"], "B");
}

#[sqlx::test(migrations = "../../migrations")]
async fn bad_import_files_are_refused_whole(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    let bad = "entity_code,entity_kind,entity_name,province_code,unit_name,score\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Dinas A,100.5\n\
19.09,regency,Kabupaten Baru,31,Dinas B,80\n\
19.01,regency,Pemerintah Kabupaten Bangka,19,Dinas A,70\n\
19.01,city,Pemerintah Kabupaten Bangka,19,Dinas C,70.123\n";
    let r = app
        .post_raw("/api/v1/cycles/2022/import", admin, "text/csv", bad)
        .await;
    r.assert_problem(422, "validation-error");
    assert_eq!(
        r.fields(),
        [
            "line 2: score",
            "line 3: code",
            "line 4: unit_name",
            "line 5: entity_kind",
            "line 5: score"
        ]
    );
    let cycles: i64 = sqlx::query_scalar("SELECT count(*) FROM cycles")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(cycles, 0, "nothing written");
    let r = app.post_raw("/api/v1/cycles/2022/import", admin, "text/csv", "entity_code,entity_kind,entity_name,province_code,unit_name,score\n19.01,village,x,19,y,1\n").await;
    r.assert_problem(422, "validation-error");
    let babel = app.token("office", Some("babel")).await;
    app.post_raw(
        "/api/v1/cycles/2022/import",
        Some(&babel),
        "text/csv",
        Y2022,
    )
    .await
    .assert_problem(403, "forbidden");
    // A live cycle cannot be overwritten by an import.
    app.post("/api/v1/cycles", admin, json!({ "year": 2024 }))
        .await
        .assert_ok();
    app.post_raw("/api/v1/cycles/2024/import", admin, "text/csv", Y2022)
        .await
        .assert_problem(409, "cycle-not-imported");
}

/// Reads a workbook with openpyxl, as a spreadsheet user's tool would: per sheet, its name,
/// frozen cell, autofilter range, header and rows (each cell's value, number format and fill).
const READ_WORKBOOK: &str = r#"
import json, sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
out = []
for ws in book.worksheets:
    rows = []
    for row in ws.iter_rows(min_row=2):
        rows.append([{"value": c.value, "type": type(c.value).__name__, "format": c.number_format,
                      "fill": c.fill.fgColor.rgb if c.fill and c.fill.fill_type == "solid" else None}
                     for c in row])
    out.append({"name": ws.title, "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref,
                "header": [c.value for c in ws[1]], "rows": rows})
print(json.dumps(out))
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn published_rankings_export_as_csv_and_as_a_workbook(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    app.post_raw("/api/v1/cycles/2022/import", admin, "text/csv", Y2022)
        .await
        .assert_ok();
    let json = app
        .get("/api/v1/cycles/2022/results/entities?limit=500", None)
        .await;
    json.assert_ok();
    assert_eq!(json.headers["vary"], "Accept");
    let items = json.body["items"].as_array().unwrap().clone();
    let fetch = |path: &str, accept: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        async move { req.send().await.unwrap() }
    };

    // The workbook, read by openpyxl: one sheet per kind (ministries first), a frozen header
    // row, an autofilter, scores as numbers formatted 0.00, grades filled with their zone.
    let xlsx = fetch("/api/v1/cycles/2022/results/entities?format=xlsx", None).await;
    assert_eq!(xlsx.status(), 200);
    assert_eq!(xlsx.headers()["content-type"], kepatuhan_api::export::XLSX);
    assert_eq!(
        xlsx.headers()["content-disposition"],
        "attachment; filename=\"hasil-2022.xlsx\""
    );
    let bytes = xlsx.bytes().await.unwrap();
    let dir = std::env::temp_dir().join(format!("kepatuhan-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hasil-2022.xlsx");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new("/var/tmp/kepatuhan-venv/bin/python")
        .args(["-c", READ_WORKBOOK])
        .arg(&file)
        .output()
        .expect("the test command installs openpyxl (`just tools`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sheets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = sheets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Kementerian", "Kabupaten", "Kota"]);
    let mut seen = 0;
    for sheet in sheets.as_array().unwrap() {
        let rows = sheet["rows"].as_array().unwrap();
        assert_eq!(sheet["freeze"], "A2");
        assert_eq!(sheet["filter"], format!("A1:J{}", rows.len() + 1));
        assert_eq!(sheet["header"][5], "Nilai");
        for row in rows {
            let code = row[1]["value"].as_str().unwrap();
            let item = items.iter().find(|i| i["code"] == code).unwrap();
            let score: f64 = item["score"].as_str().unwrap().parse().unwrap();
            // A number, not text (70 is written as an integer).
            assert!(
                matches!(row[5]["type"].as_str(), Some("float" | "int")),
                "{row:?}"
            );
            assert_eq!(row[5]["format"], "0.00");
            assert!((row[5]["value"].as_f64().unwrap() - score).abs() < 1e-9);
            assert_eq!(row[0]["value"], item["national_rank"]["rank"]);
            assert_eq!(row[6]["value"], item["grade"]["code"]);
            let fill = match item["grade"]["zone"].as_str() {
                Some("green") => "FFC6EFCE",
                Some("yellow") => "FFFFEB9C",
                Some("red") => "FFFFC7CE",
                _ => panic!("every 2022 grade has a zone"),
            };
            assert_eq!(row[6]["fill"], fill, "{code}");
            seen += 1;
        }
    }
    assert_eq!(seen, items.len());

    // LibreOffice in the Indonesian locale shows every score as the published figure with a
    // decimal comma (95,32; 70,00): the cells are numbers with a two-decimal format, not text.
    // Each sheet is saved as shown, `;`-separated.
    let out = std::process::Command::new("soffice")
        // LibreOffice takes its locale from the environment.
        .env("LC_ALL", "id_ID.UTF-8")
        .env("LANG", "id_ID.UTF-8")
        .args([
            "--headless",
            "--norestore",
            &format!("-env:UserInstallation=file://{}/profile", dir.display()),
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):59,34,76,1,,1057,false,true,true,false,false,-1",
            "--outdir",
        ])
        .arg(&dir)
        .arg(&file)
        .output()
        .expect("the test command installs LibreOffice Calc (`just tools`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shown = 0;
    for sheet in ["Kementerian", "Kabupaten", "Kota"] {
        let text = std::fs::read_to_string(dir.join(format!("hasil-2022-{sheet}.csv")))
            .unwrap_or_else(|e| panic!("LibreOffice wrote no {sheet} sheet: {e}"));
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.split(';').collect();
            let item = items.iter().find(|i| i["code"] == cells[1]).unwrap();
            let published = item["score"].as_str().unwrap().replace('.', ",");
            assert_eq!(cells[5], published, "{sheet}: {line}");
            shown += 1;
        }
    }
    assert_eq!(shown, items.len());

    // CSV through `Accept`, the same rows and figures.
    let csv = fetch("/api/v1/cycles/2022/results/entities", Some("text/csv")).await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["vary"], "Accept");
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), items.len());
    for (row, item) in rows.iter().zip(&items) {
        assert_eq!(&row[1], item["code"].as_str().unwrap());
        assert_eq!(&row[5], item["score"].as_str().unwrap());
        // The kind in words, as the sheets are named.
        let kind = match item["kind"].as_str().unwrap() {
            "regency" => "Kabupaten",
            "city" => "Kota",
            "province" => "Provinsi",
            "ministry" => "Kementerian",
            _ => "Lembaga",
        };
        assert_eq!(&row[3], kind);
    }
    // Filters apply to exports as to pages; an unknown format or table is a field error.
    let cities = fetch(
        "/api/v1/cycles/2022/results/entities?format=csv&kind=city",
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(cities.lines().count(), 2, "{cities}");
    // The province summary, as a workbook read by openpyxl and as CSV, equals its JSON.
    let summary = app.get("/api/v1/cycles/2022/results/provinces", None).await;
    summary.assert_ok();
    let bangka_belitung = &summary.body[0];
    assert_eq!(bangka_belitung["code"], "19");
    let book = fetch("/api/v1/cycles/2022/results/provinces?format=xlsx", None)
        .await
        .bytes()
        .await
        .unwrap();
    std::fs::write(&file, &book).unwrap();
    let out = std::process::Command::new("/var/tmp/kepatuhan-venv/bin/python")
        .args(["-c", READ_WORKBOOK])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sheets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sheets[0]["name"], "Provinsi");
    assert_eq!(
        sheets[0]["header"],
        json!([
            "Kode",
            "Provinsi",
            "Entitas dinilai",
            "Rata-rata",
            "Predikat A",
            "Predikat C"
        ])
    );
    let row = &sheets[0]["rows"][0];
    assert_eq!(row[0]["value"], "19");
    assert_eq!(row[2]["value"], bangka_belitung["entities"]);
    let mean: f64 = bangka_belitung["mean_score"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((row[3]["value"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert_eq!(row[3]["format"], "0.00");
    assert_eq!(row[4]["value"], bangka_belitung["grades"]["A"]);
    assert_eq!(row[5]["value"], bangka_belitung["grades"]["C"]);
    let csv_summary = fetch("/api/v1/cycles/2022/results/provinces", Some("text/csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv_summary.lines().nth(1).unwrap(),
        format!(
            "19,{},{},{},{},{}",
            bangka_belitung["name"].as_str().unwrap(),
            bangka_belitung["entities"],
            bangka_belitung["mean_score"].as_str().unwrap(),
            bangka_belitung["grades"]["A"],
            bangka_belitung["grades"]["C"]
        )
    );
    let _ = std::fs::remove_dir_all(&dir);

    let bad = app
        .get("/api/v1/cycles/2022/results/entities?format=ods", None)
        .await;
    bad.assert_problem(422, "validation-error");
    assert_eq!(bad.fields(), ["format"]);
    let bad = app
        .get(
            "/api/v1/cycles/2022/results/units?format=csv&table=all",
            None,
        )
        .await;
    bad.assert_problem(422, "validation-error");
    assert_eq!(bad.fields(), ["table"]);
}

/// Fills the import template's first sheet as a clerk would (typing a row per unit, the score
/// with a decimal comma as text, as Indonesian Excel users type it) and saves the workbook.
const FILL_TEMPLATE: &str = r#"
import sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
assert book.sheetnames[1] == "Petunjuk", book.sheetnames
ws = book.worksheets[0]
ws.append(["19.01", "regency", "Pemerintah Kabupaten Bangka", "19", "Dinas Sosial", 81.25])
ws.append(["19.71", "city", "Pemerintah Kota Pangkalpinang", "19", "Dinas Sosial", 64.5])
book.save(sys.argv[1])
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn the_import_template_is_filled_in_a_spreadsheet_and_imported(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.seed_reference().await;
    let admin = Some(app.admin.as_str());
    // The CSV template is the header row the import reads.
    let csv = app
        .get("/api/v1/cycles/2021/import/template?format=csv", admin)
        .await;
    csv.assert_ok();
    assert_eq!(
        csv.text.trim_end(),
        "entity_code,entity_kind,entity_name,province_code,unit_name,score"
    );
    // The workbook: filled with openpyxl, saved as CSV by LibreOffice, imported.
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2021/import/template"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], kepatuhan_api::export::XLSX);
    let dir = std::env::temp_dir().join(format!("kepatuhan-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("impor-nilai-2021.xlsx");
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("/var/tmp/kepatuhan-venv/bin/python")
        .args(["-c", FILL_TEMPLATE])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Saved as an Indonesian-locale office saves it: `;`, decimal comma.
    let out = std::process::Command::new("soffice")
        .env("LC_ALL", "id_ID.UTF-8")
        .env("LANG", "id_ID.UTF-8")
        .args([
            "--headless",
            "--norestore",
            &format!("-env:UserInstallation=file://{}/profile", dir.display()),
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):59,34,76,1,,1057,false,true,true",
            "--outdir",
        ])
        .arg(&dir)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(dir.join("impor-nilai-2021.csv")).unwrap();
    let workbook = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(saved.contains(";81,25"), "{saved}");
    let r = app
        .post_raw("/api/v1/cycles/2021/import", admin, "text/csv", saved)
        .await;
    r.assert_ok();
    assert_eq!(r.body["units"], 2, "{}", r.text);
    let units = app
        .get("/api/v1/cycles/2021/results/units?entity=19.01", None)
        .await;
    assert_eq!(units.body["items"][0]["score"], "81.25", "{}", units.text);
    // The filled workbook itself is accepted too (its first sheet is the table), and holds the
    // same rows: nothing changes.
    let again = app
        .post_raw(
            "/api/v1/cycles/2021/import",
            admin,
            kepatuhan_api::export::XLSX,
            workbook,
        )
        .await;
    again.assert_ok();
    assert_eq!(again.body["changed"], false, "{}", again.text);
    assert_eq!(again.body["revision"], r.body["revision"], "{}", again.text);
    assert_eq!(again.body["units"], 2, "{}", again.text);
    // Staff only; an unknown format is a field error.
    app.get("/api/v1/cycles/2021/import/template", None)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/cycles/2021/import/template?format=ods", admin)
        .await
        .assert_problem(422, "validation-error");
}
