//! `/api/v1/knowledge-bases*`: knowledge bases, document uploads, ingestion status, search.

use app::knowledge::{KnowledgeBaseInput, Upload};
use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use domain::{DocumentId, KnowledgeBaseId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};
use crate::routes::double_option;

/// The routes; uploads get `max_upload_bytes` as their body limit.
pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new().routes(routes!(upload_documents, list_documents)).layer(
        axum::extract::DefaultBodyLimit::max(
            // Several files per request; each is also held to the limit while it streams.
            max_upload_bytes.saturating_mul(10).saturating_add(64 * 1024),
        ),
    );
    OpenApiRouter::new()
        .routes(routes!(create_kb, list_kbs))
        .routes(routes!(get_kb, update_kb, delete_kb))
        .routes(routes!(get_document, delete_document))
        .routes(routes!(reindex_document))
        .routes(routes!(search))
        .routes(routes!(internal_search))
        .merge(uploads)
}

fn kb_id(raw: &str) -> Result<KnowledgeBaseId, ApiError> {
    path_id(raw, "knowledge base", KnowledgeBaseId::parse)
}

fn doc_id(raw: &str) -> Result<DocumentId, ApiError> {
    path_id(raw, "document", DocumentId::parse)
}

fn json<T: Serialize>(v: T) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(v).map(Json).map_err(|e| ApiError(app::AppError::Internal(e.to_string())))
}

/// A knowledge base to create or change (absent fields stay; `description: null` clears).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Tokens per chunk, 256–2048 (default 512).
    chunk_size: Option<i64>,
    /// Overlap in tokens, 0–200 (default 50).
    chunk_overlap: Option<i64>,
    embedding: Option<String>,
    /// manual, daily or weekly (for URL sources).
    sync_frequency: Option<String>,
}

impl From<KnowledgeBaseRequest> for KnowledgeBaseInput {
    fn from(r: KnowledgeBaseRequest) -> Self {
        Self {
            name: r.name,
            description: r.description,
            chunk_size: r.chunk_size,
            chunk_overlap: r.chunk_overlap,
            embedding: r.embedding,
            sync_frequency: r.sync_frequency,
        }
    }
}

/// Create a knowledge base
#[utoipa::path(post, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("bearer" = [])), request_body = KnowledgeBaseRequest,
    responses((status = 201, body = Object, description = "the knowledge base with its stats"), (status = 422, body = crate::error::Problem)))]
async fn create_kb(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<KnowledgeBaseRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::CREATED, json(s.app.create_knowledge_base(&p, r.into()).await?)?))
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<u32>,
    /// Only documents with this status (pending, processing, indexed, failed).
    status: Option<String>,
}

/// The workspace's knowledge bases with live stats
#[utoipa::path(get, path = "/api/v1/knowledge-bases", tag = "knowledge", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = Object)))]
async fn list_kbs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = s.app.knowledge_bases(&p, q.cursor.as_deref(), q.limit).await?;
    json(serde_json::json!({"data": page.data, "next_cursor": page.next_cursor}))
}

/// A knowledge base with live stats (documents by status, chunks, last indexed)
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb_id}", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
async fn get_kb(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
) -> Result<Json<Value>, ApiError> {
    json(s.app.knowledge_base(&p, kb_id(&kb)?).await?)
}

/// Change a knowledge base
#[utoipa::path(patch, path = "/api/v1/knowledge-bases/{kb_id}", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path)), request_body = KnowledgeBaseRequest,
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_kb(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
    JsonBody(r): JsonBody<KnowledgeBaseRequest>,
) -> Result<Json<Value>, ApiError> {
    json(s.app.update_knowledge_base(&p, kb_id(&kb)?, r.into()).await?)
}

/// Delete a knowledge base, its documents, files and index entries
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{kb_id}", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_kb(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_knowledge_base(&p, kb_id(&kb)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// URLs to import: each page (and, with `crawl_depth` 2–3, pages it links to on the same
/// site) becomes a document.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlImport {
    urls: Vec<String>,
    /// 1 (default): the pages themselves; 2–3: follow same-site links that many levels.
    crawl_depth: Option<u8>,
}

