//! The assessment workbook: downloaded, filled in with a spreadsheet library the way a person
//! fills it (choosing levels from the lists, typing notes), uploaded, and read back as drafts;
//! bad files refused whole, each problem named by sheet and cell.

mod common;

use std::path::{Path, PathBuf};

use common::TestApp;
use serde_json::Value;
use sqlx::PgPool;

const PYTHON: &str = "/var/tmp/kepatuhan-venv/bin/python";

/// Fills a downloaded workbook as an assessor would with openpyxl: on every sheet of a unit
/// not yet started, a level chosen from each row's own list (data validation), "Ya" under
/// *Tidak berlaku* on the first row that allows it, a typed note; on the first draft, one level
/// changed. Reports what the workbook looked like and what was filled, as JSON.
const FILL: &str = r#"
import json, sys, openpyxl
path = sys.argv[1]
book = openpyxl.load_workbook(path)
report = {"sheets": [], "filled": {}}
draft_changed = False
for ws in book.worksheets:
    key = ws["A1"].value
    lists = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            lists[rng.coord] = dv.formula1.strip('"').split(",")
    report["sheets"].append({
        "name": ws.title, "key": key, "protected": bool(ws.protection.sheet),
        "a_hidden": bool(ws.column_dimensions["A"].hidden), "status": ws["D3"].value,
        "lists": len(lists),
    })
    if not key or ":unit:" not in key:
        continue
    unit = int(key.rsplit(":", 1)[1])
    status = ws["D3"].value
    filled = {}
    if status == "belum dimulai":
        na_done = False
        for row in range(6, ws.max_row + 1):
            code = ws.cell(row, 1).value
            if not code:
                continue
            if not na_done and f"F{row}" in lists:
                ws.cell(row, 6).value = lists[f"F{row}"][0]
                ws.cell(row, 7).value = "Tidak ada layanan ini di unit"
                filled[code] = {"value": None, "na": True, "note": "Tidak ada layanan ini di unit"}
                na_done = True
                continue
            choices = lists[f"E{row}"]
            level = int(choices[(row + unit) % len(choices)])
            ws.cell(row, 5).value = level
            note = f"Dilihat langsung, baris {row}"
            ws.cell(row, 7).value = note
            filled[code] = {"value": level, "na": False, "note": note}
    elif status == "draf" and not draft_changed:
        row = 6
        choices = lists[f"E{row}"]
        old = ws.cell(row, 5).value
        new = int(next(c for c in choices if int(c) != old))
        ws.cell(row, 5).value = new
        filled[ws.cell(row, 1).value] = {"value": new, "na": False, "note": ws.cell(row, 7).value or ""}
        draft_changed = True
    if filled:
        report["filled"][str(unit)] = filled
book.save(path)
# The protection the template set survives a save by another tool.
again = openpyxl.load_workbook(path)
report["protected_after_save"] = all(ws.protection.sheet for ws in again.worksheets)
print(json.dumps(report))
"#;

