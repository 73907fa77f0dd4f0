//! The benchmark harness (`kepatuhan-bench`, docs/benchmarks.md) in smoke mode, so it never rots:
//! a tiny dataset through the real api and worker processes, every phase, every key of
//! `bench-results.json`. And the national generator's shape and determinism.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_kepatuhan-bench");

/// The directory holding `kepatuhan-api` and `kepatuhan-worker` of this build: beside this
/// package's binary. `cargo test --workspace` builds them (their packages have integration tests);
/// a narrower run must build them first, and this says so rather than building from a test.
fn bin_dir() -> PathBuf {
    let dir = Path::new(BENCH).parent().unwrap().to_path_buf();
    for bin in ["kepatuhan-api", "kepatuhan-worker"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} is not built in {}: run `cargo build -p kepatuhan-api -p kepatuhan-worker` \
             first, or `cargo test --workspace`",
            dir.display()
        );
    }
    dir
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kepatuhan-bench-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kepatuhan-bench run --smoke` with `extra` arguments, its data in `out`, writing `results`
/// (and `docs`); fails the test with the bench's standard error when the run fails.
fn run_smoke(extra: &[&str], out: &Path, results: &Path, docs: Option<&Path>) {
    let mut command = Command::new(BENCH);
    command
        .args(["run", "--smoke"])
        .args(extra)
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(out)
        .arg("--results")
        .arg(results);
    if let Some(docs) = docs {
        command.arg("--docs").arg(docs);
    }
    let done = command.output().unwrap();
    assert!(
        done.status.success(),
        "bench {extra:?} failed:\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn smoke_run_measures_every_figure_through_the_real_processes() {
    let dir = temp("smoke");
    let results = dir.join("bench-results.json");
    let docs = dir.join("benchmarks.md");
    std::fs::write(
        &docs,
        "# Benchmarks\n\nbefore\n\n<!-- bench-results:begin (written by `just bench`) -->\nold\n<!-- bench-results:end -->\n\nafter\n",
    )
    .unwrap();
    run_smoke(&[], &dir.join("data"), &results, Some(&docs));

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(report["mode"], "smoke");
    let r = &report["results"];
    for key in [
        "ingest_values_per_s",
        "recompute_full_s",
        "recompute_sql_baseline_s",
        "recompute_vs_sql_ratio",
        "recompute_incremental_p99_ms",
        "certificates_per_s",
        "certificate_kb_median",
        "api_rss_mb",
        "worker_rss_mb",
    ] {
        assert!(
            r[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {}",
            r[key]
        );
    }
    // External baselines are skipped in smoke mode, and say so.
    for key in [
        "rankings_rps",
        "rankings_p99_ms",
        "libreoffice_certificates_per_s",
        "certificates_vs_libreoffice_ratio",
    ] {
        assert!(r[key].is_null(), "{key}: {}", r[key]);
    }
    // Every award-earning entity got a certificate, and so did each of its units; the others
    // got none (the methodology's award rule).
    let d = &report["dataset"];
    let recipients = d["units"].as_u64().unwrap() + d["entities"].as_u64().unwrap();
    let issued = r["certificates"].as_u64().unwrap();
    assert_eq!(Some(issued), r["certificates_eligible"].as_u64());
    assert!(
        issued > 0 && issued < recipients,
        "{issued} of {recipients}"
    );
    assert_eq!(
        r["ingest_values"], d["indicator_values"],
        "every generated value went through the API"
    );

    let doc = std::fs::read_to_string(&docs).unwrap();
    assert!(doc.starts_with("# Benchmarks\n\nbefore\n"), "{doc}");
    assert!(doc.trim_end().ends_with("after"), "{doc}");
    assert!(!doc.contains("\nold\n"), "{doc}");
    assert!(doc.contains("| `recompute_full_s` |"), "{doc}");

    // The same at twice the units: its figures land beside the 1× ones, which stay.
    run_smoke(
        &["--scale", "2"],
        &dir.join("data-2"),
        &results,
        Some(&docs),
    );
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(merged["results"]["recompute_full_s"], r["recompute_full_s"]);
    for key in [
        "scale2_recompute_full_s",
        "scale2_recompute_sql_baseline_s",
        "scale2_recompute_vs_sql_ratio",
        "scale2_ingest_values_per_s",
    ] {
        assert!(
            merged["results"][key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {}",
            merged["results"][key]
        );
    }
    assert!(
        merged["dataset_scale2"]["units"].as_u64().unwrap() > d["units"].as_u64().unwrap(),
        "{merged}"
    );
    let doc = std::fs::read_to_string(&docs).unwrap();
    assert!(doc.contains("| `scale2_recompute_full_s` |"), "{doc}");
    assert!(doc.contains("| `recompute_full_s` |"), "{doc}");

    // A 1× run afterwards keeps the scaled figures.
    run_smoke(&[], &dir.join("data"), &results, None);
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(
        kept["results"]["scale2_recompute_full_s"],
        merged["results"]["scale2_recompute_full_s"]
    );
    assert_eq!(kept["dataset_scale2"], merged["dataset_scale2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn generate(dir: &Path, smoke: bool) {
    let mut c = Command::new(BENCH);
    c.args(["generate", "--seed", "7", "--out"]).arg(dir);
    if smoke {
        c.arg("--smoke");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn the_national_dataset_has_the_shape_of_indonesia_and_is_deterministic() {
    let dir = temp("national");
    generate(&dir, false);
    let json = |name: &str| -> Vec<Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(json("provinces.json").len(), 38);
    assert_eq!(json("offices.json").len(), 38);
    let entities = json("entities.json");
    assert_eq!(entities.len(), 590);
    let count = |kind: &str| entities.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(
        [
            count("ministry"),
            count("agency"),
            count("province"),
            count("city"),
            count("regency")
        ],
        [25, 14, 38, 98, 415]
    );
    let units = json("units.json").len();
    assert!((590 * 5..=590 * 8).contains(&units), "{units} units");
    assert!(
        json("units.json")
            .iter()
            .any(|u| u["name"].as_str().unwrap().chars().count() > 80),
        "some official names are long"
    );
    assert_eq!(lines(&dir.join("submissions-2024.jsonl")), units);
    let respondents: usize = std::fs::read_to_string(dir.join("survey-responses-2024.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["responses"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        (90_000..=115_000).contains(&respondents),
        "{respondents} survey responses"
    );
    for year in [2022, 2023] {
        assert_eq!(lines(&dir.join(format!("import-{year}.csv"))), units + 1);
    }

    // Same seed, same files.
    let again = temp("national-again");
    generate(&again, false);
    for name in [
        "entities.json",
        "units.json",
        "submissions-2024.jsonl",
        "import-2022.csv",
    ] {
        assert!(
            std::fs::read(dir.join(name)).unwrap() == std::fs::read(again.join(name)).unwrap(),
            "{name} differs between two runs with one seed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&again);
}