/// Upload documents (multipart, one or more `file` parts), or import URLs (JSON `{urls, crawl_depth}`)
///
/// URL imports are crawled in the background through the SSRF guard, honouring robots.txt and
/// staying on the same site; each page becomes a document with its source URL.
///
/// Each file is stored and queued for ingestion: it starts `pending`, becomes `processing`,
/// then `indexed` or `failed` with a reason. Files of unsupported types are recorded `failed`
/// at once. The size limit is enforced while the upload streams in.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb_id}/documents", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path)),
    request_body(content_type = "multipart/form-data", content = Object),
    responses((status = 202, body = Object), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 413, body = crate::error::Problem)))]
async fn upload_documents(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match accept_documents(s, p, kb, req).await {
        Ok(ok) => ok.into_response(),
        Err(resp) => resp,
    }
}

async fn accept_documents(
    s: AppState,
    p: app::Principal,
    kb: String,
    req: axum::extract::Request,
) -> Result<(StatusCode, Json<Value>), axum::response::Response> {
    use axum::response::IntoResponse;
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        let JsonBody(r) =
            <JsonBody<UrlImport> as axum::extract::FromRequest<AppState>>::from_request(req, &s)
                .await?;
        let kb = kb_id(&kb).map_err(IntoResponse::into_response)?;
        let queued = s
            .app
            .import_urls(&p, kb, &r.urls, r.crawl_depth)
            .await
            .map_err(|e| ApiError(e).into_response())?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "queued_urls": queued, "status": "crawling" })),
        ));
    }
    let form = <Multipart as axum::extract::FromRequest<AppState>>::from_request(req, &s)
        .await
        .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()).into_response())?;
    upload_files(s, p, kb, form).await
}

async fn upload_files(
    s: AppState,
    p: app::Principal,
    kb: String,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Value>), axum::response::Response> {
    use axum::response::IntoResponse;
    let kb = kb_id(&kb).map_err(IntoResponse::into_response)?;
    let limit = s.max_upload_bytes;
    // Nothing is received for a caller who may not upload here.
    s.app.check_upload_target(&p, kb).await.map_err(|e| ApiError(e).into_response())?;
    // Each file streams to a staging file (hashed and measured on the way); one over the
    // limit ends the request with 413 and every staged file of it is removed on drop.
    let mut files = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(e, limit))? {
        let Some(filename) =
            field.file_name().map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f).to_owned())
        else {
            continue;
        };
        let content_type = field.content_type().map(str::to_owned);
        let mut staged =
            s.app.begin_upload(limit as u64).await.map_err(|e| ApiError(e).into_response())?;
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
            staged.write(&chunk).await.map_err(|e| stage_error(e, limit))?;
        }
        let file = staged.finish().await.map_err(|e| stage_error(e, limit))?;
        files.push(Upload { filename, content_type, file });
    }
    let accepted =
        s.app.upload_documents(&p, kb, files).await.map_err(|e| ApiError(e).into_response())?;
    let data: Vec<Value> = accepted
        .into_iter()
        .map(|a| {
            let mut v = serde_json::to_value(&a.document).unwrap_or(Value::Null);
            v["rejected"] = a.rejected.map(Value::String).unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "data": data }))))
}

fn too_large(limit: usize) -> axum::response::Response {
    crate::error::problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("each file may be at most {} bytes ({} MiB)", limit, limit / (1024 * 1024)),
        Vec::new(),
    )
}

fn stage_error(e: app::knowledge::StageError, limit: usize) -> axum::response::Response {
    use axum::response::IntoResponse;
    match e {
        app::knowledge::StageError::TooLarge { .. } => too_large(limit),
        app::knowledge::StageError::Io(e) => {
            ApiError(app::AppError::Internal(format!("staging an upload: {e}"))).into_response()
        }
    }
}