/// A scratch folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kepatuhan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a Python script with the workbook path (and more arguments); returns its stdout.
fn python(script: &str, args: &[&Path]) -> String {
    let out = std::process::Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("the test command installs openpyxl (`just tools`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Downloads the 2025 assessment workbook (with `query`) as `token` into `file`.
async fn download(app: &TestApp, year: u16, query: &str, token: &str, file: &Path) {
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v1/cycles/{year}/templates/assessment.xlsx{query}"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], kepatuhan_api::export::XLSX);
    std::fs::write(file, res.bytes().await.unwrap()).unwrap();
}

/// Posts a workbook file to `path`.
async fn post_workbook(app: &TestApp, path: &str, token: &str, file: &Path) -> common::Reply {
    app.post_raw(
        path,
        Some(token),
        kepatuhan_api::export::XLSX,
        std::fs::read(file).unwrap(),
    )
    .await
}

/// Uploads an assessment workbook to 2025.
async fn upload(app: &TestApp, token: &str, file: &Path) -> common::Reply {
    post_workbook(app, "/api/v1/cycles/2025/submissions/import", token, file).await
}

/// Rows written to submissions, values and the audit trail: nothing may change on a refusal.
async fn written(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM submissions), (SELECT count(*) FROM submission_values), (SELECT count(*) FROM audit_log)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_assessment_workbook_is_filled_in_a_spreadsheet_and_becomes_drafts(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, false).await;
    let dir = scratch("assessment-workbook");
    let file = dir.join("penilaian-2025.xlsx");
    download(&app, 2025, "", &tokens.office, &file).await;
    let report: Value = serde_json::from_str(&python(FILL, &[&file])).unwrap();
    let sheets = report["sheets"].as_array().unwrap();
    // A cover sheet, then one sheet per sampled unit of the office, each keyed, protected, its
    // key column hidden and every level chosen from a list.
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.office))
        .await;
    let sampled = sample
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["excluded_reason"].is_null())
        .count();
    assert_eq!(sheets.len(), sampled + 1, "{report}");
    assert_eq!(sheets[0]["name"], "Petunjuk");
    for s in sheets {
        assert!(
            s["protected"].as_bool().unwrap() && s["a_hidden"].as_bool().unwrap(),
            "{s}"
        );
    }
    for s in &sheets[1..] {
        assert!(
            s["key"]
                .as_str()
                .unwrap()
                .starts_with("kepatuhan:assessment:2025:unit:"),
            "{s}"
        );
        assert!(s["lists"].as_u64().unwrap() > 20, "{s}");
    }
    assert!(report["protected_after_save"].as_bool().unwrap());
    let filled = report["filled"].as_object().unwrap();
    let started = sheets
        .iter()
        .filter(|s| s["status"] == "belum dimulai")
        .count();
    assert!(started > 0 && filled.len() == started + 1, "{report}");

    let before = written(&pool).await;
    let r = upload(&app, &tokens.office, &file).await;
    r.assert_ok();
    assert_eq!(r.body["created"], started, "{}", r.text);
    assert_eq!(r.body["updated"], 1, "{}", r.text);
    assert_eq!(r.body["unchanged"], sampled - started - 1, "{}", r.text);
    let outcomes: Vec<&str> = r.body["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"locked"),
        "submitted and verified units pass unchanged: {outcomes:?}"
    );

    // Exactly what was filled is in the drafts.
    let list = app
        .get("/api/v1/cycles/2025/submissions", Some(&tokens.office))
        .await;
    for (unit, values) in filled {
        let id = list
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["unit_id"].as_i64() == unit.parse().ok())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let s = app
            .get(&format!("/api/v1/submissions/{id}"), Some(&tokens.office))
            .await;
        s.assert_ok();
        assert_eq!(s.body["state"], "draft");
        for (code, want) in values.as_object().unwrap() {
            let got = s.body["values"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["indicator"] == code.as_str())
                .unwrap_or_else(|| panic!("{code} missing in {}", s.text));
            assert_eq!(got["value"], want["value"], "{unit} {code}");
            assert_eq!(got["not_applicable"], want["na"], "{unit} {code}");
            assert_eq!(got["evidence_note"], want["note"], "{unit} {code}");
        }
    }
    let after = written(&pool).await;
    assert!(after.0 > before.0 && after.1 > before.1);

    // The same file again changes nothing, not even the audit trail.
    let again = upload(&app, &tokens.office, &file).await;
    again.assert_ok();
    assert_eq!(again.body["created"], 0, "{}", again.text);
    assert_eq!(again.body["updated"], 0, "{}", again.text);
    assert_eq!(again.body["values_written"], 0, "{}", again.text);
    assert_eq!(written(&pool).await, after);

    // A downloaded workbook now carries those drafts: it is their export too.
    let export = dir.join("lagi.xlsx");
    download(&app, 2025, "", &tokens.office, &export).await;
    let unchanged = upload(&app, &tokens.office, &export).await;
    unchanged.assert_ok();
    assert_eq!(unchanged.body["values_written"], 0, "{}", unchanged.text);

    // An assessor's workbook holds only the units assigned to them.
    let mine = dir.join("asesor.xlsx");
    download(&app, 2025, "", &tokens.assessor, &mine).await;
    let assigned = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.assessor))
        .await;
    let count = python(
        "import sys, openpyxl; print(len(openpyxl.load_workbook(sys.argv[1]).worksheets))",
        &[&mine],
    );
    let assigned = assigned
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["excluded_reason"].is_null())
        .count();
    assert_eq!(count.trim().parse::<usize>().unwrap(), assigned + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Spoils a copy of the template in one way (argv[2]), as a person or another tool might.
const SPOIL: &str = r#"
import sys, openpyxl
path, how = sys.argv[1], sys.argv[2]
book = openpyxl.load_workbook(path)
ws = next(w for w in book.worksheets if w["D3"].value == "belum dimulai")
locked = next(w for w in book.worksheets if w["D3"].value == "terverifikasi (terkunci)")
ws.title = "Lembar saya"
if how == "off-scale":
    ws["E7"] = 4
    ws["E8"] = 1
elif how == "formula":
    ws["E7"] = "=1+2"
elif how == "merged":
    ws["E7"] = 1
    ws.merge_cells("E7:G7")
elif how == "removed-row":
    ws.delete_rows(8)
elif how == "added-row":
    ws.insert_rows(8)
    ws["E8"] = 2
elif how == "locked-changed":
    ws["E7"] = 1
    locked["E6"] = 0 if locked["E6"].value != 0 else 1
elif how == "foreign-sheet":
    ws["E7"] = 1
    book.create_sheet("Catatan")["A1"] = "catatan pribadi"
book.save(path)
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn bad_workbooks_are_refused_whole_and_named_by_sheet_and_cell(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, true).await;
    let dir = scratch("bad-workbooks");
    let template = dir.join("template.xlsx");
    download(&app, 2025, "", &tokens.office, &template).await;
    let before = written(&pool).await;
    let cases: [(&str, &str, &str); 7] = [
        ("off-scale", "'Lembar saya'!E7", "4 is not on the scale"),
        ("formula", "'Lembar saya'!E7", "formula (=1+2)"),
        ("merged", "'Lembar saya'!E7", "merged"),
        ("removed-row", "'Lembar saya'!A6", "were removed"),
        ("added-row", "'Lembar saya'!E8", "rows cannot be added"),
        (
            "locked-changed",
            "!E6",
            "change only after its office returns it",
        ),
        (
            "foreign-sheet",
            "'Catatan'!A1",
            "not part of the 2025 assessment template",
        ),
    ];
    for (how, cell, message) in cases {
        let file = dir.join(format!("{how}.xlsx"));
        std::fs::copy(&template, &file).unwrap();
        python(SPOIL, &[&file, Path::new(how)]);
        let r = upload(&app, &tokens.office, &file).await;
        r.assert_problem(422, "validation-error");
        let errors = r.body["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"].as_str().unwrap().contains(cell)
                    && e["message"].as_str().unwrap().contains(message)),
            "{how}: {}",
            r.text
        );
        assert_eq!(written(&pool).await, before, "{how} wrote something");
    }

    // A different cycle's template: the 2023 workbook uploaded into 2025.
    let old = dir.join("2023.xlsx");
    download(&app, 2023, "", &tokens.admin, &old).await;
    let r = upload(&app, &tokens.office, &old).await;
    r.assert_problem(422, "validation-error");
    assert!(r.text.contains("from the 2023 template"), "{}", r.text);

    // Files that are not a workbook to read: text, junk, an encrypted workbook, 10 MB.
    let encrypted = dir.join("encrypted.xlsx");
    python(
        "import sys, msoffcrypto.format.ooxml as o\n\
         f = o.OOXMLFile(open(sys.argv[1], 'rb'))\n\
         f.encrypt('rahasia', open(sys.argv[2], 'wb'))",
        &[&template, &encrypted],
    );
    let bodies: [(&str, Vec<u8>, u16, &str); 4] = [
        (
            "text",
            b"unit_id;indicator;value\n1;x;2\n".to_vec(),
            400,
            "unreadable-workbook",
        ),
        (
            "junk zip",
            b"PK\x03\x04 this is not really a zip".to_vec(),
            400,
            "unreadable-workbook",
        ),
        (
            "encrypted",
            std::fs::read(&encrypted).unwrap(),
            400,
            "unreadable-workbook",
        ),
        (
            "10 MB",
            vec![0x5a; 10 * 1024 * 1024],
            413,
            "payload-too-large",
        ),
    ];
    for (what, body, status, kind) in bodies {
        let r = app
            .post_raw(
                "/api/v1/cycles/2025/submissions/import",
                Some(&tokens.office),
                kepatuhan_api::export::XLSX,
                body,
            )
            .await;
        r.assert_problem(status, kind);
        assert!(!r.body["detail"].as_str().unwrap().is_empty(), "{what}");
        if what == "encrypted" {
            assert!(r.text.contains("encrypted"), "{}", r.text);
        }
    }
    assert_eq!(written(&pool).await, before);

    // The CSV form: the same rows, every problem by line.
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.office))
        .await;
    let unit = sample
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["submission_state"].is_null() && u["excluded_reason"].is_null())
        .unwrap()["unit_id"]
        .as_i64()
        .unwrap();
    let bad = format!(
        "unit_id;indicator;value;not_applicable;evidence_note\r\n{unit};nope;2;;\r\n{unit};waiting_room;9;;\r\n"
    );
    let r = app
        .post_raw(
            "/api/v1/cycles/2025/submissions/import",
            Some(&tokens.office),
            "text/csv",
            bad,
        )
        .await;
    r.assert_problem(422, "validation-error");
    let fields = r.fields();
    assert!(
        fields.contains(&"line 2: indicator".to_owned()),
        "{}",
        r.text
    );
    assert!(fields.contains(&"line 3: value".to_owned()), "{}", r.text);
    assert_eq!(written(&pool).await, before);
    // The same rows made right, as an Indonesian-locale Excel saves them, become a draft.
    let good = format!(
        "\u{feff}unit_id;indicator;value;not_applicable;evidence_note\r\n{unit};waiting_room;2;;Ruang tunggu ada, kursi kurang\r\n{unit};service_counter;;Ya;\r\n"
    );
    let r = app
        .post_raw(
            "/api/v1/cycles/2025/submissions/import",
            Some(&tokens.office),
            "text/csv",
            good,
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body["created"], 1, "{}", r.text);
    assert_eq!(r.body["values_written"], 2, "{}", r.text);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads every sheet of a workbook with openpyxl: name, then rows of cell values.
