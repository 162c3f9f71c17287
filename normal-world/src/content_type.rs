//! MIME content types with an RFC 6381 `codecs` parameter, as EME capabilities name them
//! (EME §3.1.1.2 steps 3.5–3.12), and the containers and codecs this CDM's players handle.

/// The kind of media a capability asks for (`audioCapabilities` or `videoCapabilities`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Audio,
    Video,
}

/// Containers the Clear Key implementation supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Container {
    Mp4,
    Webm,
}

/// A parsed and supported content type: its kind, container and codecs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub(crate) kind: MediaKind,
    pub(crate) container: Container,
    pub(crate) codecs: Vec<String>,
}

/// Why a content type is skipped (each reason is a `continue` of EME §3.1.1.2 step 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Not a valid MIME type (step 3.5).
    InvalidMime,
    /// Container not supported (step 3.7).
    Container,
    /// A parameter other than `codecs`, or a malformed `codecs` value (step 3.9).
    Parameter,
    /// No codecs named, and the container implies none (step 3.11).
    NoCodecs,
    /// A codec is unknown, unsupported in the container, or of the other media kind
    /// (steps 3.9 and 3.12).
    Codec,
}

fn is_token_char(c: char) -> bool {
    // RFC 2045 / RFC 9110 token characters.
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// A MIME type split into lowercase type and subtype, and its parameters (lowercase names).
struct Mime {
    ty: String,
    sub: String,
    params: Vec<(String, String)>,
}

/// Splits `type/subtype; name=value; ...` into lowercase type, subtype and parameters.
/// Quoted values may contain `;` and `,`; backslash escapes are honoured.
fn parse_mime(s: &str) -> Option<Mime> {
    let s = s.trim_matches(|c: char| c == ' ' || c == '\t');
    let (essence, mut rest) = match s.find(';') {
        Some(i) => (s.get(..i)?, s.get(i..)?),
        None => (s, ""),
    };
    let (ty, sub) = essence.trim_end().split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let mut params = Vec::new();
    while let Some(after) = rest.strip_prefix(';') {
        let after = after.trim_start_matches([' ', '\t']);
        let eq = after.find('=')?;
        let name = after.get(..eq)?;
        if !is_token(name) {
            return None;
        }
        let value_part = after.get(eq.checked_add(1)?..)?;
        let (value, remaining) = if let Some(q) = value_part.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = i.checked_add(1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let rem = q.get(end?..)?.trim_start_matches([' ', '\t']);
            (value, rem)
        } else {
            let end = value_part.find(';').unwrap_or(value_part.len());
            let v = value_part.get(..end)?.trim_end_matches([' ', '\t']);
            if !is_token(v) {
                return None;
            }
            (v.to_string(), value_part.get(end..)?)
        };
        if !remaining.is_empty() && !remaining.starts_with(';') {
            return None;
        }
        params.push((name.to_ascii_lowercase(), value));
        rest = remaining;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Mime {
        ty: ty.to_ascii_lowercase(),
        sub: sub.to_ascii_lowercase(),
        params,
    })
}

fn all_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The media kind of an RFC 6381 codec string, if it is well-formed and one this CDM's
/// players decode, and whether `container` can carry it.
fn classify_codec(codec: &str, container: Container) -> Option<MediaKind> {
    let (fourcc, rest) = match codec.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (codec, None),
    };
    let (kind, mp4, webm) = match (fourcc, rest) {
        // ISO/IEC 14496-15: avc1.PPCCLL (6 hex digits); the bare 4CC is accepted as browsers do.
        ("avc1" | "avc3", None) => (MediaKind::Video, true, false),
        ("avc1" | "avc3", Some(r)) if r.len() == 6 && all_hex(r) => (MediaKind::Video, true, false),
        // ISO/IEC 14496-15 Annex E: hev1.P.C.Tl.C... (profile space/idc, compat, tier+level).
        ("hev1" | "hvc1", None) => (MediaKind::Video, true, false),
        ("hev1" | "hvc1", Some(r))
            if r.split('.').count() >= 3
                && r.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric())) =>
        {
            (MediaKind::Video, true, false)
        }
        // VP Codec ISO Media File Format Binding: vp09.PP.LL.DD[...] (two-digit fields).
        ("vp09", Some(r))
            if r.split('.').count() >= 3 && r.split('.').all(|p| p.len() == 2 && all_digits(p)) =>
        {
            (MediaKind::Video, true, true)
        }
        ("vp8" | "vp9", None) => (MediaKind::Video, false, true),
        // AV1 Codec ISO Media File Format Binding: av01.P.LLT.DD[...].
        ("av01", Some(r)) => {
            let mut parts = r.split('.');
            let profile = parts.next()?;
            let level_tier = parts.next()?;
            let depth = parts.next()?;
            let lt_ok = level_tier.len() == 3
                && level_tier.get(..2).is_some_and(all_digits)
                && matches!(level_tier.get(2..), Some("M" | "H"));
            let ok = profile.len() == 1
                && all_digits(profile)
                && lt_ok
                && depth.len() == 2
                && all_digits(depth)
                && parts.all(all_digits);
            if !ok {
                return None;
            }
            (MediaKind::Video, true, true)
        }
        // RFC 6381 §3.3: mp4a.40.N (MPEG-4 audio object type) or mp4a.OO (object type id).
        ("mp4a", Some(r)) => {
            let ok = match r.split_once('.') {
                Some(("40", aot)) => all_digits(aot),
                None => r.len() == 2 && all_hex(r),
                _ => false,
            };
            if !ok {
                return None;
            }
            (MediaKind::Audio, true, false)
        }
        ("opus" | "Opus", None) => (MediaKind::Audio, true, true),
        ("flac" | "fLaC", None) => (MediaKind::Audio, true, false),
        ("vorbis", None) => (MediaKind::Audio, false, true),
        _ => return None,
    };
    let carried = match container {
        Container::Mp4 => mp4,
        Container::Webm => webm,
    };
    carried.then_some(kind)
}

