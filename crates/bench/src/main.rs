//! `kepatuhan-bench`: the national-scale data generator and the benchmark suite.
//!
//! ```text
//! kepatuhan-bench generate [--smoke] [--scale N] [--seed N] [--out DIR]
//! kepatuhan-bench run [--smoke] [--scale N] [--seed N] [--bin-dir DIR] [--results FILE] [--docs FILE]
//! kepatuhan-bench flags [--scale N] [--seed N] [--verbose]
//! kepatuhan-bench check-sql --database-url URL
//! kepatuhan-bench render [--count N]
//! ```
//!
//! `run` creates a fresh database, starts the real `kepatuhan-api` and `kepatuhan-worker`
//! processes from `--bin-dir`, loads the generated national cycle through the HTTP API, and
//! measures each figure of docs/benchmarks.md beside its baseline (a hand-written SQL statement,
//! `LibreOffice`, a load generator). Every figure comes from this run; nothing is typed by hand.
//! `--smoke` does the same on a tiny dataset in seconds and skips the external baselines: the
//! test suite runs it so the harness never rots. `--scale N` runs it on N times the units per
//! entity (self-assessment of every unit is about ten times the official sample) and records
//! its figures as `scaleN_…` beside the 1× ones already in `--results`. `render` times the certificate renderer alone,
//! in process on one thread (for profiling: no database, no queue).
//!
//! The generated cycle carries planted integrity anomalies ([`planted`]), written beside the
//! data as `planted.json`; `run` scores the worker's flags against them. Without `--seed`, the
//! seed is drawn at run time (a `--scale` run takes the 1× run's from `--results`) and recorded.
//! `flags` runs the flag rules in memory on the generated cycle and prints each planted kind's
//! precision and recall and each rule's time: for tuning, in seconds, without a database.

mod baselines;
mod client;
mod national;
mod planted;
mod procs;
mod suite;
mod workbooks;

/// The worker's allocator, so that `render` times what the worker does.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::{Path, PathBuf};
use std::time::Instant;

use kepatuhan_core::Methodology;
use kepatuhan_core::synthetic::Rng;
use sqlx::PgPool;

use crate::national::{Dataset, Shape};

pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The live cycle and the two earlier published ones.
pub(crate) const YEARS: [u16; 3] = [2022, 2023, 2024];
/// Submissions verified one by one while the worker runs, to time incremental recomputes.
pub(crate) const INCREMENTAL: usize = 200;
/// Requests in flight while loading data (the API has two cores to use).
pub(crate) const LOAD_CONCURRENCY: usize = 8;
/// Units per bulk upload of drafts.
pub(crate) const INGEST_BATCH: usize = 50;

/// Units in the assessment workbook the bench uploads (issue 14: a 50-unit workbook).
pub(crate) const WORKBOOK_UNITS: usize = 50;

pub(crate) struct Options {
    smoke: bool,
    /// How many times the units per entity of the national (or smoke) shape.
    scale: u64,
    /// `None`: drawn at run time (or the 1× run's, for a scaled run).
    seed: Option<u64>,
    bin_dir: PathBuf,
    out: PathBuf,
    results: Option<PathBuf>,
    docs: Option<PathBuf>,
    database_url: String,
    count: usize,
    /// `flags`: list every cycle-wide flag, not only the false ones.
    verbose: bool,
}