const READ: &str = r#"
import json, sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
print(json.dumps([{"name": ws.title, "rows": [list(r) for r in ws.iter_rows(values_only=True)]} for ws in book.worksheets], default=str))
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn collection_progress_downloads_as_the_workbook_hq_asks_for(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, false).await;
    let json = app
        .get("/api/v1/cycles/2025/progress", Some(&tokens.admin))
        .await;
    json.assert_ok();
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2025/progress?format=xlsx"))
        .bearer_auth(&tokens.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["vary"], "Accept");
    let dir = scratch("progress");
    let file = dir.join("kemajuan-2025.xlsx");
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let sheets: Value = serde_json::from_str(&python(READ, &[&file])).unwrap();
    let rows = sheets[0]["rows"].as_array().unwrap();
    assert_eq!(rows[0][0], "Kode kantor");
    let offices = json.body["offices"].as_array().unwrap();
    assert_eq!(rows.len(), offices.len() + 1);
    for (row, office) in rows[1..].iter().zip(offices) {
        // Counts are numbers a spreadsheet sums, the same as the JSON's.
        assert_eq!(
            row[0],
            office["office"].as_str().map_or(Value::Null, Value::from)
        );
        assert_eq!(row[2], office["sampled"]);
        for (col, key) in [
            (3, "not_started"),
            (4, "draft"),
            (5, "submitted"),
            (6, "returned"),
            (7, "verified"),
            (8, "excluded"),
        ] {
            assert_eq!(row[col], office["counts"][key], "{key}: {row:?}");
        }
    }
    // An office's own list, as CSV by Accept.
    let csv = app
        .client
        .get(app.url("/api/v1/cycles/2025/progress"))
        .bearer_auth(&tokens.office)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].starts_with("babel,"), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "../../migrations")]