/// Parses `content_type` for a capability of `kind` (EME §3.1.1.2 steps 3.5–3.12).
///
/// The type and subtype are case-insensitive; codec strings are compared case-sensitively, as
/// RFC 6381 specifies. Only the `codecs` parameter is recognized. Every codec must be
/// supported, carried by the container, and of the capability's media kind ("strictly an
/// audio/video type").
pub(crate) fn parse_content_type(content_type: &str, kind: MediaKind) -> Result<ContentType, Skip> {
    let Mime { ty, sub, params } = parse_mime(content_type).ok_or(Skip::InvalidMime)?;
    let container = match sub.as_str() {
        "mp4" => Container::Mp4,
        "webm" => Container::Webm,
        _ => return Err(Skip::Container),
    };
    let mime_kind = match ty.as_str() {
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        _ => return Err(Skip::Container),
    };
    let mut codecs = None;
    for (name, value) in params {
        if name != "codecs" || codecs.is_some() {
            return Err(Skip::Parameter);
        }
        let list: Vec<String> = value.split(',').map(|c| c.trim().to_string()).collect();
        if list.iter().any(String::is_empty) {
            return Err(Skip::Parameter);
        }
        codecs = Some(list);
    }
    // Neither MP4 nor WebM implies a codec set, so a type without codecs is skipped (3.11).
    let codecs = codecs.ok_or(Skip::NoCodecs)?;
    for codec in &codecs {
        let codec_kind = classify_codec(codec, container).ok_or(Skip::Codec)?;
        // Step 3.12: "strictly an audio/video type": both the MIME type and every codec.
        if codec_kind != kind || mime_kind != kind {
            return Err(Skip::Codec);
        }
    }
    if mime_kind != kind {
        return Err(Skip::Codec);
    }
    Ok(ContentType {
        kind,
        container,
        codecs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_types() {
        for (ct, kind) in [
            ("video/mp4; codecs=\"avc1.64001f\"", MediaKind::Video),
            ("VIDEO/MP4;codecs=avc1.4d401e", MediaKind::Video),
            ("video/mp4; codecs=\"hvc1.1.6.L93.B0\"", MediaKind::Video),
            ("video/mp4; codecs=\"av01.0.04M.08\"", MediaKind::Video),
            ("video/webm; codecs=\"vp9\"", MediaKind::Video),
            ("video/webm; codecs=\"vp09.00.10.08\"", MediaKind::Video),
            ("video/webm; codecs=\"vp8\"", MediaKind::Video),
            ("audio/mp4; codecs=\"mp4a.40.2\"", MediaKind::Audio),
            ("audio/mp4; codecs=\"flac\"", MediaKind::Audio),
            ("audio/webm; codecs=\"opus\"", MediaKind::Audio),
            ("audio/mp4; codecs=\"mp4a.40.2, opus\"", MediaKind::Audio),
        ] {
            assert!(parse_content_type(ct, kind).is_ok(), "{ct}");
        }
    }

    #[test]
    fn skips_with_the_right_reason() {
        use MediaKind::*;
        for (ct, kind, why) in [
            ("video", Video, Skip::InvalidMime),
            ("video/mp4; codecs", Video, Skip::InvalidMime),
            ("video/mp4; codecs=\"avc1", Video, Skip::InvalidMime),
            ("video/ogg; codecs=\"theora\"", Video, Skip::Container),
            ("text/mp4; codecs=\"avc1\"", Video, Skip::Container),
            ("video/mp4", Video, Skip::NoCodecs),
            (
                "video/mp4; codecs=\"avc1.64001f\"; foo=bar",
                Video,
                Skip::Parameter,
            ),
            ("video/mp4; codecs=\"avc1.64001f,\"", Video, Skip::Parameter),
            ("video/mp4; codecs=\"AVC1.64001F\"", Video, Skip::Codec),
            ("video/mp4; codecs=\"avc1.64001\"", Video, Skip::Codec),
            ("video/mp4; codecs=\"vp8\"", Video, Skip::Codec),
            ("video/mp4; codecs=\"mp4a.40.2\"", Video, Skip::Codec),
            ("audio/mp4; codecs=\"avc1.64001f\"", Audio, Skip::Codec),
            ("video/mp4; codecs=\"avc1.64001f\"", Audio, Skip::Codec),
            (
                "video/mp4; codecs=\"avc1.64001f,mp4a.40.2\"",
                Video,
                Skip::Codec,
            ),
        ] {
            assert_eq!(parse_content_type(ct, kind), Err(why), "{ct}");
        }
    }
}
