//! Who is calling: bearer API tokens (stored as SHA-256 hashes) resolved to an [`Actor`].
//!
//! Roles: **admin** (HQ, everything), **office** (a regional office: entities, units,
//! submissions and unpublished results of its own provinces), **assessor** (the units assigned
//! to it, in cycles that are collecting), and **public** (no token: published results,
//! methodologies and certificate verification). Objects outside the caller's scope answer 404.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use kepatuhan_app::AppError;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// No token.
    Public,
    /// HQ administrator.
    Admin {
        /// Actor id.
        id: i64,
    },
    /// A regional office, with the provinces it covers.
    Office {
        /// Actor id.
        id: i64,
        /// Office code.
        office: String,
        /// Province codes it covers.
        provinces: Vec<String>,
    },
    /// An assessor.
    Assessor {
        /// Actor id.
        id: i64,
    },
    /// A liaison of one assessed government (entity): reads its own results, certificates and
    /// collection progress (never values before publication), plans its improvements.
    Government {
        /// Actor id.
        id: i64,
        /// Its entity's id.
        entity_id: i64,
        /// Its entity's code, e.g. `19.04`.
        entity: String,
    },
}

/// The data an actor may see, as SQL parameters.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: every province (and national entities); `Some`: only these provinces.
    pub provinces: Option<Vec<String>>,
    /// `Some(id)`: only units assigned to this assessor in collecting cycles.
    pub assessor: Option<i64>,
}

impl Actor {
    /// The actor's id, if authenticated.
    pub fn id(&self) -> Option<i64> {
        match self {
            Actor::Public => None,
            Actor::Admin { id }
            | Actor::Office { id, .. }
            | Actor::Assessor { id }
            | Actor::Government { id, .. } => Some(*id),
        }
    }

    /// Requires an authenticated actor and returns its id.
    pub fn require_id(&self) -> ApiResult<i64> {
        self.id().ok_or(ApiError::Unauthenticated)
    }

    /// Requires HQ admin.
    pub fn require_admin(&self) -> ApiResult<i64> {
        match self {
            Actor::Admin { id } => Ok(*id),
            Actor::Public => Err(ApiError::Unauthenticated),
            _ => Err(ApiError::Forbidden(
                "only HQ administrators may do this".into(),
            )),
        }
    }

    /// Requires HQ admin or a regional office.
    pub fn require_staff(&self) -> ApiResult<i64> {
        match self {
            Actor::Admin { id } | Actor::Office { id, .. } => Ok(*id),
            Actor::Public => Err(ApiError::Unauthenticated),
            Actor::Assessor { .. } => Err(ApiError::Forbidden("assessors may not do this".into())),
            Actor::Government { .. } => Err(ApiError::Forbidden(
                "a government's token may not do this".into(),
            )),
        }
    }

    /// What the actor may see. Public callers see nothing unpublished.
    pub fn scope(&self) -> ApiResult<Scope> {
        match self {
            Actor::Admin { .. } => Ok(Scope::default()),
            Actor::Office { provinces, .. } => Ok(Scope {
                provinces: Some(provinces.clone()),
                assessor: None,
            }),
            Actor::Assessor { id } => Ok(Scope {
                provinces: None,
                assessor: Some(*id),
            }),
            Actor::Public => Err(ApiError::Unauthenticated),
            // A government reads its own entity through the endpoints made for it, never the
            // staff's lists (which would show values before publication).
            Actor::Government { .. } => Err(ApiError::Forbidden(
                "a government's token reads its own entity's results, certificates and progress only".into(),
            )),
        }
    }

    /// The entity a government's token belongs to.
    pub fn government_entity(&self) -> Option<i64> {
        match self {
            Actor::Government { entity_id, .. } => Some(*entity_id),
            _ => None,
        }
    }

