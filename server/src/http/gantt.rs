//! `GET .../workflows/{id}/gantt.svg`: the run's Gantt chart as SVG, for the page's first
//! paint (it works without JavaScript: hover shows each bar's details, a click opens the
//! step) and for download.

use super::actions::checked_id;
use super::{AppError, AppState};
use crate::auth::Caller;
use crate::source::now_ms;
use app::api::ReadModel;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

/// Chart widths the endpoint draws, in pixels.
const WIDTHS: std::ops::RangeInclusive<u32> = 320..=4000;
const DEFAULT_WIDTH: u32 = 1100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SvgParams {
    width: Option<u32>,
    /// Only the first this many steps (the page's first paint of a huge run).
    rows: Option<usize>,
    /// Any value: answer as a file to save.
    download: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "workflow_gantt_svg",
    path = crate::http::routes::WORKFLOW_GANTT,
    tag = "workflows",
    params(("id" = String, Path, description = "The run's id"), SvgParams),
    responses(
        (status = 200, description = "The run's Gantt chart as SVG", content_type = "image/svg+xml", body = String),
        crate::http::openapi::Invalid,
        crate::http::openapi::Denied,
        crate::http::openapi::Missing
    )
)]
pub async fn svg(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Result<Query<SvgParams>, QueryRejection>,
) -> Result<Response, AppError> {
    checked_id(&id)?;
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let width = params.width.unwrap_or(DEFAULT_WIDTH);
    if !WIDTHS.contains(&width) {
        return Err(AppError::BadRequest(format!(
            "width must be {} to {} pixels",
            WIDTHS.start(),
            WIDTHS.end()
        )));
    }
    let reader = state.reader_for(Some(caller));
    let run = reader
        .workflow_detail(&id)
        .await
        .map_err(super::workflows::read_error)?
        .ok_or_else(|| AppError::NotFound(format!("no workflow {id:?}")))?;
    // The usual step times span every engine: a reader of some engines gets no flags.
    let norms = match reader.step_norms(&run.workflow_type).await {
        Err(app::api::ReadError::Forbidden(_)) => Vec::new(),
        other => other.map_err(super::workflows::read_error)?,
    };
    let now = crate::store::rows::to_datetime(now_ms());
    let mut layout = app::gantt::layout(&run, &norms, now, f64::from(width));
    if let Some(rows) = params.rows {
        layout.keep_first_rows(rows);
    }
    let svg = app::gantt::render_svg(&layout, &format!("Gantt chart of {id}"), |step| {
        format!("/orchestration/workflows/{id}?step={step}#step-{step}")
    });
    let mut response = svg.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    // Nothing in the document runs: a belt to the escaping's braces.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if params.download.is_some() {
        // The id is checked above: only characters that are safe in a header.
        if let Ok(value) =
            HeaderValue::from_str(&format!("attachment; filename=\"{id}-gantt.svg\""))
        {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}
