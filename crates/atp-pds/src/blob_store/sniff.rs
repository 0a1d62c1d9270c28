//! What kind of file a blob is, from its first bytes, named as the
//! reference PDS names it.
//!
//! The reference sniffs uploads with the `file-type` npm package; magic
//! numbers are recognized here by the `infer` crate, with the container
//! families whose sub-type depends on an inner field (ISO base media
//! `ftyp` brands, RIFF forms, Ogg codecs, EBML document types) read
//! directly, and `infer`'s names mapped to the ones `file-type` gives.
//! Text formats are not sniffed (the declared type is kept), except an XML
//! declaration. The `interop_blob_upload` test compares the result with
//! `file-type` (reading a stream, as the reference does) on a corpus of
//! formats.
//!
//! Known difference: `file-type` gives up on some files cut short inside
//! their structure (a PNG whose chunks run past the end, say), and the
//! reference then keeps the declared type; here the signature decides.

/// How many leading bytes [`sniff_mime_type`] looks at (at most).
pub const SNIFF_BYTES: usize = 8192;

/// The MIME type `head` (the first bytes of a blob) announces, if any.
///
/// ```
/// use atp_pds::blob_store::sniff_mime_type;
///
/// let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
/// assert_eq!(sniff_mime_type(png).as_deref(), Some("image/png"));
/// assert_eq!(sniff_mime_type(b"<!DOCTYPE html><p>hi</p>"), None);
/// ```
pub fn sniff_mime_type(head: &[u8]) -> Option<String> {
    if let Some(family) = container_type(head) {
        return family.map(str::to_owned);
    }
    if head.starts_with(b"<?xml ") {
        return Some("application/xml".to_owned());
    }
    let kind = infer::get(head)?;
    if kind.matcher_type() == infer::MatcherType::Text
        || UNKNOWN_TO_REFERENCE.contains(&kind.mime_type())
    {
        return None;
    }
    Some(reference_name(kind.mime_type(), head).to_owned())
}

/// Types `infer` recognizes and the reference's sniffer does not (or not
/// from these bytes: it tells cpio apart by the forms handled above).
const UNKNOWN_TO_REFERENCE: &[&str] = &["image/vnd.djvu", "application/x-cpio"];

/// `Some(answer)` when `head` is a container whose type depends on an
/// inner field (the answer itself may be "unknown").
fn container_type(head: &[u8]) -> Option<Option<&'static str>> {
    if head.get(4..8) == Some(b"ftyp") && head.get(8).is_some_and(|b| b & 0x60 != 0) {
        return Some(Some(iso_brand_type(head.get(8..12)?)));
    }
    if head.starts_with(b"RIFF") {
        let form = head.get(8..12)?;
        let riff = match form {
            b"WEBP" => Some("image/webp"),
            b"WAVE" => Some("audio/wav"),
            b"QLCM" => Some("audio/qcelp"),
            _ if form.starts_with(b"AVI") => Some("video/vnd.avi"),
            _ => None,
        };
        return riff.map(Some);
    }
    if head.starts_with(b"OggS") {
        return Some(head.get(28..36).map(ogg_codec_type));
    }
    if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return Some(ebml_doc_type(head));
    }
    if head.starts_with(&[0, 0, 1, 0xba]) {
        // MPEG program stream: version by the pack header's marker bits.
        let marker = head.get(4).copied().unwrap_or(0);
        return Some(Some(if marker & 0xf1 == 0x21 {
            "video/MP1S"
        } else if marker & 0xc4 == 0x44 {
            "video/MP2P"
        } else {
            "video/mpeg"
        }));
    }
    if head.starts_with(&ASF_HEADER) {
        return Some(asf_type(head));
    }
    if head.starts_with(b"070707") || head.starts_with(&[0xc7, 0x71]) {
        return Some(Some("application/x-cpio"));
    }
    None
}

/// The type of an ISO base media file (MP4, QuickTime, HEIF...) by its
/// major brand.
fn iso_brand_type(brand: &[u8]) -> &'static str {
    // Latin-1, the first NUL read as a space, surrounding spaces ignored.
    let mut text: String = brand.iter().map(|&b| char::from(b)).collect();
    if let Some(at) = text.find('\0') {
        text.replace_range(at..=at, " ");
    }
    match text.trim() {
        "avif" | "avis" => "image/avif",
        "mif1" => "image/heif",
        "msf1" => "image/heif-sequence",
        "heic" | "heix" => "image/heic",
        "hevc" | "hevx" => "image/heic-sequence",
        "qt" => "video/quicktime",
        "M4V" | "M4VH" | "M4VP" => "video/x-m4v",
        "M4B" | "F4A" | "F4B" => "audio/mp4",
        "M4A" => "audio/x-m4a",
        "crx" => "image/x-canon-cr3",
        brand if brand.starts_with("3g2") => "video/3gpp2",
        brand if brand.starts_with("3g") => "video/3gpp",
        _ => "video/mp4",
    }
}

/// The type of an Ogg stream by the codec identification of its first
/// packet.
fn ogg_codec_type(packet: &[u8]) -> &'static str {
    if packet.starts_with(b"OpusHead") {
        "audio/ogg; codecs=opus"
    } else if packet.starts_with(b"\x80theora") || packet.starts_with(b"\x01video\0") {
        "video/ogg"
    } else if packet.starts_with(b"\x7fFLAC")
        || packet.starts_with(b"Speex  ")
        || packet.starts_with(b"\x01vorbis")
    {
        "audio/ogg"
    } else {
        "application/ogg"
    }
}

