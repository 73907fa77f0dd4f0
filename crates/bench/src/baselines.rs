//! Baselines measured beside our figures, and the report in docs/benchmarks.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kepatuhan_core::Methodology;
use kepatuhan_core::methodology::VariableMeasure;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;

use crate::BenchResult;
use crate::national::Dataset;

/// The baseline statement (see [`sql_recompute`]).
const SQL_BASELINE: &str = r"
        WITH ind AS (SELECT * FROM unnest($2::text[], $3::text[], $4::numeric[], $5::numeric[]) AS t(code, var, w, max)),
        var AS (SELECT * FROM unnest($6::text[], $7::text[], $8::numeric[], $9::text[]) AS t(code, dim, w, survey)),
        dim AS (SELECT * FROM unnest($10::text[], $11::numeric[]) AS t(code, w)),
        sub AS (SELECT s.id, s.unit_id, u.entity_id FROM submissions s JOIN units u ON u.id = s.unit_id
                WHERE s.cycle_id = (SELECT id FROM cycles WHERE kind = 'official' AND year = $1) AND s.state = 'verified'),
        indicator_vars AS (
            SELECT sub.unit_id, ind.var, 100 * sum(ind.w * v.value / ind.max) / sum(ind.w) AS score
            FROM sub JOIN submission_values v ON v.submission_id = sub.id JOIN ind ON ind.code = v.indicator_code
            WHERE NOT v.not_applicable AND v.value IS NOT NULL
            GROUP BY sub.unit_id, ind.var),
        respondents AS (
            SELECT r.unit_id, r.survey_code, r.reported <> '[]'::jsonb AS reported
            FROM survey_responses r
            WHERE r.cycle_id = (SELECT id FROM cycles WHERE kind = 'official' AND year = $1)),
        survey_vars AS (
            SELECT sub.unit_id, var.code AS var, 100.0 * count(*) FILTER (WHERE NOT p.reported) / count(*) AS score
            FROM sub JOIN respondents p ON p.unit_id = sub.unit_id JOIN var ON var.survey = p.survey_code
            GROUP BY sub.unit_id, var.code),
        vars AS (SELECT * FROM indicator_vars UNION ALL SELECT * FROM survey_vars),
        dims AS (
            SELECT vars.unit_id, var.dim, sum(var.w * vars.score) / sum(var.w) AS score
            FROM vars JOIN var ON var.code = vars.var GROUP BY vars.unit_id, var.dim),
        units AS (
            SELECT dims.unit_id, round(round(least(greatest(sum(dim.w * dims.score) / sum(dim.w), 0), 100), 12), 2) AS score
            FROM dims JOIN dim ON dim.code = dims.dim GROUP BY dims.unit_id),
        entities AS (
            SELECT sub.entity_id, round(round(avg(units.score), 12), 2) AS score
            FROM units JOIN sub USING (unit_id) GROUP BY sub.entity_id)
        SELECT 'unit' AS level, unit_id AS id, score FROM units
        UNION ALL SELECT 'entity', entity_id, score FROM entities";

