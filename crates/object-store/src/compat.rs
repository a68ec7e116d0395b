//! Everything here depends on the exact shape of object_store's result types.
//!
//! object_store 0.14 adds an `extensions` field to `GetResult`, `PutResult` and
//! `ListResult`; a struct literal of any of them stops compiling across that change.
//! So no other module builds or takes apart those structs: `DioStore` makes its
//! results here, and `IoObjectStore` passes the inner store's results through whole,
//! changing only a `GetResult`'s payload, in place, here (every other field, present
//! or future, travels along untouched). Moving to another object_store version means
//! reading this file, not the crate.

use std::ops::Range;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, GetResult, GetResultPayload, ListResult, ObjectMeta, PutResult, Result,
};

/// A payload as the adapter receives it from the inner store.
pub(crate) enum Payload {
    /// A local file and the byte range of it that was asked for.
    File(std::fs::File, std::path::PathBuf),
    /// Any other body.
    Stream(BoxStream<'static, Result<Bytes>>),
}

/// Replaces `result`'s payload with the stream `f` makes of it; `f` gets the old
/// payload and the byte range the result covers.
pub(crate) fn map_payload(
    mut result: GetResult,
    f: impl FnOnce(Payload, Range<u64>) -> BoxStream<'static, Result<Bytes>>,
) -> GetResult {
    let old = std::mem::replace(
        &mut result.payload,
        GetResultPayload::Stream(futures_util::stream::empty().boxed()),
    );
    let payload = match old {
        GetResultPayload::File(file, path) => Payload::File(file, path),
        GetResultPayload::Stream(stream) => Payload::Stream(stream),
    };
    result.payload = GetResultPayload::Stream(f(payload, result.range.clone()));
    result
}

/// A `GetResult` whose payload is `stream`.
pub(crate) fn get_result(
    stream: BoxStream<'static, Result<Bytes>>,
    meta: ObjectMeta,
    range: Range<u64>,
    attributes: Attributes,
) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(stream),
        meta,
        range,
        attributes,
    }
}

/// The result of a write that made version `e_tag`.
pub(crate) fn put_result(e_tag: Option<String>) -> PutResult {
    PutResult {
        e_tag,
        version: None,
    }
}

/// A listing with a delimiter.
pub(crate) fn list_result(common_prefixes: Vec<Path>, objects: Vec<ObjectMeta>) -> ListResult {
    ListResult {
        common_prefixes,
        objects,
    }
}
