//! The house's one direction, checked on the real dependency graph: the api and the worker
//! never depend on each other, neither the worker nor the application layer links a web
//! framework (axum, utoipa: not even through another crate) or depends on tower-http (which
//! reqwest, an HTTP client both use, brings along for itself), and the core links no I/O.

use std::process::Command;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

/// The crates `package` links when built for production (normal dependencies, transitively, or
/// only its own with `direct`).
fn links(package: &str, direct: bool) -> Vec<String> {
    let mut tree = cargo();
    if direct {
        tree.args(["tree", "--depth", "1"]);
    } else {
        tree.arg("tree");
    }
    let out = tree
        .args([
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "-p",
            package,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn dependencies_point_one_way() {
    let api = links("kepatuhan-api", false);
    let worker = links("kepatuhan-worker", false);
    let app = links("kepatuhan-app", false);
    let core = links("kepatuhan-core", false);
    assert!(api.iter().any(|c| c == "kepatuhan-app"), "{api:?}");
    assert!(worker.iter().any(|c| c == "kepatuhan-app"), "{worker:?}");
    assert!(
        !api.iter().any(|c| c == "kepatuhan-worker"),
        "the api links the worker"
    );
    assert!(
        !worker.iter().any(|c| c == "kepatuhan-api"),
        "the worker links the api"
    );
    for http in ["axum", "utoipa", "utoipa-axum", "utoipa-scalar"] {
        assert!(!worker.iter().any(|c| c == http), "the worker links {http}");
        assert!(
            !app.iter().any(|c| c == http),
            "the application layer links {http}"
        );
    }
    for package in ["kepatuhan-worker", "kepatuhan-app"] {
        let direct = links(package, true);
        assert!(
            !direct.iter().any(|c| c == "tower-http" || c == "axum"),
            "{package} depends on {direct:?}"
        );
    }
    for io in ["sqlx", "tokio", "axum", "reqwest"] {
        assert!(!core.iter().any(|c| c == io), "the core links {io}");
    }
}