/// The type of an EBML file (Matroska, WebM) by its `DocType` element.
fn ebml_doc_type(head: &[u8]) -> Option<&'static str> {
    let window = &head[..head.len().min(256)];
    let at = window.windows(2).position(|pair| pair == [0x42, 0x82])?;
    let size_byte = *window.get(at + 2)?;
    // A one-byte size (the form every writer uses for a short string).
    if size_byte & 0x80 == 0 {
        return None;
    }
    let len = usize::from(size_byte & 0x7f);
    let doc_type = window.get(at + 3..at + 3 + len)?;
    let doc_type: Vec<u8> = doc_type.iter().copied().take_while(|&b| b != 0).collect();
    match doc_type.as_slice() {
        b"webm" => Some("video/webm"),
        b"matroska" => Some("video/matroska"),
        _ => None,
    }
}

/// GUID of the ASF header object (its bytes as stored).
const ASF_HEADER: [u8; 16] = [
    0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11, 0xa6, 0xd9, 0x00, 0xaa, 0x00, 0x62, 0xce, 0x6c,
];
/// GUID of the ASF stream properties object.
const ASF_STREAM_PROPERTIES: [u8; 16] = [
    0x91, 0x07, 0xdc, 0xb7, 0xb7, 0xa9, 0xcf, 0x11, 0x8e, 0xe6, 0x00, 0xc0, 0x0c, 0x20, 0x53, 0x65,
];
/// GUID of the ASF audio stream type.
const ASF_AUDIO: [u8; 16] = [
    0x40, 0x9e, 0x69, 0xf8, 0x4d, 0x5b, 0xcf, 0x11, 0xa8, 0xfd, 0x00, 0x80, 0x5f, 0x5c, 0x44, 0x2b,
];
/// GUID of the ASF video stream type.
const ASF_VIDEO: [u8; 16] = [
    0xc0, 0xef, 0x19, 0xbc, 0x4d, 0x5b, 0xcf, 0x11, 0xa8, 0xfd, 0x00, 0x80, 0x5f, 0x5c, 0x44, 0x2b,
];

/// The type of an ASF (Windows Media) file: audio or video by its first
/// stream properties object, generic otherwise; `None` when its objects
/// are malformed or cut short (the reference then keeps the declared
/// type).
fn asf_type(head: &[u8]) -> Option<&'static str> {
    // Everything uploaded is in `head` unless it filled it.
    let whole = head.len() < SNIFF_BYTES;
    let mut at = 30usize;
    while at + 24 <= head.len() {
        let guid = &head[at..at + 16];
        let mut size = [0u8; 8];
        size.copy_from_slice(&head[at + 16..at + 24]);
        let size = u64::from_le_bytes(size);
        if size < 24 {
            return None;
        }
        if guid == ASF_STREAM_PROPERTIES {
            return match head.get(at + 24..at + 40) {
                Some(kind) if kind == ASF_AUDIO => Some("audio/x-ms-asf"),
                Some(kind) if kind == ASF_VIDEO => Some("video/x-ms-asf"),
                Some(_) => Some("application/vnd.ms-asf"),
                None if whole => None,
                None => Some("application/vnd.ms-asf"),
            };
        }
        let next = usize::try_from(size)
            .ok()
            .and_then(|size| at.checked_add(size));
        match next {
            Some(next) if next <= head.len() => at = next,
            // The object runs past what was uploaded: cut short.
            _ if whole => return None,
            // Past what was looked at.
            _ => return Some("application/vnd.ms-asf"),
        }
    }
    if at > head.len() && whole {
        return None;
    }
    Some("application/vnd.ms-asf")
}

/// `infer`'s MIME type as `file-type` names it.
fn reference_name<'a>(mime: &'a str, head: &[u8]) -> &'a str {
    match mime {
        "image/vnd.microsoft.icon" => "image/x-icon",
        "audio/x-flac" => "audio/flac",
        "audio/x-wav" => "audio/wav",
        "audio/m4a" => "audio/x-m4a",
        "video/x-msvideo" => "video/vnd.avi",
        "application/vnd.sqlite3" => "application/x-sqlite3",
        "application/x-executable" => "application/x-elf",
        "application/vnd.microsoft.portable-executable" => "application/x-msdownload",
        "application/vnd.rar" => "application/x-rar-compressed",
        "application/font-woff" if head.starts_with(b"wOF2") => "font/woff2",
        "application/font-woff" => "font/woff",
        "application/font-sfnt" if head.starts_with(b"OTTO") => "font/otf",
        "application/font-sfnt" => "font/ttf",
        "audio/x-aiff" => "audio/aiff",
        "audio/x-ape" => "audio/ape",
        "application/java" => "application/java-vm",
        "application/x-lzip" => "application/lzip",
        "application/vnd.debian.binary-package" => "application/x-deb",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_brands() {
        assert_eq!(iso_brand_type(b"qt  "), "video/quicktime");
        assert_eq!(iso_brand_type(b"M4A\0"), "audio/x-m4a");
        assert_eq!(iso_brand_type(b"3g2a"), "video/3gpp2");
        assert_eq!(iso_brand_type(b"isom"), "video/mp4");
    }

    #[test]
    fn short_containers_are_unknown() {
        assert_eq!(sniff_mime_type(b"OggS\0\x02"), None);
        assert_eq!(sniff_mime_type(b"RIFF\0\0"), None);
        assert_eq!(sniff_mime_type(b""), None);
    }
}