fn parse(args: &[String]) -> BenchResult<(String, Options)> {
    let command = args.first().cloned().unwrap_or_default();
    let mut o = Options {
        smoke: false,
        scale: 1,
        seed: None,
        bin_dir: std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        out: std::env::temp_dir().join("kepatuhan-bench-data"),
        results: None,
        docs: None,
        database_url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        count: 400,
        verbose: false,
    };
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--smoke" => o.smoke = true,
            "--verbose" => o.verbose = true,
            "--scale" => {
                o.scale = value()?.parse()?;
                if !(1..=20).contains(&o.scale) {
                    return Err("--scale takes a whole number from 1 to 20".into());
                }
            }
            "--seed" => o.seed = Some(value()?.parse()?),
            "--bin-dir" => o.bin_dir = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--results" => o.results = Some(value()?.into()),
            "--docs" => o.docs = Some(value()?.into()),
            "--database-url" => o.database_url = value()?,
            "--count" => o.count = value()?.parse()?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    Ok((command, o))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match parse(&args) {
        Ok((c, mut o)) if c == "generate" => generate(&mut o).map(|_| ()),
        Ok((c, mut o)) if c == "flags" => flags(&mut o),
        Ok((c, o)) if c == "run" => suite::run(o).await,
        // Re-checks the SQL baseline against the results of an earlier run's database.
        Ok((c, o)) if c == "check-sql" => check_sql(&o).await,
        Ok((c, o)) if c == "render" => render(&o),
        Ok(_) => Err("usage: kepatuhan-bench generate|run|flags|check-sql|render [--smoke] [--scale N] [--seed N] [--bin-dir DIR] [--out DIR] [--results FILE] [--docs FILE] [--count N]".into()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kepatuhan-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn methodology() -> BenchResult<Methodology> {
    kepatuhan_core::methodology::builtin::by_code("ori-2022")
        .ok_or_else(|| "the ori-2022 methodology is not shipped".into())
}

/// The run's seed: `--seed`, else the 1× run's recorded in `--results` (for a scaled run), else
/// drawn now. Set in `o`, so the report records it.
fn seed(o: &mut Options) -> BenchResult<u64> {
    if let Some(seed) = o.seed {
        return Ok(seed);
    }
    let recorded = match (&o.results, o.scale > 1) {
        (Some(path), true) if path.exists() => {
            let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
            report["seed"].as_u64()
        }
        _ => None,
    };
    let seed = recorded.unwrap_or_else(rand::random);
    o.seed = Some(seed);
    Ok(seed)
}

/// The dataset with its planted anomalies.
fn dataset(o: &mut Options) -> BenchResult<(Methodology, Dataset, Vec<planted::Planted>, u64)> {
    let m = methodology()?;
    let seed = seed(o)?;
    let shape = if o.smoke {
        Shape::SMOKE
    } else {
        Shape::NATIONAL
    }
    .scaled(o.scale);
    let mut data = national::generate(&m, shape, seed);
    let truth = planted::plant(
        &m,
        &mut data,
        &mut Rng::new(seed ^ 0x0070_6c61_6e74_6564),
        o.scale,
    );
    Ok((m, data, truth, seed))
}

/// Generates the dataset and writes its files, `planted.json` included.
fn generate(o: &mut Options) -> BenchResult<(Dataset, Vec<planted::Planted>)> {
    let started = Instant::now();
    let (m, data, truth, seed) = dataset(o)?;
    data.write_files(&m, &o.out, seed, YEARS)?;
    std::fs::write(
        o.out.join("planted.json"),
        serde_json::to_vec_pretty(&truth)?,
    )?;
    eprintln!(
        "generated {} entities, {} units in {} ({:.1} s)",
        data.entities.len(),
        data.unit_count(),
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok((data, truth))
}

/// `flags`: the flag rules in memory on the generated cycle, scored against the planted truth.
fn flags(o: &mut Options) -> BenchResult<()> {
    let (m, data, truth, seed) = dataset(o)?;
    // Thresholds to try, as the worker takes them (`KEPATUHAN_FLAG_SETTINGS`).
    let settings: kepatuhan_core::flags::FlagSettings =
        match std::env::var("KEPATUHAN_FLAG_SETTINGS") {
            Ok(json) => serde_json::from_str(&json)?,
            Err(_) => kepatuhan_core::flags::FlagSettings::default(),
        };
    let (found, timings) = planted::in_memory(&m, &data, seed, &settings);
    println!(
        "seed {seed}: {} units, {} assessors",
        data.unit_count(),
        data.assessors.len()
    );
    for k in planted::evaluate(&truth, &found) {
        println!(
            "{:<28} planted {:>3}  flags {:>4}  true {:>3}  found {:>3}  precision {:>5}  recall {:>5}",
            k.kind.code(),
            k.planted,
            k.flags,
            k.true_flags,
            k.found,
            k.precision().map_or("-".into(), |p| format!("{p:.2}")),
            k.recall().map_or("-".into(), |r| format!("{r:.2}")),
        );
    }
    // With `--verbose`: every flag of a cycle-wide kind, true or false, with its numbers.
    if o.verbose {
        for f in found.iter().filter(|f| !f.kind.is_entity_scoped()) {
            println!(
                "  {} {:?} {:?} {:?} {}",
                f.kind, f.units, f.assessor, f.province, f.detail
            );
        }
    }
    let (false_flags, missed) = planted::misses(&truth, &found);
    for f in false_flags {
        println!(
            "  false {}: {:?} {:?} {:?} {:?} {}",
            f.kind, f.units, f.entity, f.assessor, f.province, f.detail
        );
    }
    for p in missed {
        println!("  missed {}", serde_json::to_string(p)?);
    }
    for (rule, ms) in timings {
        println!("{rule:<24} {ms:>9.1} ms");
    }
    Ok(())
}

/// Checks the SQL baseline against the stored results of an earlier run's database.
async fn check_sql(o: &Options) -> BenchResult<()> {
    let pool = PgPool::connect(&o.database_url).await?;
    let (seconds, mismatches) = baselines::sql_recompute(&pool, &methodology()?, YEARS[2]).await?;
    println!("SQL baseline {seconds:.3} s, {mismatches} scores differ from the stored results");
    Ok(())
}

/// Renders `--count` distinct certificates on this thread, one by one and then in the worker's
/// batches, and prints the time per certificate, the mean size and this process's peak memory;
/// writes the first certificate to `--out` for a look.
fn render(o: &Options) -> BenchResult<()> {
    use kepatuhan_worker::render::{CertificateData, Renderer};
    let data = national::generate(&methodology()?, Shape::NATIONAL, o.seed.unwrap_or(2024));
    let rss = |key: &str| -> BenchResult<String> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        Ok(status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("?")
            .trim()
            .to_owned())
    };
    let before = rss("VmRSS:")?;
    let renderer = Renderer::new();
    let units: Vec<_> = data
        .entities
        .iter()
        .flat_map(|e| e.units.iter().map(move |u| (e, u)))
        .collect();
    let certificate = |i: usize| {
        let (entity, unit) = units[i % units.len()];
        CertificateData {
            code: format!("BNCH-{i:04}-0000-0000"),
            verify_url: format!("https://kepatuhan.ombudsman.go.id/verify/BNCH-{i:04}-0000-0000"),
            recipient: unit.name.clone(),
            recipient_detail: Some(entity.name.clone()),
            year: 2024,
            score: kepatuhan_core::PublishedScore::new(rust_decimal::Decimal::new(
                7_000 + i64::try_from(i % 3_000).unwrap_or(0),
                2,
            ))
            .unwrap_or_else(|_| unreachable!("70.00–99.99 is a score")),
            grade_code: "A".into(),
            grade_label: "Kualitas Tertinggi".into(),
            zone: Some(kepatuhan_core::methodology::Zone::Green),
            rank: Some(format!("Peringkat {} dari 415 kabupaten", i % 415 + 1)),
            place: "Jakarta".into(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 12, 10).unwrap_or_default(),
            signatory_name: "Mokhammad Najih".into(),
            signatory_title: "Ketua Ombudsman Republik Indonesia".into(),
        }
    };
    // One warm-up render (fonts, template), then the timed ones: alone, then in the worker's
    // batches.
    renderer.render(&certificate(o.count))?;
    let single = Instant::now();
    let mut bytes = 0usize;
    for i in 0..o.count {
        bytes += renderer.render(&certificate(i))?.len();
    }
    #[allow(clippy::cast_precision_loss)]
    let single_per = single.elapsed().as_secs_f64() * 1000.0 / o.count as f64;
    let batched = Instant::now();
    let all: Vec<CertificateData> = (0..o.count).map(certificate).collect();
    let mut first = None;
    for batch in all.chunks(kepatuhan_worker::queues::certificates::RENDER_BATCH) {
        let pdfs = renderer.render_many(batch)?;
        if first.is_none() {
            first = pdfs.into_iter().next();
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let per = batched.elapsed().as_secs_f64() * 1000.0 / o.count as f64;
    #[allow(clippy::cast_precision_loss)]
    let kb = bytes as f64 / 1024.0 / o.count as f64;
    println!(
        "{} certificates on one thread: {single_per:.2} ms each alone, {per:.2} ms each in batches of {} ({:.0}/s), {kb:.1} KB mean; RSS {before} before the renderer, {} after, peak {}",
        o.count,
        kepatuhan_worker::queues::certificates::RENDER_BATCH,
        1000.0 / per,
        rss("VmRSS:")?,
        rss("VmHWM:")?
    );
    if let Some(pdf) = first {
        std::fs::create_dir_all(&o.out)?;
        let path = o.out.join("certificate-sample.pdf");
        std::fs::write(&path, pdf)?;
        println!("the first certificate: {}", path.display());
    }
    Ok(())
}
