//! The XML bodies S3 sends and receives, as serde types.

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// `<Error>`: the body of a failed request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ErrorBody {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) request_id: String,
}

/// `<ListBucketResult>` of ListObjectsV2.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ListBucketResult {
    /// `url` if the keys and prefixes below are percent-encoded (asked for with
    /// `encoding-type=url`; a server that ignores the parameter leaves it out).
    pub(crate) encoding_type: Option<String>,
    pub(crate) is_truncated: bool,
    pub(crate) next_continuation_token: Option<String>,
    pub(crate) contents: Vec<ListedObject>,
    pub(crate) common_prefixes: Vec<CommonPrefix>,
}

impl ListBucketResult {
    /// Decodes the keys and prefixes if the server encoded them.
    pub(crate) fn decoded(mut self) -> Result<Self> {
        if !self
            .encoding_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("url"))
        {
            return Ok(self);
        }
        for object in &mut self.contents {
            object.key = url_decode(&object.key)?;
        }
        for prefix in &mut self.common_prefixes {
            prefix.prefix = url_decode(&prefix.prefix)?;
        }
        self.encoding_type = None;
        Ok(self)
    }
}

/// A key as `encoding-type=url` sends it: percent-encoded, a space as `+` (what
/// AWS's own SDKs decode).
fn url_decode(value: &str) -> Result<String> {
    let plus_as_space = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| {
            Error::new(ErrorKind::Unexpected).with_message(format!(
                "the server listed a key {value:?} that does not decode to UTF-8: {e}"
            ))
        })
}

/// `false` for a key XML 1.0 cannot carry even as a character reference (a
/// control character other than tab, line feed and carriage return): such a key
/// cannot go into a DeleteObjects body.
pub(crate) fn fits_xml(key: &str) -> bool {
    !key.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ListedObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) last_modified: Option<String>,
    #[serde(rename = "ETag")]
    pub(crate) etag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CommonPrefix {
    pub(crate) prefix: String,
}

/// `<InitiateMultipartUploadResult>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InitiateMultipartUploadResult {
    pub(crate) upload_id: String,
}

/// `<ListPartsResult>`: the parts of an upload (only how many are shown).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListPartsResult {
    #[serde(rename = "Part", default)]
    pub(crate) parts: Vec<serde::de::IgnoredAny>,
}

/// `<CompleteMultipartUpload>`, the request body that commits an upload.
#[derive(Debug, Serialize)]
#[serde(rename = "CompleteMultipartUpload", rename_all = "PascalCase")]
pub(crate) struct CompleteMultipartUpload {
    #[serde(rename = "Part")]
    pub(crate) parts: Vec<CompletedPart>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CompletedPart {
    pub(crate) part_number: u32,
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
    #[serde(rename = "ChecksumCRC32", skip_serializing_if = "Option::is_none")]
    pub(crate) checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", skip_serializing_if = "Option::is_none")]
    pub(crate) checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", skip_serializing_if = "Option::is_none")]
    pub(crate) checksum_crc64nvme: Option<String>,
    /// The part's checksum and length, for the object's (not sent).
    #[serde(skip)]
    pub(crate) crc: Option<(u64, u64)>,
}

/// `<CopyPartResult>`, the answer to UploadPartCopy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CopyPartResult {
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
}

