//! The assessment as an XLSForm: converted by pyxform (what KoboToolbox and ODK Central run on
//! upload) with no error and no warning, and holding what the methodology asks.

mod common;

use common::TestApp;
use serde_json::Value;
use sqlx::PgPool;

/// Converts an XLSForm to an XForm with pyxform; prints the warnings and what the form holds.
const CONVERT: &str = r#"
import json, sys
from pyxform.xls2xform import xls2xform_convert
warnings = xls2xform_convert(xlsform_path=sys.argv[1], xform_path=sys.argv[2])
xml = open(sys.argv[2], encoding="utf-8").read()
print(json.dumps({"warnings": warnings, "xml": xml}))
"#;

#[sqlx::test(migrations = "../../migrations")]
async fn the_assessment_xlsform_converts_with_pyxform_without_warnings(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let (state, tokens) = common::demo(&pool, false).await;
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2025/forms/assessment.xlsx"))
        .bearer_auth(&tokens.assessor)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let dir = std::env::temp_dir().join(format!("kepatuhan-xlsform-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (xlsx, xml) = (dir.join("form.xlsx"), dir.join("form.xml"));
    std::fs::write(&xlsx, res.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("/var/tmp/kepatuhan-venv/bin/python")
        .arg("-c")
        .arg(CONVERT)
        .arg(&xlsx)
        .arg(&xml)
        .output()
        .expect("the test command installs pyxform (`just tools`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let converted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        converted["warnings"],
        serde_json::json!([]),
        "pyxform warned"
    );
    let xform = converted["xml"].as_str().unwrap();
    // Every indicator is a question with its levels; not-applicable rules and photos where the
    // methodology asks for them; the unit from the assessor's own sample.
    let m = state.methodology("ori-2025").unwrap();
    for id in m.indicator_ids() {
        let ind = m.indicator(id);
        assert!(xform.contains(&format!("/{}\"", ind.code)), "{}", ind.code);
        if ind.not_applicable_allowed {
            // The level is asked only when the indicator applies.
            let rule = format!("/na_{}  != 'ya'\"", ind.code);
            assert!(xform.contains(&rule), "{rule}");
        }
        if ind.evidence_expected {
            assert!(
                xform.contains(&format!("photo_{}", ind.code)),
                "{}",
                ind.code
            );
        }
    }
    assert!(xform.contains("mediatype=\"image/*\""));
    let sample = app
        .get("/api/v1/cycles/2025/sample", Some(&tokens.assessor))
        .await;
    let offered: Vec<&Value> = sample
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["excluded_reason"].is_null())
        .collect();
    for u in &offered {
        let choice = format!("<name>u{}</name>", u["unit_id"]);
        assert!(xform.contains(&choice), "{choice}");
    }
    assert_eq!(xform.matches("<name>u").count(), offered.len());
    // Only the units asked for are offered: one entity's.
    let res = app
        .client
        .get(app.url("/api/v1/cycles/2025/forms/assessment.xlsx?entity=19.01"))
        .bearer_auth(&tokens.office)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap();
    let bangka = offered
        .iter()
        .filter(|u| u["entity_code"] == "19.01")
        .count();
    assert!(bangka > 0 && bangka < offered.len());
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let choices = calamine::Reader::worksheet_range(&mut book, "choices").unwrap();
    let units = choices.rows().filter(|r| r[0] == "units").count();
    assert_eq!(units, bangka);
}