async fn unit_results_and_their_deficiencies_export_as_the_json_says(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    common::demo(&pool, true).await;
    let page = app
        .get("/api/v1/cycles/2023/results/units?limit=200", None)
        .await;
    page.assert_ok();
    assert_eq!(page.headers["vary"], "Accept");
    let units = page.body["items"].as_array().unwrap();
    assert!(!units.is_empty());
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2023/results/units?format=xlsx"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let dir = scratch("unit-results");
    let file = dir.join("unit-2023.xlsx");
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let sheets: Value = serde_json::from_str(&python(READ, &[&file])).unwrap();
    assert_eq!(sheets[0]["name"], "Unit");
    assert_eq!(sheets[1]["name"], "Kekurangan");
    let rows = &sheets[0]["rows"].as_array().unwrap()[1..];
    let header = sheets[0]["rows"][0].as_array().unwrap();
    assert!(header.iter().any(|h| h == "Dimensi Proses"), "{header:?}");
    // Each unit's score and each dimension's score, rounded as published, are numbers.
    let mut deficiencies = 0;
    for unit in units {
        let row = rows
            .iter()
            .find(|r| r[3].as_i64() == unit["unit_id"].as_i64())
            .unwrap_or_else(|| panic!("unit {} missing", unit["unit_id"]));
        let score: f64 = unit["score"].as_str().unwrap().parse().unwrap();
        assert!((row[6].as_f64().unwrap() - score).abs() < 1e-9, "{row:?}");
        assert_eq!(row[7], unit["grade"]);
        let dims = unit["breakdown"][0]["dimensions"].as_array().unwrap();
        for (i, d) in dims.iter().enumerate() {
            let exact: rust_decimal::Decimal = d["score"].as_str().unwrap().parse().unwrap();
            let published = kepatuhan_core::score::round_published(exact);
            let cell = row[8 + i].as_f64().unwrap();
            assert!((cell - published.to_string().parse::<f64>().unwrap()).abs() < 1e-9);
        }
        deficiencies += unit["deficiencies"].as_array().unwrap().len();
    }
    // The deficiencies: one row each, in plain words.
    let lost = &sheets[1]["rows"].as_array().unwrap()[1..];
    assert_eq!(lost.len(), deficiencies);
    assert!(
        lost.iter()
            .all(|r| !r[6].as_str().unwrap_or_default().is_empty())
    );
    // As CSV, either table.
    let csv = |table: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!(
                    "/api/v1/cycles/2023/results/units?format=csv&table={table}"
                )))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(csv("units").await.lines().count(), rows.len() + 1);
    assert_eq!(csv("deficiencies").await.lines().count(), deficiencies + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fills the survey workbook as a field team would with openpyxl: on each open unit's sheet,
/// three new respondents answering every question from its list (the second only the first
/// survey); reports the sheets' keys and what was filled.
const FILL_SURVEYS: &str = r#"
import json, sys, openpyxl
path = sys.argv[1]
book = openpyxl.load_workbook(path)
filled = {}
for ws in book.worksheets[1:]:
    if ws["C3"].value != "terbuka":
        continue
    unit = ws["A1"].value.rsplit(":", 1)[1]
    lists = {}
    for dv in ws.data_validations.dataValidation:
        col = str(dv.sqref).split(":")[0].rstrip("0123456789")
        lists[col] = dv.formula1.strip('"').split(",")
    codes = [(c.column_letter, c.value) for c in ws[4][2:] if c.value]
    row = 6
    while ws.cell(row, 2).value:
        row += 1
    answers = {}
    for n in range(3):
        respondent = f"Q-{unit}-{n + 1}"
        ws.cell(row + n, 2).value = respondent
        first_survey = codes[0][1].split(".")[0]
        for k, (letter, code) in enumerate(codes):
            if n == 1 and not code.startswith(first_survey + "."):
                continue
            choices = lists[letter]
            value = choices[(k + n) % len(choices)]
            ws[f"{letter}{row + n}"] = int(value) if value.isdigit() else value
            answers.setdefault(respondent, {})[code] = value
    filled[unit] = answers
book.save(path)
print(json.dumps(filled))
"#;

/// Responses stored for a unit of 2025, over all its surveys.
async fn respondents(app: &TestApp, token: &str, unit: &str) -> u64 {
    let s = app
        .get(
            &format!("/api/v1/cycles/2025/units/{unit}/survey-responses"),
            Some(token),
        )
        .await;
    s.assert_ok();
    s.body
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["respondents"].as_u64().unwrap())
        .sum()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_survey_workbook_is_filled_in_a_spreadsheet_and_stores_the_responses(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (_, tokens) = common::demo(&pool, false).await;
    let dir = scratch("survey-workbook");
    let file = dir.join("survei-2025.xlsx");
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2025/templates/surveys.xlsx"))
        .bearer_auth(&tokens.office)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    std::fs::write(&file, res.bytes().await.unwrap()).unwrap();
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.office))
        .await;
    let mut before = std::collections::HashMap::new();
    for u in sample.body.as_array().unwrap() {
        if u["excluded_reason"].is_null() {
            let id = u["unit_id"].to_string();
            before.insert(id.clone(), respondents(&app, &tokens.office, &id).await);
        }
    }
    let filled: Value = serde_json::from_str(&python(FILL_SURVEYS, &[&file])).unwrap();
    assert!(!filled.as_object().unwrap().is_empty());
    let path = "/api/v1/cycles/2025/survey-responses/import";
    let upload = |file: PathBuf| {
        let (app, token) = (&app, tokens.office.clone());
        async move { post_workbook(app, path, &token, &file).await }
    };
    let r = upload(file.clone()).await;
    r.assert_ok();
    // Three respondents per open unit: two answered both surveys, one only the first.
    let units = filled.as_object().unwrap().len();
    assert_eq!(r.body["created"], units * 5, "{}", r.text);
    for (unit, _) in filled.as_object().unwrap() {
        assert_eq!(
            respondents(&app, &tokens.office, unit).await,
            before[unit] + 5,
            "{unit}"
        );
    }
    // The same file again stores nothing new.
    let again = upload(file.clone()).await;
    again.assert_ok();
    assert_eq!(again.body["created"], 0, "{}", again.text);
    assert_eq!(again.body["updated"], 0, "{}", again.text);

    // A wrong answer is named by its cell, and nothing is stored.
    let spoiled = dir.join("salah.xlsx");
    std::fs::copy(&file, &spoiled).unwrap();
    python(
        "import sys, openpyxl\n\
         b = openpyxl.load_workbook(sys.argv[1])\n\
         ws = next(w for w in b.worksheets[1:] if w['C3'].value == 'terbuka')\n\
         ws.title = 'Survei saya'\n\
         ws['B200'] = 'Q-baru'\n\
         ws['C200'] = 'Mungkin'\n\
         b.save(sys.argv[1])",
        &[&spoiled],
    );
    let bad = upload(spoiled).await;
    bad.assert_problem(422, "validation-error");
    assert!(
        bad.fields().contains(&"'Survei saya'!C200".to_owned()),
        "{}",
        bad.text
    );
    let third = upload(file).await;
    assert_eq!(third.body["created"], 0, "{}", third.text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "../../migrations")]
