//! Go's `http.DetectContentType` (the WHATWG MIME sniffing subset Go implements): the
//! Content-Type Traefik's `contentType` middleware lets Go's server fill in.

/// The content type of a body that starts with `data` (only the first 512 bytes count).
pub(crate) fn detect_content_type(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(512)];
    let first_non_ws = data
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .unwrap_or(data.len());
    let trimmed = &data[first_non_ws..];
    for sig in HTML {
        if html_match(trimmed, sig) {
            return "text/html; charset=utf-8";
        }
    }
    if starts_with_ci(trimmed, b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    for (prefix, mime) in EXACT {
        if data.starts_with(prefix) {
            return mime;
        }
    }
    for (mask, pattern, mime) in MASKED {
        if masked_match(data, mask, pattern) {
            return mime;
        }
    }
    if is_mp4(data) {
        return "video/mp4";
    }
    if data.iter().any(|b| is_binary(*b)) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

const HTML: &[&[u8]] = &[
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

const EXACT: &[(&[u8], &str)] = &[
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"\xFE\xFF", "text/plain; charset=utf-16be"),
    (b"\xFF\xFE", "text/plain; charset=utf-16le"),
    (b"\xEF\xBB\xBF", "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    (b"\xFF\xD8\xFF", "image/jpeg"),
    (b"ID3", "audio/mpeg"),
    (b"OggS\x00", "application/ogg"),
    (b"MThd\x00\x00\x00\x06", "audio/midi"),
    (b"\x1A\x45\xDF\xA3", "video/webm"),
    (b"\x00\x01\x00\x00", "font/ttf"),
    (b"OTTO", "font/otf"),
    (b"ttcf", "font/collection"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
    (b"\x1F\x8B\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00\x61\x73\x6D", "application/wasm"),
];

type Masked = (&'static [u8], &'static [u8], &'static str);

const MASKED: &[Masked] = &[
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"FORM\x00\x00\x00\x00AIFF",
        "audio/aiff",
    ),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00AVI ",
        "video/avi",
    ),
    (
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WAVE",
        "audio/wave",
    ),
    (
        b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP",
        "application/vnd.ms-fontobject",
    ),
];

/// An HTML signature, case-insensitive, followed by a space or `>`.
fn html_match(data: &[u8], sig: &[u8]) -> bool {
    starts_with_ci(data, sig) && matches!(data.get(sig.len()), Some(b' ' | b'>'))
}

fn starts_with_ci(data: &[u8], prefix: &[u8]) -> bool {
    data.len() >= prefix.len() && data[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn masked_match(data: &[u8], mask: &[u8], pattern: &[u8]) -> bool {
    data.len() >= pattern.len()
        && pattern
            .iter()
            .zip(mask)
            .zip(data)
            .all(|((p, m), d)| d & m == *p)
}

fn is_mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let box_size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if data.len() < box_size || !box_size.is_multiple_of(4) || &data[4..8] != b"ftyp" {
        return false;
    }
    (8..box_size)
        .step_by(4)
        .filter(|&i| i != 12)
        .any(|i| data.get(i..i + 3) == Some(b"mp4"))
}

fn is_binary(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F)
}

#[cfg(test)]
mod tests {
    use super::detect_content_type;

    #[test]
    fn detects_as_go_does() {
        assert_eq!(
            detect_content_type(b"  <html><body>x"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            detect_content_type(b"<?xml version"),
            "text/xml; charset=utf-8"
        );
        assert_eq!(detect_content_type(b"\x89PNG\r\n\x1a\nxxxx"), "image/png");
        assert_eq!(detect_content_type(b"hello"), "text/plain; charset=utf-8");
        assert_eq!(
            detect_content_type(b"\x00\x01binary"),
            "application/octet-stream"
        );
        assert_eq!(
            detect_content_type(b"{\"a\":1}"),
            "text/plain; charset=utf-8"
        );
    }
}