/// Unit and entity scores of a cycle in one hand-written SQL statement: rules 1–4 of
/// docs/scoring.md (weighted means over the applicable indicators, variables and dimensions,
/// the no-maladministration share of survey respondents, published scores rounded half-up to 2
/// decimals, entity = mean of its units' published scores). Postgres divides `numeric` to about
/// 20 significant digits, so an exact tie such as 93.305 can arrive as 93.30499…; the statement
/// rounds to 12 places before the 2 published ones, as the core's exact arithmetic needs no such
/// step (the first national run found two such units). The methodology's tree is passed
/// as arrays. Returns the median time of 3 runs and how many scores differ from the stored
/// results the worker wrote.
pub async fn sql_recompute(pool: &PgPool, m: &Methodology, year: u16) -> BenchResult<(f64, usize)> {
    let mut ind = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut var = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<Option<String>>::new(),
    );
    let mut dim = (Vec::new(), Vec::new());
    for d in m.dimensions() {
        dim.0.push(d.code.clone());
        dim.1.push(d.weight.value());
        for v in &d.variables {
            var.0.push(v.code.clone());
            var.1.push(d.code.clone());
            var.2.push(v.weight.value());
            match &v.measure {
                VariableMeasure::Indicators { indicators, .. } => {
                    var.3.push(None);
                    for i in indicators {
                        ind.0.push(i.code.clone());
                        ind.1.push(v.code.clone());
                        ind.2.push(i.weight.value());
                        ind.3.push(Decimal::from(i.scale.max()));
                    }
                }
                VariableMeasure::Survey(s) => var.3.push(Some(s.code.clone())),
            }
        }
    }

    let mut times = Vec::new();
    let mut rows: Vec<(String, i64, Decimal)> = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        rows = sqlx::query_as(SQL_BASELINE)
            .bind(i32::from(year))
            .bind(&ind.0)
            .bind(&ind.1)
            .bind(&ind.2)
            .bind(&ind.3)
            .bind(&var.0)
            .bind(&var.1)
            .bind(&var.2)
            .bind(&var.3)
            .bind(&dim.0)
            .bind(&dim.1)
            .fetch_all(pool)
            .await?;
        times.push(started.elapsed().as_secs_f64());
    }
    let stored: HashMap<(String, i64), Decimal> = sqlx::query_as::<_, (String, i64, Decimal)>(
        "SELECT 'unit', r.unit_id, r.score FROM unit_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision WHERE c.kind = 'official' AND c.year = $1
         UNION ALL
         SELECT 'entity', r.entity_id, r.score FROM entity_results r JOIN cycles c ON c.id = r.cycle_id AND c.results_revision = r.revision WHERE c.kind = 'official' AND c.year = $1",
    )
    .bind(i32::from(year))
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(l, id, s)| ((l, id), s))
    .collect();
    let mut mismatches = usize::from(stored.len() != rows.len());
    for (level, id, score) in rows {
        let ours = stored.get(&(level.clone(), id)).map(Decimal::normalize);
        if ours != Some(score.normalize()) {
            eprintln!("  {level} {id}: SQL {score}, worker {ours:?}");
            mismatches += 1;
        }
    }
    Ok((crate::client::median(times), mismatches))
}

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs a Debian package when `program` is missing (the bench runs as an operator would on
/// a fresh machine).
fn ensure(program: &str, packages: &[&str]) -> BenchResult<()> {
    if installed(program) {
        return Ok(());
    }
    eprintln!("installing {packages:?} for `{program}`");
    let sudo = if Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))?
    {
        ""
    } else {
        "sudo "
    };
    let status = Command::new("sh")
        .args([
            "-c",
            &format!(
                "{sudo}apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq --no-install-recommends {} >/dev/null",
                packages.join(" ")
            ),
        ])
        .status()?;
    if status.success() && installed(program) {
        Ok(())
    } else {
        Err(format!("could not install {packages:?}").into())
    }
}

/// Parses a wrk latency such as `812.00us`, `3.21ms` or `1.02s` into milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `wrk` with 64 connections against `url` (anonymous, as the public reads published rankings):
/// (requests per second, p99 latency in ms). Skipped in smoke mode.
pub fn load_test(url: &str, smoke: bool) -> BenchResult<Option<(f64, f64)>> {
    if smoke {
        return Ok(None);
    }
    ensure("wrk", &["wrk"])?;
    let wrk = |seconds: &str| {
        Command::new("wrk")
            .args(["-t2", "-c64", "-d", seconds, "--latency", url])
            .output()
    };
    wrk("3s")?; // warm-up: connections, caches
    let out = wrk("15s")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| wrk_ms(v.trim()));
    let non_2xx = text.lines().any(|l| l.contains("Non-2xx"));
    match (rps, p99) {
        (Some(r), Some(p)) if !non_2xx => Ok(Some((r, p))),
        _ => Err(format!("unexpected wrk output:\n{text}").into()),
    }
}

