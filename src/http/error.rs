//! The one API error type: each variant is a status code and a JSON body
//! `{"error": "...", "field": "..."}` naming what was wrong.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::directory::Invalid;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (not JSON, wrong type, missing or unknown field): 400.
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// Well-formed input that breaks a rule: 422.
    #[error("{0}")]
    Invalid(Invalid),
    #[error("a valid `X-Patrol-Key` is required")]
    Unauthorized,
    #[error("this service key's role may not call this endpoint")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store cannot answer now; try again")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// A 400 whose message starts with the field: "`per_page` must be 1 to 100".
    pub fn bad_request(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::BadRequest {
            message: format!("`{field}` {message}"),
            field: Some(field),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// A bad value in the path or the query string: a 400 naming it.
    pub fn bad_request_from(invalid: Invalid) -> Self {
        Self::bad_request(invalid.field, invalid.message)
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(invalid) => Self::Invalid(invalid),
            ServiceError::Forbidden(_) => Self::Forbidden,
            ServiceError::NotFound(m) => Self::NotFound(m),
            ServiceError::Conflict(m) => Self::Conflict(m),
            ServiceError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::Unavailable
            }
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let field = match &self {
            Self::BadRequest { field, .. } => field.clone(),
            Self::Invalid(invalid) => Some(invalid.field.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: self.to_string(),
            field,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