async fn bulk_endpoints_take_a_workbook_and_name_its_rows(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let admin = Some(app.admin.as_str());
    let dir = scratch("bulk-xlsx");
    let file = dir.join("provinsi.xlsx");
    // A clerk's sheet: header row, codes typed as text, one name missing.
    python(
        "import sys, openpyxl\n\
         b = openpyxl.Workbook()\n\
         ws = b.active\n\
         ws.title = 'Provinsi'\n\
         ws.append(['code', 'name'])\n\
         ws.append(['19', 'Kepulauan Bangka Belitung'])\n\
         ws.append(['31', None])\n\
         b.save(sys.argv[1])",
        &[&file],
    );
    let r = post_workbook(&app, "/api/v1/provinces/bulk", &app.admin, &file).await;
    r.assert_problem(422, "validation-error");
    assert!(
        r.fields().iter().any(|f| f.starts_with("'Provinsi' row 3")),
        "{}",
        r.text
    );
    python(
        "import sys, openpyxl\n\
         b = openpyxl.load_workbook(sys.argv[1])\n\
         b.active['B3'] = 'DKI Jakarta'\n\
         b.save(sys.argv[1])",
        &[&file],
    );
    let ok = post_workbook(&app, "/api/v1/provinces/bulk", &app.admin, &file).await;
    ok.assert_ok();
    assert_eq!(ok.body["created"], 2, "{}", ok.text);
    let listed = app.get("/api/v1/provinces", admin).await;
    assert!(listed.text.contains("DKI Jakarta"), "{}", listed.text);
    let _ = std::fs::remove_dir_all(&dir);
}
