//! What can be checked of the deployment without a Docker engine: the compose file parses, runs
//! only our image's real commands, sets only variables the code reads, every variable is
//! documented, and the Dockerfile builds with the same command as `just build`.

use std::collections::BTreeSet;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose() -> serde_yaml::Value {
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/compose.yaml")).expect("compose.yaml parses");
    value.apply_merge().expect("merge keys resolve");
    for (_, service) in value["services"].as_mapping_mut().unwrap() {
        service.apply_merge().unwrap();
        if let Some(env) = service.get_mut("environment") {
            env.apply_merge().unwrap();
        }
    }
    value
}

/// Every `KEPATUHAN_*` and `OTEL_*` name the configuration code reads.
fn variables_read_by_the_code() -> BTreeSet<String> {
    let sources = [
        read("crates/app/src/config.rs"),
        read("crates/app/src/telemetry.rs"),
        read("crates/worker/src/main.rs"),
    ]
    .join("\n");
    sources
        .split('"')
        .filter(|s| {
            (s.starts_with("KEPATUHAN_") || s.starts_with("OTEL_"))
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn compose_runs_our_commands_with_variables_the_code_reads() {
    let compose = compose();
    let known = variables_read_by_the_code();
    assert!(
        known.contains("KEPATUHAN_DATABASE_URL") && known.contains("KEPATUHAN_WORKER_CONCURRENCY"),
        "{known:?}"
    );
    let api = env!("CARGO_BIN_EXE_kepatuhan-api");
    let help = String::from_utf8(Command::new(api).arg("--help").output().unwrap().stdout).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in [
        "postgres",
        "migrate",
        "api",
        "worker",
        "jaeger",
        "s3",
        "s3-bucket",
    ] {
        assert!(services.contains_key(name), "service {name}");
    }
    let mut ours = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if service["image"].as_str() != Some("kepatuhan:latest") {
            continue;
        }
        ours += 1;
        let command: Vec<&str> = service["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        match command.as_slice() {
            ["kepatuhan-api", sub, ..] => assert!(
                help.contains(&format!("  {sub} ")),
                "{name}: `kepatuhan-api {sub}` does not exist:\n{help}"
            ),
            ["kepatuhan-worker"] => {}
            other => panic!("{name}: unknown command {other:?}"),
        }
        for (key, _) in service["environment"].as_mapping().unwrap() {
            let key = key.as_str().unwrap();
            assert!(
                key == "RUST_LOG"
                    || known.contains(key)
                    || kepatuhan_app::config::STORE_VARIABLES.contains(&key),
                "{name}: {key} is not read by the configuration code"
            );
        }
    }
    assert_eq!(ours, 3, "migrate, api and worker run our image");
    // Migrations run once, and api and worker wait for them.
    for name in ["api", "worker"] {
        assert_eq!(
            services[name]["depends_on"]["migrate"]["condition"],
            "service_completed_successfully"
        );
    }
    assert_eq!(
        services["migrate"]["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert!(services["postgres"]["healthcheck"].is_mapping());
    // The healthchecks: the binaries' own subcommand (the image has no curl), and Postgres over
    // TCP, not fooled by the socket-only server of its initialisation.
    for (name, bin) in [("api", "kepatuhan-api"), ("worker", "kepatuhan-worker")] {
        let test: Vec<&str> = services[name]["healthcheck"]["test"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has a healthcheck"))
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(test, ["CMD", bin, "healthcheck"], "{name}");
    }
    assert!(help.contains("  healthcheck "), "{help}");
    let pg = services["postgres"]["healthcheck"]["test"][1]
        .as_str()
        .unwrap();
    assert!(pg.contains("-h 127.0.0.1"), "{pg}");
}

#[test]
fn certificates_go_to_the_s3_store_whose_bucket_is_created_with_the_same_credentials() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let text = read("deploy/compose.yaml");
    for name in ["api", "worker"] {
        let env = &services[name]["environment"];
        let store = env["KEPATUHAN_CERTIFICATE_STORE"].as_str().unwrap();
        let bucket = store
            .strip_prefix("s3://")
            .and_then(|b| b.split('/').next())
            .unwrap_or_else(|| panic!("{name}: {store} is not an s3:// store"));
        let create = services["s3-bucket"]["command"][0].as_str().unwrap();
        assert!(create.contains(&format!("s3://{bucket}")), "{create}");
        assert_eq!(
            env["AWS_ENDPOINT"].as_str(),
            Some("http://s3:8333"),
            "{name}"
        );
        // The same keys for the app, the bucket's creation and the store's identities.
        let key = env["AWS_ACCESS_KEY_ID"].as_str().unwrap();
        assert_eq!(
            services["s3-bucket"]["environment"]["AWS_ACCESS_KEY_ID"].as_str(),
            Some(key)
        );
        assert!(text.contains(&format!("\"accessKey\": \"{key}\"")), "{key}");
        assert_eq!(
            services[name]["depends_on"]["s3-bucket"]["condition"],
            "service_completed_successfully"
        );
    }
    assert!(
        services["jaeger"]["image"]
            .as_str()
            .unwrap()
            .starts_with("jaegertracing/jaeger:2."),
        "Jaeger v2"
    );
}

#[test]
fn every_variable_is_documented_with_its_default() {
    let operations = read("docs/operations.md");
    for name in variables_read_by_the_code() {
        let line = operations
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}`")))
            .unwrap_or_else(|| {
                panic!("{name} is not in the configuration table of docs/operations.md")
            });
        assert!(
            line.matches('|').count() >= 5,
            "{name}: its table row has a default column: {line}"
        );
    }
}

#[test]
fn the_dockerfile_builds_like_just_build_and_ships_both_binaries() {
    let dockerfile = read("deploy/Dockerfile");
    let justfile = read("justfile");
    let recipe = justfile
        .split("\nbuild:\n")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("RUN {recipe}")),
        "the Dockerfile does not run `{recipe}`"
    );
    for binary in ["kepatuhan-api", "kepatuhan-worker"] {
        assert!(
            dockerfile.contains(&format!("/src/target/release/{binary}")),
            "{binary} is not copied"
        );
    }
    assert!(
        dockerfile.contains("USER kepatuhan"),
        "runs as a non-root user"
    );
    assert!(
        dockerfile.contains("cargo chef cook"),
        "dependencies are a cached layer"
    );
}

#[test]
fn the_services_connect_as_the_service_role_and_only_migrate_grants_it() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let env = |service: &str, key: &str| {
        services[service]["environment"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let role = env("migrate", "KEPATUHAN_SERVICE_ROLE");
    assert!(kepatuhan_app::db::is_plain_identifier(&role), "{role}");
    assert!(
        env("migrate", "KEPATUHAN_DATABASE_URL").starts_with("postgres://kepatuhan:"),
        "migrate runs as the owner"
    );
    for name in ["api", "worker"] {
        assert!(
            env(name, "KEPATUHAN_DATABASE_URL").starts_with(&format!("postgres://{role}:")),
            "{name} connects as {role}: {}",
            env(name, "KEPATUHAN_DATABASE_URL")
        );
        assert_eq!(env(name, "KEPATUHAN_MIGRATE_ON_START"), "false", "{name}");
        assert!(env(name, "KEPATUHAN_SERVICE_ROLE").is_empty(), "{name}");
    }
    // The role is created when the database is initialised, by the script mounted for it.
    let mounts: Vec<&str> = services["postgres"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        mounts.contains(&"./postgres-init:/docker-entrypoint-initdb.d:ro"),
        "{mounts:?}"
    );
    let script = read("deploy/postgres-init/10-service-role.sh");
    assert!(
        script.contains(&format!("CREATE ROLE {role} LOGIN")),
        "{script}"
    );
    let sh = Command::new("sh")
        .args([
            "-n",
            &format!("{ROOT}/deploy/postgres-init/10-service-role.sh"),
        ])
        .status()
        .unwrap();
    assert!(sh.success(), "the init script parses");
}

/// Whether an image reference names one release: a digest, or a tag with a version number that
/// has at least a minor part (`16.6-bookworm`, `v3.5.0`), never `latest` or a major line.
fn exact(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    let version = tag.trim_start_matches('v');
    let number: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.split('.').filter(|p| !p.is_empty()).count() >= 2
}

#[test]
fn every_image_and_build_tool_is_pinned_to_an_exact_version() {
    let compose = read("deploy/compose.yaml");
    for line in compose
        .lines()
        .filter(|l| l.trim_start().starts_with("image:"))
    {
        let image = line.trim_start().trim_start_matches("image:").trim();
        if image == "kepatuhan:latest" {
            continue; // built here
        }
        assert!(exact(image), "{image} is not pinned to an exact version");
    }
    let dockerfile = read("deploy/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM ")?.split(" AS ").nth(1))
        .collect();
    for line in dockerfile.lines().filter(|l| l.starts_with("FROM ")) {
        let image = line.split_whitespace().nth(1).unwrap();
        assert!(
            stages.contains(&image) || exact(image),
            "{image} is not pinned to an exact version"
        );
    }
    assert!(
        dockerfile.contains("cargo install cargo-chef --version "),
        "cargo-chef is pinned"
    );
}