/// The certificate as a flat ODT (`OpenDocument`) template with `{{…}}` fields.
const ODT_TEMPLATE: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
 <office:styles>
  <style:style style:name="Title" style:family="paragraph"><style:paragraph-properties fo:text-align="center" fo:margin-top="1cm"/><style:text-properties fo:font-size="32pt" fo:font-weight="bold" fo:color="#7a5c00"/></style:style>
  <style:style style:name="Centre" style:family="paragraph"><style:paragraph-properties fo:text-align="center" fo:margin-top="0.3cm"/><style:text-properties fo:font-size="14pt"/></style:style>
  <style:style style:name="Name" style:family="paragraph"><style:paragraph-properties fo:text-align="center" fo:margin-top="0.6cm"/><style:text-properties fo:font-size="22pt" fo:font-weight="bold"/></style:style>
  <style:style style:name="Score" style:family="paragraph"><style:paragraph-properties fo:text-align="center" fo:margin-top="0.6cm"/><style:text-properties fo:font-size="28pt" fo:font-weight="bold" fo:color="#1b5e20"/></style:style>
 </office:styles>
 <office:automatic-styles>
  <style:page-layout style:name="Landscape"><style:page-layout-properties fo:page-width="29.7cm" fo:page-height="21cm" style:print-orientation="landscape" fo:margin="1.5cm" fo:border="0.1cm double #7a5c00" fo:padding="0.5cm"/></style:page-layout>
 </office:automatic-styles>
 <office:master-styles><style:master-page style:name="Standard" style:page-layout-name="Landscape"/></office:master-styles>
 <office:body><office:text>
  <text:p text:style-name="Centre">OMBUDSMAN REPUBLIK INDONESIA</text:p>
  <text:p text:style-name="Title">PIAGAM PENGHARGAAN</text:p>
  <text:p text:style-name="Centre">diberikan kepada</text:p>
  <text:p text:style-name="Name">{{recipient}}</text:p>
  <text:p text:style-name="Centre">{{entity}}</text:p>
  <text:p text:style-name="Centre">atas hasil Penilaian Kepatuhan Penyelenggaraan Pelayanan Publik Tahun {{year}}</text:p>
  <text:p text:style-name="Score">Nilai {{score}}</text:p>
  <text:p text:style-name="Centre">{{grade}}</text:p>
  <text:p text:style-name="Centre">Jakarta, {{date}}</text:p>
  <text:p text:style-name="Centre">Ketua Ombudsman Republik Indonesia</text:p>
  <text:p text:style-name="Centre">Kode verifikasi: {{code}}</text:p>
 </office:text></office:body>
