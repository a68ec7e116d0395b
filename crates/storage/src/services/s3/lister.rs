//! [`S3Lister`]: ListObjectsV2, one page per job.

use std::collections::HashSet;
use std::sync::Arc;

use super::core::{Core, iso_date};
use super::xml::ListBucketResult;
use crate::raw::{IoJob, ListArgs, RawList};
use crate::{Entry, Error, ErrorKind, Metadata, Result};

/// Lists directory `dir` (a path ending in `/`, or the root). One level uses the
/// `/` delimiter, so subdirectories come back as common prefixes; a recursive
/// listing gets every key and adds the directories between `dir` and each key, as
/// fs lists them. The directory's own marker object is not listed. With
/// `start_after`, the listing starts there (`start-after`).
#[derive(Debug)]
pub(crate) struct S3Lister {
    core: Arc<Core>,
    dir: String,
    args: ListArgs,
    token: Option<String>,
    /// Every continuation token given so far (hashed: a listing of 100 million
    /// keys takes 100,000 tokens): one given again would list for ever.
    tokens: HashSet<u64>,
    started: bool,
    /// Whether any page so far had a key or a prefix on it.
    found: bool,
    done: bool,
    seen_dirs: HashSet<String>,
}

impl S3Lister {
    pub(crate) fn new(core: Arc<Core>, dir: &str, args: ListArgs) -> Self {
        Self {
            core,
            dir: dir.to_owned(),
            args,
            token: None,
            tokens: HashSet::new(),
            started: false,
            found: false,
            done: false,
            seen_dirs: HashSet::new(),
        }
    }

    async fn page(&mut self) -> Result<Vec<Entry>> {
        let prefix = self.core.key(&self.dir);
        while !self.done {
            // The start applies to the first request; the token carries it on. On a
            // server that does not follow S3's order the listing starts at the
            // beginning, and `wants` leaves out what comes before the offset.
            let start_after = match (&self.args.start_after, self.started) {
                (Some(after), false) if self.core.lists_in_key_order() => {
                    Some(self.core.key(after))
                }
                _ => None,
            };
            let page = self
                .core
                .list_page_after(
                    &prefix,
                    !self.args.recursive,
                    self.token.as_deref(),
                    start_after.as_deref(),
                    1000,
                )
                .await?;
            self.started = true;
            // A truncated page must say where the rest starts, and somewhere new:
            // anything else would end the listing early, or ask for the same page
            // forever.
            self.token = next_token(&page, &mut self.tokens)?;
            self.done = self.token.is_none();
            self.found |= !(page.contents.is_empty() && page.common_prefixes.is_empty());
            // Pages with nothing that say more follow are not "nothing": the check
            // comes with the last page, when none had anything.
            if !self.found
                && self.done
                && !self.dir.is_empty()
                && !self.has_entries(&prefix).await?
            {
                // Nothing below: a missing directory lists as empty, a file is not a
                // directory.
                let file = self.core.key(self.dir.trim_end_matches('/'));
                if self.core.head(&file).await?.is_some() {
                    return Err(Error::new(ErrorKind::NotADirectory));
                }
            }
            let mut entries = self.entries(page);
            entries.retain(|e| self.args.wants(e.path()));
            if !entries.is_empty() {
                return Ok(entries);
            }
        }
        Ok(Vec::new())
    }

    /// Whether anything is below `prefix`, when every page came back empty: not
    /// without a start, which found nothing; with one, everything may come before
    /// it, so one key is asked for from the beginning (S3 lets an object `f` and
    /// objects below `f/` be, and `f/` is then a directory).
    async fn has_entries(&self, prefix: &str) -> Result<bool> {
        if self.args.start_after.is_none() {
            return Ok(false);
        }
        self.core
            .any_listed(prefix, true, 1, |page| {
                !(page.contents.is_empty() && page.common_prefixes.is_empty())
            })
            .await
    }

    fn entries(&mut self, page: ListBucketResult) -> Vec<Entry> {
        let mut out = Vec::with_capacity(page.contents.len() + page.common_prefixes.len());
        for prefix in page.common_prefixes {
            if let Some(path) = self.core.path_of(&prefix.prefix).filter(|p| readable(p))
                && path != self.dir
                && self.seen_dirs.insert(path.to_owned())
            {
                out.push(Entry::new(path, Metadata::dir()));
            }
        }
        for object in page.contents {
            let Some(path) = self.core.path_of(&object.key) else {
                continue;
            };
            if !readable(path) {
                tracing::warn!(
                    key = %object.key,
                    "leaving out a key with an empty, '.' or '..' segment: no path names it"
                );
                continue;
            }
            if self.args.recursive {
                self.add_ancestors(path, &mut out);
            }
            if path == self.dir || path.is_empty() {
                continue;
            }
            if path.ends_with('/') {
                if self.seen_dirs.insert(path.to_owned()) {
                    out.push(Entry::new(path, Metadata::dir()));
                }
                continue;
            }
            let mut meta = Metadata::file(object.size);
            if let Some(time) = object.last_modified.as_deref().and_then(iso_date) {
                meta = meta.with_last_modified(time);
            }
            if let Some(etag) = object.etag {
                meta = meta.with_etag(etag);
            }
            out.push(Entry::new(path, meta));
        }
        out
    }

    /// The directories between the listed one and `path`, each once.
    fn add_ancestors(&mut self, path: &str, out: &mut Vec<Entry>) {
        let Some(below) = path.strip_prefix(self.dir.as_str()) else {
            return;
        };
        let start = self.dir.len();
        for (i, _) in below.match_indices('/') {
            let dir = &path[..start + i + 1];
            if dir != path && self.seen_dirs.insert(dir.to_owned()) {
                out.push(Entry::new(dir, Metadata::dir()));
            }
        }
    }
}

/// `true` if `path` names its key: keys written by other tools with an empty, `.`
/// or `..` segment (`a//b`, `/c`, `./d`, `e/../f`) normalize to another path, which
/// would read a different key (or none), so listings leave them out.
fn readable(path: &str) -> bool {
    crate::raw::normalize_path(path).is_ok_and(|normal| normal == path)
}

impl RawList for S3Lister {
    fn next_page(mut self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)> {
        IoJob::future(async move {
            let entries = self.page().await?;
            Ok((self as Box<dyn RawList>, entries))
        })
    }
}

/// Where a listing goes on after `page`: its continuation token, if it is marked
/// truncated. A truncated page must say where the rest starts, and somewhere new
/// (not in `tokens`, the hashes of those given so far, which it joins): anything
/// else would end the listing early, or ask for the same pages for ever.
pub(crate) fn next_token(
    page: &ListBucketResult,
    tokens: &mut HashSet<u64>,
) -> Result<Option<String>> {
    if !page.is_truncated {
        return Ok(None);
    }
    match &page.next_continuation_token {
        None => Err(broken_listing("no continuation token")),
        Some(next) if !tokens.insert(token_hash(next)) => {
            Err(broken_listing("a continuation token it gave before"))
        }
        Some(next) => Ok(Some(next.clone())),
    }
}

/// A listing page that cannot be followed: an error, never the end of the listing.
fn broken_listing(what: &str) -> Error {
    Error::new(ErrorKind::Unexpected).with_message(format!(
        "the server marked a listing page truncated, with {what}"
    ))
}

/// A continuation token's hash, for [`S3Lister::tokens`].
fn token_hash(token: &str) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(token)
}
