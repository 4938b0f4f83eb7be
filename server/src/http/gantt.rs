//! `GET .../workflows/{id}/gantt.svg`: the run's Gantt chart as SVG, for the page's first
//! paint (it works without JavaScript: hover shows each bar's details, a click opens the
//! step) and for download.

use super::actions::checked_id;
use super::{AppError, AppState};
use crate::auth::Caller;
use crate::source::now_ms;
use app::api::ReadModel;
use app::gantt::SvgLook;
use app::ui::preferences::{Choice, Choices, Zone};
use app::ui::time::label_gantt_axis;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
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
    /// Any value: answer as a file to save (light, with the time since the run began on
    /// its axis: a file read anywhere).
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
    headers: HeaderMap,
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
    // A big fan-out is one row here; the page opens it.
    layout.collapse_fan_outs(&app::model::fan_outs(&run.execution.steps), |_| false);
    if let Some(rows) = params.rows {
        layout.keep_first_rows(rows);
    }
    // In the page, the chart looks as the viewer chose (their cookies come with the
    // request); the server knows no time zone but UTC.
    let choices = Choices::from_cookies(
        &headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join("; "),
    );
    let look = if params.download.is_some() {
        SvgLook::default()
    } else {
        label_gantt_axis(&mut layout, choices.style, Zone::Utc);
        SvgLook {
            stylesheet: Some(app::STYLESHEET),
            theme: choices.theme.as_str(),
        }
    };
    let svg = app::gantt::render_svg(&layout, &format!("Gantt chart of {id}"), look, |step| {
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
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
        ),
    );
    // Shown inside the run's page (an `<object>`), and in no one else's.
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
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
