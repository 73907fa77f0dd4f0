//! End-to-end tests of kepatuhan that need the api and the worker together: jobs enqueued by the
//! api and run by the worker, certificates rendered and verified, webhooks delivered, traces
//! continued from a request into its jobs. The tests are under `tests/`; this library holds what
//! several of them share.

use sqlx::PgPool;

/// Makes the demo's 2025 cycle publishable, behind the api's back (as the owner role): every
/// sampled unit without a submission leaves the sample, every submission is verified with every
/// answer at the top of its scale (so every recipient earns an award under ori-2025), and the
/// input revision moves so publishing recomputes from them.
///
/// # Panics
/// When the database refuses a statement.
pub async fn make_2025_publishable(pool: &PgPool) {
    sqlx::query("DELETE FROM cycle_units cu WHERE cycle_year = 2025 AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.cycle_year = 2025 AND s.unit_id = cu.unit_id)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE submissions SET state = 'verified' WHERE cycle_year = 2025")
        .execute(pool)
        .await
        .unwrap();
    let m = kepatuhan_core::methodology::builtin::by_code("ori-2025").unwrap();
    for id in m.indicator_ids() {
        let indicator = m.indicator(id);
        let top = indicator
            .scale
            .levels
            .iter()
            .map(|l| l.value)
            .max()
            .unwrap();
        sqlx::query(
            "INSERT INTO submission_values (submission_id, indicator_code, value, not_applicable)
             SELECT s.id, $2, $1, false FROM submissions s WHERE s.cycle_year = 2025
             ON CONFLICT (submission_id, indicator_code) DO UPDATE SET value = excluded.value, not_applicable = false",
        )
        .bind(i16::from(top))
        .bind(&indicator.code)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE cycles SET input_revision = input_revision + 1 WHERE year = 2025")
        .execute(pool)
        .await
        .unwrap();
}