/// `<Tagging>`, the answer to GetObjectTagging.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Tagging {
    pub(crate) tag_set: TagSet,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct TagSet {
    #[serde(rename = "Tag")]
    pub(crate) tags: Vec<Tag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// `<Delete>`, the request body of DeleteObjects.
#[derive(Debug, Serialize)]
#[serde(rename = "Delete", rename_all = "PascalCase")]
pub(crate) struct Delete {
    pub(crate) quiet: bool,
    #[serde(rename = "Object")]
    pub(crate) objects: Vec<DeleteObject>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DeleteObject {
    pub(crate) key: String,
}

/// `<DeleteResult>`: with `Quiet`, only the keys that failed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct DeleteResult {
    #[serde(rename = "Error")]
    pub(crate) errors: Vec<DeleteError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct DeleteError {
    pub(crate) key: String,
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Parses an XML response body.
///
/// The parser ends lines by XML 1.1's rules, which turn a raw U+0085 or U+2028
/// in a key into a line feed; they are read as the characters they are (XML 1.0,
/// which S3 speaks, keeps them).
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(body).map_err(|e| malformed(e.to_string(), body))?;
    let text = if text.contains(['\u{85}', '\u{2028}']) {
        std::borrow::Cow::Owned(
            text.replace('\u{85}', "&#x85;")
                .replace('\u{2028}', "&#x2028;"),
        )
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    quick_xml::de::from_str(&text).map_err(|e| malformed(e.to_string(), body))
}

/// Serializes a request body, with the XML declaration.
pub(crate) fn to_body<T: Serialize>(value: &T) -> Result<bytes::Bytes> {
    let xml = quick_xml::se::to_string(value).map_err(|e| {
        Error::new(ErrorKind::Unexpected).with_message(format!("cannot encode XML: {e}"))
    })?;
    // What an XML parser would change is sent as character references: a
    // carriage return (read as a line feed) and the line ends of XML 1.1.
    let xml = if xml.contains(['\r', '\u{85}', '\u{2028}']) {
        xml.replace('\r', "&#13;")
            .replace('\u{85}', "&#x85;")
            .replace('\u{2028}', "&#x2028;")
    } else {
        xml
    };
    Ok(format!(r#"<?xml version="1.0" encoding="UTF-8"?>{xml}"#).into())
}

/// The name of a body's root element, if it has one. S3 sends whitespace to keep
/// the connection open while it works, after the XML declaration and before the
/// document's root, however long that takes: all of it is skipped.
pub(crate) fn document_root(body: &[u8]) -> Option<&[u8]> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut rest = body.trim_ascii_start();
    if rest.starts_with(b"<?xml")
        && let Some(end) = rest.windows(2).position(|w| w == b"?>")
    {
        rest = rest[end + 2..].trim_ascii_start();
    }
    let name = rest.strip_prefix(b"<")?;
    let end = name
        .iter()
        .position(|&b| b == b'>' || b == b'/' || b.is_ascii_whitespace())?;
    let name = &name[..end];
    // A prefixed root (`<s3:ListBucketResult`) is named without its prefix.
    let local = match name.iter().position(|&b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    };
    Some(local).filter(|n| !n.is_empty())
}

/// Whether `body`, a document whose root element is `root` ([`document_root`]),
/// ends where that element does: with its closing tag, or with the root's own
/// `/>` when it holds nothing. A body cut after its root began does not (a
/// connection closed early ends a body that has no length as if it were whole).
pub(crate) fn document_ends(body: &[u8], root: &[u8]) -> bool {
    let text = body.trim_ascii_end();
    if let Some(last) = text.windows(2).rposition(|w| w == b"</") {
        let Some(name) = text[last + 2..].strip_suffix(b">") else {
            return false;
        };
        let name = name.trim_ascii_end();
        let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
        return local == root;
    }
    // No closing tag at all: only a root that closes itself, with no element
    // after it (`<R><C/>` is cut).
    let declared = usize::from(text.windows(5).any(|w| w == b"<?xml"));
    text.ends_with(b"/>") && text.iter().filter(|&&b| b == b'<').count() == 1 + declared
}

fn malformed(detail: String, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(&body[..body.len().min(240)]);
    let mut start: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if start.chars().count() > 80 {
        start = start.chars().take(80).collect::<String>() + "...";
    }
    Error::new(ErrorKind::Unexpected).with_message(format!(
        "the server's answer is not the XML S3 sends ({detail}); it starts {start:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listing_with_prefixes_and_a_token() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>a/x &amp; y</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>
    <ETag>"abc"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <CommonPrefixes><Prefix>a/sub/</Prefix></CommonPrefixes>
  <NextContinuationToken>tok+en</NextContinuationToken>
</ListBucketResult>"#;
        let list: ListBucketResult = parse(body).unwrap();
        assert!(list.is_truncated);
        assert_eq!(list.next_continuation_token.as_deref(), Some("tok+en"));
        assert_eq!(list.contents.len(), 1);
        assert_eq!(list.contents[0].key, "a/x & y");
        assert_eq!(list.contents[0].size, 12);
        assert_eq!(list.contents[0].etag.as_deref(), Some("\"abc\""));
        assert_eq!(list.common_prefixes[0].prefix, "a/sub/");
    }

    /// Repeated elements need not come together: a DeleteResult of a server that
    /// ignores `Quiet` mixes `Deleted` and `Error`, and a listing may give its
    /// `Contents` and `CommonPrefixes` in key order. Every one is kept.
    #[test]
    fn repeated_elements_apart_from_each_other_are_all_kept() {
        let deleted = "<DeleteResult><Error><Key>a</Key><Code>AccessDenied</Code></Error>\
            <Deleted><Key>b</Key></Deleted>\
            <Error><Key>c</Key><Code>AccessDenied</Code></Error></DeleteResult>";
        let result = parse::<DeleteResult>(deleted.as_bytes()).unwrap();
        let keys: Vec<&str> = result.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        let listing = "<ListBucketResult><Contents><Key>a</Key></Contents>\
            <CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>\
            <Contents><Key>c</Key></Contents>\
            <CommonPrefixes><Prefix>d/</Prefix></CommonPrefixes></ListBucketResult>";
        let list = parse::<ListBucketResult>(listing.as_bytes()).unwrap();
        let keys: Vec<&str> = list.contents.iter().map(|o| o.key.as_str()).collect();
        let dirs: Vec<&str> = list
            .common_prefixes
            .iter()
            .map(|p| p.prefix.as_str())
            .collect();
        assert_eq!((keys, dirs), (vec!["a", "c"], vec!["b/", "d/"]));
    }

    #[test]
    fn keys_xml_would_change_arrive_and_leave_as_they_are() {
        // Encoded by the server (encoding-type=url): a space as `+`, a plus as %2B.
        let body = "<ListBucketResult><EncodingType>url</EncodingType>\
            <Contents><Key>a/x+y%2Bz%0D%01%E2%80%A8</Key></Contents>\
            <CommonPrefixes><Prefix>a/d%0A/</Prefix></CommonPrefixes></ListBucketResult>";
        let list = parse::<ListBucketResult>(body.as_bytes())
            .unwrap()
            .decoded()
            .unwrap();
        assert_eq!(list.contents[0].key, "a/x y+z\r\u{1}\u{2028}");
        assert_eq!(list.common_prefixes[0].prefix, "a/d\n/");
        // Not encoded (a server that ignores the parameter): taken as sent, and
        // XML 1.0's line ends only.
        let body = "<ListBucketResult><Contents><Key>a/x+y%2B\u{2028}\u{85}&#13;</Key>\
            </Contents></ListBucketResult>";
        let list = parse::<ListBucketResult>(body.as_bytes())
            .unwrap()
            .decoded()
            .unwrap();
        assert_eq!(list.contents[0].key, "a/x+y%2B\u{2028}\u{85}\r");
        let bad = "<ListBucketResult><EncodingType>url</EncodingType>\
            <Contents><Key>a/%FF</Key></Contents></ListBucketResult>";
        let err = parse::<ListBucketResult>(bad.as_bytes())
            .unwrap()
            .decoded()
            .unwrap_err();
        assert!(err.to_string().contains("a/%FF"), "{err}");
        // A delete names every key as it is.
        let body = to_body(&Delete {
            quiet: true,
            objects: vec![DeleteObject {
                key: "k\r\n\u{85}\u{2028}<&".into(),
            }],
        })
        .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<Key>k&#13;\n&#x85;&#x2028;&lt;&amp;</Key>"),
            "{text}"
        );
        assert!(fits_xml("tab\tline\nreturn\r\u{85}\u{2028}"));
        assert!(!fits_xml("a\u{1}b") && !fits_xml("a\u{1f}") && !fits_xml("\u{ffff}"));
    }

    fn is_error(body: &[u8]) -> bool {
        document_root(body) == Some(b"Error")
    }

    #[test]
    fn writes_request_bodies_and_spots_error_documents() {
        let body = to_body(&CompleteMultipartUpload {
            parts: vec![CompletedPart {
                part_number: 1,
                etag: "\"e1\"".into(),
                checksum_crc32: None,
                checksum_crc32c: None,
                checksum_crc64nvme: None,
                crc: None,
            }],
        })
        .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"),
            "{text}"
        );
        assert!(is_error(
            b"<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code></Error>"
        ));
        assert_eq!(
            document_root(b"<CopyObjectResult></CopyObjectResult>"),
            Some(&b"CopyObjectResult"[..])
        );
        assert_eq!(
            document_root(b"<?xml version=\"1.0\"?>\n  <R xmlns=\"x\"/>"),
            Some(&b"R"[..])
        );
        assert_eq!(
            document_root(b"\xEF\xBB\xBF<?xml version=\"1.0\"?><s3:DeleteResult xmlns:s3=\"x\"/>"),
            Some(&b"DeleteResult"[..])
        );
        // Whole documents end where their root does; cut ones do not.
        for whole in [
            &b"<?xml version=\"1.0\"?>\n<R><C>x</C></R>\n"[..],
            b"<s3:R xmlns:s3=\"x\"><C/></s3:R>",
            b"<?xml version=\"1.0\"?><R xmlns=\"x\"/>  ",
            b"<R/>",
        ] {
            assert!(
                document_ends(whole, b"R"),
                "{:?}",
                String::from_utf8_lossy(whole)
            );
        }
        for cut in [
            &b"<R><C>x</C>"[..],
            b"<R><C>x</C></R",
            b"<R><C/>",
            b"<?xml version=\"1.0\"?><R>",
            b"<R><C>x</",
        ] {
            assert!(
                !document_ends(cut, b"R"),
                "{:?}",
                String::from_utf8_lossy(cut)
            );
        }
        // Only keep-alive whitespace came: no document.
        assert_eq!(document_root(b"<?xml version=\"1.0\"?>\n   "), None);
        assert_eq!(document_root(b""), None);
        // Keep-alive whitespace, however much of it, hides nothing.
        let padded = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}<Error><Code>InternalError</Code></Error>",
            " \n".repeat(4000)
        );
        assert!(is_error(padded.as_bytes()));
        let padded_result = format!(
            "<?xml version=\"1.0\"?>{}<CompleteMultipartUploadResult></CompleteMultipartUploadResult>",
            " ".repeat(4000)
        );
        assert!(!is_error(padded_result.as_bytes()));
        let err: ErrorBody = parse(b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>r1</RequestId></Error>").unwrap();
        assert_eq!(
            (err.code.as_str(), err.request_id.as_str()),
            ("NoSuchKey", "r1")
        );
    }

    proptest::proptest! {
        /// Whatever a server sends, parsing it is an answer or an error.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse::<ListBucketResult>(&body);
            let _ = parse::<ErrorBody>(&body);
            let _ = parse::<DeleteResult>(&body);
            let _ = parse::<InitiateMultipartUploadResult>(&body);
            let _ = is_error(&body);
        }

        /// XML-shaped input, closer to what a confused server sends.
        #[test]
        fn arbitrary_xml_never_panics(
            tags in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just("<ListBucketResult>".to_owned()),
                    proptest::prelude::Just("</ListBucketResult>".to_owned()),
                    proptest::prelude::Just("<Contents><Key>".to_owned()),
                    proptest::prelude::Just("</Key><Size>".to_owned()),
                    proptest::prelude::Just("</Size></Contents>".to_owned()),
                    proptest::prelude::Just("<IsTruncated>".to_owned()),
                    proptest::prelude::Just("<Error><Code>".to_owned()),
                    proptest::prelude::Just("&amp;&#x41;&bogus;".to_owned()),
                    "[ -~]{0,12}",
                ],
                0..30,
            )
        ) {
            let body = tags.concat();
            let _ = parse::<ListBucketResult>(body.as_bytes());
            let _ = parse::<ErrorBody>(body.as_bytes());
            let _ = parse::<DeleteResult>(body.as_bytes());
            let _ = is_error(body.as_bytes());
        }
    }
}