    /// Whether the actor may read an entity's own pages (progress, plans, certificates): admin,
    /// the office covering its province, or the entity's own government.
    pub fn covers_entity(&self, entity_id: i64, province: Option<&str>) -> bool {
        match self {
            Actor::Government { entity_id: own, .. } => *own == entity_id,
            _ => self.covers_province(province),
        }
    }

    /// Whether an office actor covers a province (admins cover all; others none).
    pub fn covers_province(&self, province: Option<&str>) -> bool {
        match self {
            Actor::Admin { .. } => true,
            Actor::Office { provinces, .. } => {
                province.is_some_and(|p| provinces.iter().any(|x| x == p))
            }
            _ => false,
        }
    }
}

/// A freshly created token: the secret (shown once) and what is stored.
#[derive(Debug)]
pub struct NewToken {
    /// The secret to hand to the user: `kpt_` + 64 hex digits.
    pub secret: String,
    /// SHA-256 of the secret.
    pub hash: Vec<u8>,
    /// First 12 characters, stored to recognise the token in listings.
    pub prefix: String,
}

/// Generates a 256-bit random token.
pub fn generate_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("kpt_{}", hex::encode(bytes));
    NewToken {
        hash: hash_token(&secret),
        prefix: secret[..12].to_owned(),
        secret,
    }
}

/// SHA-256 of a token. Tokens are 256-bit random, so an unsalted fast hash is enough: there is
/// nothing to brute-force.
pub fn hash_token(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Creates an actor with a first token (never expiring); returns the actor id and the token.
pub async fn create_actor_with_token(
    pool: &PgPool,
    name: &str,
    role: &str,
    office: Option<&str>,
) -> Result<(i64, NewToken), AppError> {
    create_actor_with_expiring_token(pool, name, role, office, None).await
}

/// Creates an actor with a first token valid until `expires_at` (`None`: until revoked).
pub async fn create_actor_with_expiring_token(
    pool: &PgPool,
    name: &str,
    role: &str,
    office: Option<&str>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(i64, NewToken), AppError> {
    let mut tx = pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO actors (name, role, office_code) VALUES ($1, $2, $3) RETURNING id",
        name,
        role,
        office
    )
    .fetch_one(&mut *tx)
    .await?;
    let token = insert_token(&mut tx, id, expires_at).await?;
    tx.commit().await?;
    Ok((id, token))
}

/// Creates a government liaison of the entity with code `entity` and its first token (valid
/// until `expires_at`, `None`: until revoked). `None` when no entity has that code.
pub async fn create_government_with_token(
    pool: &PgPool,
    name: &str,
    entity: &str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<(i64, NewToken)>, AppError> {
    let mut tx = pool.begin().await?;
    let Some(id) = sqlx::query_scalar!(
        "INSERT INTO actors (name, role, entity_id) SELECT $1, 'government', id FROM entities WHERE code = $2 RETURNING id",
        name,
        entity.trim()
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let token = insert_token(&mut tx, id, expires_at).await?;
    tx.commit().await?;
    Ok(Some((id, token)))
}

/// Adds a token to an existing actor (for rotation), valid until `expires_at` (`None`: until
/// revoked).
pub async fn add_token(
    pool: &PgPool,
    actor_id: i64,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<NewToken, AppError> {
    let mut tx = pool.begin().await?;
    let token = insert_token(&mut tx, actor_id, expires_at).await?;
    tx.commit().await?;
    Ok(token)
}

/// Stores a new token's hash, on the record, and returns the token (its secret is shown once).
async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor_id: i64,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<NewToken, AppError> {
    let token = generate_token();
    sqlx::query!(
        "INSERT INTO api_tokens (actor_id, token_hash, prefix, expires_at) VALUES ($1, $2, $3, $4)",
        actor_id,
        token.hash,
        token.prefix,
        expires_at
    )
    .execute(&mut **tx)
    .await?;
    audit_token(
        tx,
        &token.prefix,
        "created",
        serde_json::json!({ "actor_id": actor_id, "expires_at": expires_at }),
    )
    .await?;
    Ok(token)
}

/// Records a token's change in the audit trail (from the command line: no acting actor).
async fn audit_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    prefix: &str,
    action: &'static str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let entry = kepatuhan_app::audit::Entry {
        object_type: "token",
        object_id: prefix.to_owned(),
        province: None,
        action,
        details,
    };
    kepatuhan_app::audit::record(tx, None, entry).await
}

/// One line per token, without secrets.
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT t.prefix, a.id, a.name, a.role, a.office_code, t.created_at, t.revoked_at, t.expires_at, t.last_used_at
           FROM api_tokens t JOIN actors a ON a.id = t.actor_id ORDER BY t.id"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            format!(
                "{}…  actor {} ({}, {}{})  created {}{}",
                r.prefix,
                r.id,
                r.name,
                r.role,
                r.office_code.map(|o| format!(" {o}")).unwrap_or_default(),
                r.created_at.format("%Y-%m-%d"),
                r.revoked_at
                    .map(|t| format!("  revoked {}", t.format("%Y-%m-%d")))
                    .unwrap_or_default()
            ) + &r
                .expires_at
                .map(|t| format!("  expires {}", t.format("%Y-%m-%d")))
                .unwrap_or_default()
                + &r.last_used_at.map_or_else(
                    || "  never used".to_owned(),
                    |t| format!("  last used {}", t.format("%Y-%m-%d %H:%M")),
                )
        })
        .collect())
}

