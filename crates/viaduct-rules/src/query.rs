//! Query-string decoding as Go's `net/url` does it, without building a map per request.

use crate::path::decode_escape;
use std::borrow::Cow;

/// The decoded values of `key`, in order, parsed like Go's `url.ParseQuery`: pairs split on `&`,
/// pairs containing `;` skipped, keys and values percent-decoded with `+` as space, pairs that
/// fail to decode skipped.
pub(crate) fn query_values<'q>(
    raw: &'q str,
    key: &'q str,
) -> impl Iterator<Item = Cow<'q, [u8]>> + 'q {
    raw.split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(move |pair| decoded_pair_value(pair, key))
}

/// The first decoded value of `key`, as gorilla/mux looks it up for v2 `Query`: pairs split on
/// `&` or `;`.
pub(crate) fn first_query_value<'q>(raw: &'q str, key: &str) -> Option<Cow<'q, [u8]>> {
    raw.split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| decoded_pair_value(pair, key))
}

fn decoded_pair_value<'q>(pair: &'q str, key: &str) -> Option<Cow<'q, [u8]>> {
    let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
    if query_unescape(raw_key)?.as_ref() != key.as_bytes() {
        return None;
    }
    query_unescape(raw_value)
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` on a malformed escape.
pub(crate) fn query_unescape(s: &str) -> Option<Cow<'_, [u8]>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s.as_bytes()));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                out.push(decode_escape(bytes, i)?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(out))
}
