//! Everything here depends on the exact shape of object_store's result types.
//!
//! object_store 0.14 adds an `extensions` field to `GetResult`, `PutResult` and
//! `ListResult`; a struct literal of any of them stops compiling across that change.
//! So no other module builds those structs: they are made here. Moving to another
//! object_store version means reading this file, not the crate.

use std::ops::Range;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    Attributes, GetResult, GetResultPayload, ListResult, ObjectMeta, PutResult, Result,
};

/// A `GetResult` whose payload is `stream`.
pub(crate) fn get_result(
    stream: BoxStream<'static, Result<Bytes>>,
    meta: ObjectMeta,
    range: Range<u64>,
) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(stream),
        meta,
        range,
        attributes: Attributes::default(),
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
