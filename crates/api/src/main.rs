//! `kepatuhan-api`: runs the REST service, applies migrations, manages API tokens, and checks
//! methodology files.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kepatuhan_api::{auth, build};
use kepatuhan_app::config::Settings;
use kepatuhan_app::db::{connect, migrate};
use kepatuhan_app::{App, telemetry};
use kepatuhan_core::Methodology;

#[derive(Parser)]
#[command(version, about = "kepatuhan REST API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations as the owner role, grant the service role named by
    /// `KEPATUHAN_SERVICE_ROLE` what the api and the worker need, and exit.
    Migrate,
    /// Load the demo dataset (two provinces, a past and an open cycle) unless already loaded.
    SeedDemo,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI document (as committed in docs/openapi.json).
    Openapi,
    /// Exit 0 when the api on `KEPATUHAN_HTTP_ADDR` answers `/health/ready` (the container's
    /// healthcheck: the image has no curl).
    Healthcheck,
    /// Validate a methodology file (TOML or JSON) and list every problem with its path.
    CheckMethodology {
        /// The file to check.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an actor with a token and print the token once (only its hash is stored).
    Create {
        /// The actor's role.
        #[arg(long, value_enum)]
        role: Role,
        /// The regional office (required for `office`, optional for `assessor`).
        #[arg(long)]
        office: Option<String>,
        /// The assessed entity's code (required for `government`, e.g. `19.04`).
        #[arg(long)]
        entity: Option<String>,
        /// A name to recognise the actor by, e.g. a person or a system.
        #[arg(long)]
        name: String,
        /// The token expires after this many days (default: when revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Add a token to an existing actor (rotation: create the new one, then revoke the old).
    Add {
        /// The actor's id.
        #[arg(long)]
        actor: i64,
        /// The token expires after this many days (default: when revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (prefix, actor, role, office, created, revoked, expiry, last use); never the
    /// secrets.
    List,
    /// Revoke a token by its prefix (the first 12 characters, as listed).
    Revoke {
        /// The token's prefix, e.g. `kpt_1a2b3c4d`.
        #[arg(long)]
        prefix: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Role {
    Admin,
    Office,
    Assessor,
    Government,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match &command {
        Command::CheckMethodology { file } => return check(file),
        Command::Openapi => {
            print!("{}", kepatuhan_api::openapi::document_json());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let Some(settings) = Settings::load_or_report() else {
        return ExitCode::FAILURE;
    };
    if matches!(command, Command::Healthcheck) {
        return healthcheck(settings.http_addr).await;
    }
    // Loading the demo goes through the routes in-process: their request lines would scroll the
    // tokens away, so it logs warnings only unless RUST_LOG says otherwise.
    let quiet = matches!(command, Command::SeedDemo) && std::env::var_os("RUST_LOG").is_none();
    let (_telemetry, problem) = if quiet {
        telemetry::init_filtered("kepatuhan-api", &settings, "warn")
    } else {
        telemetry::init("kepatuhan-api", &settings)
    };
    if let Some(problem) = problem {
        eprintln!("invalid configuration:\n  {problem}");
        return ExitCode::FAILURE;
    }
    match run(command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}

/// GETs `/health/ready` of the api listening on `addr` (on this machine when it listens on every
/// address).
async fn healthcheck(addr: std::net::SocketAddr) -> ExitCode {
    match kepatuhan_app::health::probe(addr, "/health/ready").await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("{problem}");
            ExitCode::FAILURE
        }
    }
}

/// `seed-demo`: the demo data, then its published cycle; prints the tokens once.
async fn seed_demo(
    pool: sqlx::PgPool,
    settings: &Settings,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = App::configured(pool, settings)?;
    match kepatuhan_api::demo::seed_demo(&app, settings).await? {
        Some(tokens) => {
            println!("demo data loaded; these tokens are shown once:");
            println!("  admin (HQ):              {}", tokens.admin);
            println!("  office (Perwakilan Babel): {}", tokens.office);
            println!("  assessor (Babel):        {}", tokens.assessor);
        }
        None => println!(
            "demo data already loaded (create more tokens with `kepatuhan-api token create`)"
        ),
    }
    if let Some(showcase) = kepatuhan_api::demo::publish_showcase(&app, settings).await? {
        println!(
            "cycle {} published; the worker renders its certificates (job {}), listed at /api/v1/cycles/{}/certificates",
            showcase.year, showcase.certificates_job, showcase.year
        );
    }
    Ok(())
}

async fn run(
    command: Command,
    settings: Settings,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let pool = connect(&settings).await?;
    if matches!(command, Command::Migrate) {
        migrate(&pool).await?;
        tracing::info!("migrations applied");
        if let Some(role) = &settings.service_role {
            kepatuhan_app::db::grant_service_role(&pool, role).await?;
        }
        return Ok(());
    }
    kepatuhan_app::db::prepare(&pool, &settings).await?;
    match command {
        Command::Migrate | Command::Healthcheck => Ok(()),
        Command::SeedDemo => seed_demo(pool, &settings).await,
        Command::Token(TokenCommand::Create {
            role,
            office,
            entity,
            name,
            expires_in_days,
        }) => create_token(&pool, role, office, entity, &name, expires_in_days).await,
        Command::Token(TokenCommand::Add {
            actor,
            expires_in_days,
        }) => {
            let token = auth::add_token(&pool, actor, expiry(expires_in_days)).await?;
            eprintln!("added a token to actor {actor}; it is shown once:");
            println!("{}", token.secret);
            Ok(())
        }
        Command::Token(TokenCommand::List) => {
            for t in auth::list_tokens(&pool).await? {
                println!("{t}");
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { prefix }) => {
            let n = auth::revoke_token(&pool, &prefix).await?;
            if n == 0 {
                return Err(format!("no active token starts with `{prefix}`").into());
            }
            println!("revoked {n} token(s)");
            Ok(())
        }
        Command::Serve => {
            let app = App::configured(pool, &settings)?;
            if let Some(addr) = settings.metrics_addr {
                serve_metrics(addr).await?;
            }
            let listener = tokio::net::TcpListener::bind(settings.http_addr).await?;
            tracing::info!(addr = %settings.http_addr, "kepatuhan-api listening");
            let service =
                build(app, &settings).into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(kepatuhan_app::shutdown_signal())
                .await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::CheckMethodology { .. } | Command::Openapi => {
            unreachable!("handled before connecting")
        }
    }
}

/// Serves `/metrics` on an address of its own, in the background, for as long as the process runs.
async fn serve_metrics(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, kepatuhan_api::startup::metrics_router()).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok(())
}

/// `token create`: an actor of a role with its first token, printed once.
async fn create_token(
    pool: &sqlx::PgPool,
    role: Role,
    office: Option<String>,
    entity: Option<String>,
    name: &str,
    expires_in_days: Option<u32>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let role = match role {
        Role::Admin => "admin",
        Role::Office => "office",
        Role::Assessor => "assessor",
        Role::Government => "government",
    };
    if (role == "government") != entity.is_some() {
        return Err("--entity CODE is required for a government token, and only for it".into());
    }
    if let Some(entity) = entity {
        if office.is_some() {
            return Err("a government token belongs to no office".into());
        }
        let Some((id, token)) =
            auth::create_government_with_token(pool, name, &entity, expiry(expires_in_days))
                .await?
        else {
            return Err(format!("no entity with code `{entity}`").into());
        };
        eprintln!("created government actor {id} ({name}) of {entity}; the token is shown once:");
        println!("{}", token.secret);
        return Ok(());
    }
    if role == "office" && office.is_none() {
        return Err("an office token needs --office CODE".into());
    }
    if role == "admin" && office.is_some() {
        return Err("an admin token belongs to no office".into());
    }
    let (id, token) = auth::create_actor_with_expiring_token(
        pool,
        name,
        role,
        office.as_deref(),
        expiry(expires_in_days),
    )
    .await?;
    eprintln!("created {role} actor {id} ({name}); the token is shown once:");
    println!("{}", token.secret);
    Ok(())
}

/// When a token created now expires, `days` from now (`None`: when revoked).
fn expiry(days: Option<u32>) -> Option<chrono::DateTime<chrono::Utc>> {
    days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)))
}

fn check(file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let loaded = if is_json {
        Methodology::from_json(&text)
    } else {
        Methodology::from_toml(&text)
    };
    match loaded {
        Ok(m) => {
            println!(
                "{}: ok — {} ({}), {} dimensions, {} indicators, {} survey(s)",
                file.display(),
                m.code(),
                m.name(),
                m.dimensions().len(),
                m.indicator_count(),
                m.survey_count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}:", file.display());
            for p in e.problems() {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}