</office:document>
"##;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `LibreOffice`'s rate: the ODT template filled for 40 units and converted by one
/// `soffice --headless --convert-to pdf` run (after a warm-up run). Skipped in smoke mode.
pub fn libreoffice(dir: &Path, data: &Dataset, smoke: bool) -> BenchResult<Option<f64>> {
    if smoke {
        return Ok(None);
    }
    ensure(
        "soffice",
        &["libreoffice-writer-nogui", "fonts-dejavu-core"],
    )?;
    let work = dir.join("libreoffice");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("pdf"))?;
    let profile = format!(
        "-env:UserInstallation=file://{}",
        work.join("profile").display()
    );
    let mut files = Vec::new();
    for (i, (e, u)) in data
        .entities
        .iter()
        .flat_map(|e| e.units.iter().map(move |u| (e, u)))
        .take(41)
        .enumerate()
    {
        let filled = ODT_TEMPLATE
            .replace("{{recipient}}", &xml_escape(&u.name))
            .replace("{{entity}}", &xml_escape(&e.name))
            .replace("{{year}}", "2024")
            .replace(
                "{{score}}",
                &format!("{},{:02}", u.quality.0 / 10, u.quality.0 % 10 * 10),
            )
            .replace("{{grade}}", "A — Kualitas Tertinggi")
            .replace("{{date}}", "10 Desember 2024")
            .replace("{{code}}", &format!("BENCH{i:04}"));
        let path = work.join(format!("piagam-{i:04}.fodt"));
        std::fs::write(&path, filled)?;
        files.push(path);
    }
    let convert = |batch: &[std::path::PathBuf]| {
        Command::new("soffice")
            .arg(&profile)
            .args(["--headless", "--convert-to", "pdf", "--outdir"])
            .arg(work.join("pdf"))
            .args(batch)
            .output()
    };
    // Warm-up: the first start creates the profile.
    convert(&files[..1])?;
    let batch = &files[1..];
    let started = Instant::now();
    let out = convert(batch)?;
    let elapsed = started.elapsed().as_secs_f64();
    let made = batch
        .iter()
        .filter(|f| {
            f.file_stem().is_some_and(|s| {
                work.join("pdf")
                    .join(format!("{}.pdf", s.to_string_lossy()))
                    .is_file()
            })
        })
        .count();
    if made != batch.len() {
        return Err(format!(
            "LibreOffice converted {made} of {} files: {}",
            batch.len(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(Some(made as f64 / elapsed))
}

/// A figure of the table: key, what, target as text, and (higher is better, goal).
type Target = (
    &'static str,
    &'static str,
    &'static str,
    Option<(bool, f64)>,
);

const TARGETS: [Target; 28] = [
    (
        "ingest_values_per_s",
        "indicator values loaded per second through the API (validation and audit included)",
        "≥ 20,000",
        Some((true, 20_000.0)),
    ),
    (
        "recompute_full_s",
        "full national recompute through the worker, enqueue → results committed (s)",
        "≤ 2",
        Some((false, 2.0)),
    ),
    (
        "recompute_sql_baseline_s",
        "the same unit and entity scores by one hand-written SQL statement (s)",
        "baseline",
        None,
    ),
    (
        "recompute_vs_sql_ratio",
        "recompute_full_s / recompute_sql_baseline_s",
        "≤ 1.5",
        Some((false, 1.5)),
    ),
    (
        "recompute_incremental_p99_ms",
        "verify one submission → its result and new ranks readable, p99 (ms)",
        "≤ 50",
        Some((false, 50.0)),
    ),
    (
        "certificates_per_s",
        "certificate PDFs rendered and stored per second, whole worker",
        "≥ 100",
        Some((true, 100.0)),
    ),
    (
        "libreoffice_certificates_per_s",
        "the same certificate from an ODT template by `soffice --convert-to pdf`",
        "baseline",
        None,
    ),
    (
        "certificates_vs_libreoffice_ratio",
        "certificates_per_s / libreoffice_certificates_per_s",
        "≥ 20",
        Some((true, 20.0)),
    ),
    (
        "certificate_kb_median",
        "median certificate size (KB)",
        "≤ 100",
        Some((false, 100.0)),
    ),
    (
        "rankings_rps",
        "published rankings endpoint, anonymous, wrk, 64 connections (requests/s)",
        "≥ 10,000",
        Some((true, 10_000.0)),
    ),
    (
        "rankings_p99_ms",
        "same, p99 latency (ms)",
        "≤ 10",
        Some((false, 10.0)),
    ),
    (
        "api_rss_mb",
        "peak resident memory of the api (MiB)",
        "≤ 100",
        Some((false, 100.0)),
    ),
    (
        "worker_rss_mb",
        "peak resident memory of the worker (MiB)",
        "≤ 250",
        Some((false, 250.0)),
    ),
    (
        "flags_overhead_s",
        "what flagging adds to a full recompute: the worker's `flags_ms`, median of the three (s)",
        "≤ 0.5",
        Some((false, 0.5)),
    ),
    (
        "flags_precision_min",
        "integrity flags against the planted anomalies: the lowest precision of the six kinds",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_recall_min",
        "the lowest recall of the six kinds",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_year_on_year_jump_precision",
        "`year_on_year_jump`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_year_on_year_jump_recall",
        "`year_on_year_jump`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_identical_sheets_precision",
        "`identical_sheets`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_identical_sheets_recall",
        "`identical_sheets`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_survey_contradiction_precision",
        "`survey_contradiction`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_survey_contradiction_recall",
        "`survey_contradiction`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_top_marks_without_evidence_precision",
        "`top_marks_without_evidence`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_top_marks_without_evidence_recall",
        "`top_marks_without_evidence`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_assessor_outlier_precision",
        "`assessor_outlier`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_assessor_outlier_recall",
        "`assessor_outlier`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_cutoff_bunching_precision",
        "`cutoff_bunching`: flags matching a planted anomaly ÷ flags",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
    (
        "flags_cutoff_bunching_recall",
        "`cutoff_bunching`: planted anomalies found ÷ planted",
        "≥ 0.9",
        Some((true, 0.9)),
    ),
];

const BEGIN: &str = "<!-- bench-results:begin (written by `just bench`) -->";
const END: &str = "<!-- bench-results:end -->";

/// The rows of scaled runs (`scaleN_…` figures): cost must grow no faster than the units, so the
/// full recompute at N × the units takes at most N × the 1× run's, and stays within 1.2 × the
/// SQL statement computing the same scores.
fn scaled_rows(report: &Value) -> Vec<String> {
    let results = &report["results"];
    let mut scales: Vec<u64> = results
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("scale")?.split_once('_')?.0.parse().ok())
        .collect();
    scales.sort_unstable();
    scales.dedup();
    let mut rows = Vec::new();
    for n in scales {
        let at = |key: &str| results[format!("scale{n}_{key}")].as_f64();
        let dataset = &report[format!("dataset_scale{n}")];
        #[allow(clippy::cast_precision_loss)]
        let limit = results["recompute_full_s"].as_f64().map(|v| v * n as f64);
        let verdict = |ok: Option<bool>| match ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let figures = [
            (
                "ingest_values_per_s",
                format!(
                    "indicator values per second, {n} × the units ({} units, {} values)",
                    dataset["units"], dataset["indicator_values"]
                ),
                "—".to_owned(),
                "—",
            ),
            (
                "recompute_full_s",
                format!("full recompute at {n} × the units (s)"),
                format!("≤ {n} × recompute_full_s"),
                verdict(at("recompute_full_s").zip(limit).map(|(v, l)| v <= l)),
            ),
            (
                "recompute_sql_baseline_s",
                format!("the SQL statement at {n} × the units (s)"),
                "baseline".to_owned(),
                "—",
            ),
            (
                "recompute_vs_sql_ratio",
                format!("full recompute / SQL statement at {n} × the units"),
                "≤ 1.2".to_owned(),
                verdict(at("recompute_vs_sql_ratio").map(|v| v <= 1.2)),
            ),
        ];
        for (key, what, target, met) in figures {
            let shown = at(key).map_or_else(|| "—".to_owned(), |v| v.to_string());
            rows.push(format!(
                "| `scale{n}_{key}` | {what} | {target} | {shown} | {met} |"
            ));
        }
    }
    rows
}

/// Replaces the generated section of docs/benchmarks.md with this run's table.
pub fn write_docs(path: &Path, report: &Value) -> BenchResult<()> {
    let results = &report["results"];
    let machine = &report["machine"];
    let dataset = &report["dataset"];
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(
        out,
        "Run of {} on {} ({} cores, {} GiB), {}, PostgreSQL {}, kernel {}. Dataset: {} entities, {} units, {} indicator values, {} survey responses, two earlier published cycles. Whole run: {} s.\n",
        report["date"].as_str().unwrap_or_default(),
        machine["cpu"].as_str().unwrap_or_default(),
        machine["cores"],
        machine["memory_gib"],
        machine["rustc"].as_str().unwrap_or_default(),
        machine["postgres"].as_str().unwrap_or_default(),
        machine["kernel"].as_str().unwrap_or_default(),
        dataset["entities"],
        dataset["units"],
        dataset["indicator_values"],
        dataset["survey_responses"],
        report["run_s"],
    );
    let _ = writeln!(out, "| key | what | target | result | met |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (key, what, target, check) in TARGETS {
        let value = &results[key];
        let met = match (check, value.as_f64()) {
            (Some((true, goal)), Some(v)) => {
                if v >= goal {
                    "yes"
                } else {
                    "**no**"
                }
            }
            (Some((false, goal)), Some(v)) => {
                if v <= goal {
                    "yes"
                } else {
                    "**no**"
                }
            }
            (None, _) => "—",
            (_, None) => "not measured",
        };
        let shown = if value.is_null() {
            "—".to_owned()
        } else {
            value.to_string()
        };
        let _ = writeln!(out, "| `{key}` | {what} | {target} | {shown} | {met} |");
    }
    for row in scaled_rows(report) {
        let _ = writeln!(out, "{row}");
    }
    let _ = write!(out, "{END}");
    let doc = std::fs::read_to_string(path)?;
    let updated = match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{out}{}", &doc[..b], &doc[e + END.len()..]),
        _ => format!("{doc}\n{out}\n"),
    };
    std::fs::write(path, updated)?;
    Ok(())
}