fn multipart_error(
    e: axum::extract::multipart::MultipartError,
    limit: usize,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::bad_request("malformed_multipart", e.body_text()).into_response()
    }
}

/// Documents of a knowledge base, newest first
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb_id}/documents", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path), PageQuery),
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
async fn list_documents(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page =
        s.app.documents(&p, kb_id(&kb)?, q.status.as_deref(), q.cursor.as_deref(), q.limit).await?;
    json(serde_json::json!({"data": page.data, "next_cursor": page.next_cursor}))
}

/// A document with its ingestion status
#[utoipa::path(get, path = "/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "knowledge", security(("bearer" = [])),
    params(("kb_id" = String, Path), ("doc_id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = crate::error::Problem)))]
async fn get_document(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((kb, doc)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    json(s.app.document(&p, kb_id(&kb)?, doc_id(&doc)?).await?)
}

/// Delete a document (its chunks leave the index at once)
#[utoipa::path(delete, path = "/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "knowledge", security(("bearer" = [])),
    params(("kb_id" = String, Path), ("doc_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_document(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((kb, doc)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.app.delete_document(&p, kb_id(&kb)?, doc_id(&doc)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ingest a document again
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}/reindex", tag = "knowledge", security(("bearer" = [])),
    params(("kb_id" = String, Path), ("doc_id" = String, Path)), responses((status = 202, body = Object), (status = 404, body = crate::error::Problem)))]
async fn reindex_document(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((kb, doc)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((StatusCode::ACCEPTED, json(s.app.reindex_document(&p, kb_id(&kb)?, doc_id(&doc)?).await?)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    query: String,
    /// 1–100, default 5.
    top_k: Option<usize>,
    min_score: Option<f32>,
    /// lexical, semantic or hybrid (default; lexical when no embedding model is configured).
    mode: Option<String>,
}

/// Search a knowledge base
///
/// Returns `{results: [{chunk_id, content, score, metadata: {document_id, document_title,
/// source_url, page, heading}}]}`.
#[utoipa::path(post, path = "/api/v1/knowledge-bases/{kb_id}/search", tag = "knowledge", security(("bearer" = [])), params(("kb_id" = String, Path)), request_body = SearchBody,
    responses((status = 200, body = Object), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn search(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(kb): Path<String>,
    JsonBody(r): JsonBody<SearchBody>,
) -> Result<Json<Value>, ApiError> {
    let hits = s
        .app
        .search_knowledge(&p, kb_id(&kb)?, &r.query, r.top_k, r.min_score, r.mode.as_deref())
        .await?;
    Ok(Json(results_json(hits)))
}

/// Search for external agent runtimes (service-secret auth)
///
/// Send the secret configured as `internal.service_secret` in `X-Service-Secret`. The knowledge
/// base's own workspace scopes the search.
#[utoipa::path(post, path = "/api/internal/knowledge/{kb_id}/search", tag = "knowledge", params(("kb_id" = String, Path)), request_body = SearchBody,
    responses((status = 200, body = Object), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
async fn internal_search(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(kb): Path<String>,
    JsonBody(r): JsonBody<SearchBody>,
) -> Result<Json<Value>, ApiError> {
    let secret = headers.get("x-service-secret").and_then(|v| v.to_str().ok()).unwrap_or("");
    let hits = s
        .app
        .service_search(secret, kb_id(&kb)?, &r.query, r.top_k, r.min_score, r.mode.as_deref())
        .await?;
    Ok(Json(results_json(hits)))
}

fn results_json(hits: Vec<knowledge::SearchHit>) -> Value {
    let results: Vec<Value> = hits
        .into_iter()
        .map(|h| {
            serde_json::json!({
                "chunk_id": h.chunk_id, "content": h.content, "score": h.score,
                "metadata": {"document_id": h.metadata.document_id, "document_title": h.metadata.document_title,
                    "source_url": h.metadata.source_url, "page": h.metadata.page, "heading": h.metadata.heading}
            })
        })
        .collect();
    serde_json::json!({ "results": results })
}