/// Revokes the active tokens with this prefix; returns how many.
pub async fn revoke_token(pool: &PgPool, prefix: &str) -> Result<u64, AppError> {
    let mut tx = pool.begin().await?;
    let revoked = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now() WHERE prefix = $1 AND revoked_at IS NULL",
        prefix
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revoked > 0 {
        audit_token(&mut tx, prefix, "revoked", serde_json::Value::Null).await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Resolves a bearer token to its actor.
pub async fn actor_for_token(pool: &PgPool, secret: &str) -> ApiResult<Actor> {
    let hash = hash_token(secret);
    let row = sqlx::query!(
        r#"SELECT a.id, a.role, a.office_code, a.entity_id, e.code AS "entity_code?", t.id AS token_id,
                  t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' AS "touch!",
                  COALESCE(array_agg(op.province_code ORDER BY op.province_code)
                           FILTER (WHERE op.province_code IS NOT NULL), '{}') AS "provinces!"
           FROM api_tokens t
           JOIN actors a ON a.id = t.actor_id
           LEFT JOIN entities e ON e.id = a.entity_id
           LEFT JOIN office_provinces op ON op.office_code = a.office_code AND a.role = 'office'
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
           GROUP BY a.id, e.id, t.id"#,
        hash
    )
    .fetch_optional(pool)
    .await?
    .ok_or(ApiError::Unauthorized)?;
    if row.touch {
        // When it was last used, at most once a minute, off the request's path.
        let (pool, token) = (pool.clone(), row.token_id);
        tokio::spawn(async move {
            let touched = sqlx::query!(
                "UPDATE api_tokens SET last_used_at = now() WHERE id = $1",
                token
            )
            .execute(&pool)
            .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "could not record a token's last use");
            }
        });
    }
    Ok(match (row.role.as_str(), row.office_code) {
        ("admin", _) => Actor::Admin { id: row.id },
        ("office", Some(office)) => Actor::Office {
            id: row.id,
            office,
            provinces: row.provinces,
        },
        ("government", _) => match (row.entity_id, row.entity_code) {
            (Some(entity_id), Some(entity)) => Actor::Government {
                id: row.id,
                entity_id,
                entity,
            },
            // The schema requires the entity; without one the token opens nothing.
            _ => return Err(ApiError::Unauthorized),
        },
        ("assessor", _) => Actor::Assessor { id: row.id },
        // A role this build does not know opens nothing.
        _ => return Err(ApiError::Unauthorized),
    })
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Actor::Public);
        };
        let secret = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        actor_for_token(&state.pool, secret).await
    }
}
