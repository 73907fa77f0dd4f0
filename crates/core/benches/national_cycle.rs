//! Scores, aggregates, grades and ranks a national-scale cycle in memory: 590 entities,
//! ≈ 3,800 units, 33 indicators and 7 survey questions per unit (ori-2022). Target: ≤ 20 ms on
//! one core. Results are recorded in `docs/benchmarks.md`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kepatuhan_core::CycleYear;
use kepatuhan_core::methodology::builtin;
use kepatuhan_core::scoring::{score_cycle, score_unit};
use kepatuhan_core::synthetic::{NationalShape, national_cycle};

fn national(c: &mut Criterion) {
    let m = builtin::by_code("ori-2022").expect("shipped methodology");
    let input = national_cycle(
        &m,
        CycleYear::new(2023).expect("valid year"),
        2023,
        NationalShape::INDONESIA,
    );
    let units: usize = input.entities.iter().map(|e| e.units.len()).sum();
    println!(
        "national cycle: {} entities, {units} units, {} indicators + {} survey(s) per unit",
        input.entities.len(),
        m.indicator_count(),
        m.survey_count()
    );
    let mut group = c.benchmark_group("national_cycle");
    group.sample_size(30);
    group.bench_function("score_aggregate_grade_rank", |b| {
        b.iter(|| score_cycle(&m, black_box(&input)));
    });
    group.finish();

    let unit = &input.entities[0].units[0];
    c.bench_function("score_one_unit", |b| {
        b.iter(|| score_unit(&m, black_box(unit)));
    });
}

criterion_group!(benches, national);
criterion_main!(benches);
