//! The CORS half of `headers`: preflight answers and the headers added to every response.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use regex::Regex;
use viaduct_upstream::Body;

use super::{header_value, Options};
use crate::chain::{Request, Response};

#[derive(Debug)]
pub(super) struct Cors {
    allow_credentials: bool,
    allow_headers: Option<HeaderValue>,
    allow_methods: Option<HeaderValue>,
    origins: Vec<HeaderValue>,
    origin_regexes: Vec<Regex>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
    add_vary: bool,
}

const TRUE: HeaderValue = HeaderValue::from_static("true");

impl Cors {
    /// `None` when no CORS option is set.
    pub(super) fn from_options(o: &Options) -> Result<Option<Cors>, String> {
        let defined = o.access_control_allow_credentials
            || !o.access_control_allow_headers.is_empty()
            || !o.access_control_allow_methods.is_empty()
            || !o.access_control_allow_origin_list.is_empty()
            || !o.access_control_allow_origin_list_regex.is_empty()
            || !o.access_control_expose_headers.is_empty()
            || o.access_control_max_age != 0
            || o.add_vary_header;
        if !defined {
            return Ok(None);
        }
        let origin_regexes = o
            .access_control_allow_origin_list_regex
            .iter()
            .map(|r| {
                Regex::new(r).map_err(|e| {
                    format!("option accessControlAllowOriginListRegex: {r:?} is not a valid regular expression: {e}")
                })
            })
            .collect::<Result<_, _>>()?;
        let origins = o
            .access_control_allow_origin_list
            .iter()
            .map(|origin| header_value(origin, "accessControlAllowOriginList"))
            .collect::<Result<_, _>>()?;
        Ok(Some(Cors {
            allow_credentials: o.access_control_allow_credentials,
            allow_headers: joined(&o.access_control_allow_headers, "accessControlAllowHeaders")?,
            allow_methods: joined(&o.access_control_allow_methods, "accessControlAllowMethods")?,
            origins,
            origin_regexes,
            expose_headers: joined(
                &o.access_control_expose_headers,
                "accessControlExposeHeaders",
            )?,
            max_age: HeaderValue::from(o.access_control_max_age),
            add_vary: o.add_vary_header,
        }))
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), which never reaches the backend.
    pub(super) fn preflight(&self, request: &Request) -> Option<Response> {
        if request.method() != Method::OPTIONS {
            return None;
        }
        let headers = request.headers();
        let origin = non_empty(headers.get(header::ORIGIN))?;
        non_empty(headers.get(header::ACCESS_CONTROL_REQUEST_METHOD))?;
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::OK;
        let out = response.headers_mut();
        if self.allow_credentials {
            out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        if let Some(value) = &self.allow_headers {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
        }
        if let Some(value) = &self.allow_methods {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value.clone());
        }
        if let Some(allowed) = self.allowed_origin(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        Some(response)
    }

    /// The CORS headers of a non-preflight response; `origin` is the request's.
    pub(super) fn decorate(&self, headers: &mut HeaderMap, origin: Option<&HeaderValue>) {
        // Traefik checks even an absent Origin (as ""), so `*` is always answered.
        let empty = HeaderValue::from_static("");
        if let Some(allowed) = self.allowed_origin(origin.unwrap_or(&empty)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        }
        if self.allow_credentials {
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        if let Some(value) = &self.expose_headers {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
        }
        if self.add_vary {
            add_vary_origin(headers);
        }
    }

    /// The `Access-Control-Allow-Origin` value for `origin`: the first list entry equal to it
    /// or `*`, else the origin itself when a regex matches it.
    fn allowed_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        let origin_bytes = origin.as_bytes();
        if let Some(item) = self
            .origins
            .iter()
            .find(|item| item.as_bytes() == b"*" || item.as_bytes() == origin_bytes)
        {
            return Some(item.clone());
        }
        let text = origin.to_str().ok()?;
        self.origin_regexes
            .iter()
            .any(|r| r.is_match(text))
            .then(|| origin.clone())
    }
}

/// Appends `Origin` to the first `Vary` value (Traefik reads and rewrites only the first).
fn add_vary_origin(headers: &mut HeaderMap) {
    let vary = match headers.get(header::VARY) {
        Some(v) if v.as_bytes() == b"Origin" => return,
        Some(v) if !v.is_empty() => {
            let mut joined = v.as_bytes().to_vec();
            joined.extend_from_slice(b",Origin");
            HeaderValue::from_bytes(&joined).unwrap_or(HeaderValue::from_static("Origin"))
        }
        _ => HeaderValue::from_static("Origin"),
    };
    headers.insert(header::VARY, vary);
}

fn non_empty(value: Option<&HeaderValue>) -> Option<&HeaderValue> {
    value.filter(|v| !v.is_empty())
}

/// A list joined with `,` as one header value; `None` for an empty list.
fn joined(list: &[String], option: &str) -> Result<Option<HeaderValue>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    header_value(&list.join(","), option).map(Some)
}
