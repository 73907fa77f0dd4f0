//! `kepatuhan-worker`: the background worker (recompute, certificates, webhooks).
//!
//! Job processing is not built yet; today the binary checks that the shipped methodologies it
//! will score with are valid and reports them.

use std::process::ExitCode;

fn main() -> ExitCode {
    match kepatuhan_core::methodology::builtin::all() {
        Ok(all) => {
            for m in &all {
                println!(
                    "methodology {}: {} indicators, {} survey(s)",
                    m.code(),
                    m.indicator_count(),
                    m.survey_count()
                );
            }
            println!("kepatuhan-worker: no job queues are configured yet");
            ExitCode::SUCCESS
        }
        Err((file, e)) => {
            eprintln!("shipped methodology {file} is invalid: {e}");
            ExitCode::FAILURE
        }
    }
}
