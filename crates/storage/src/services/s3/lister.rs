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
    /// The directories the last entry listed is in (each below the one before),
    /// those listed already: a directory is listed once, when the first entry in
    /// it comes. Servers list the keys below a prefix together (S3 in key order,
    /// others a directory at a time), so a directory left is not met again, and
    /// this holds one path's ancestors, however many directories the listing
    /// has (a set of every directory listed grew with them: millions of strings
    /// for a table of that many partitions).
    open_dirs: Vec<String>,
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
            open_dirs: Vec::new(),
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
            {
                self.enter(path);
                if self.first_time(path) {
                    out.push(Entry::new(path, Metadata::dir()));
                }
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
                self.enter(path);
                if self.first_time(path) {
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
        self.enter(path);
        let start = self.dir.len();
        for (i, _) in below.match_indices('/') {
            let dir = &path[..start + i + 1];
            if dir != path && self.first_time(dir) {
                out.push(Entry::new(dir, Metadata::dir()));
            }
        }
    }

    /// Leaves the directories `path` is not in (see [`open_dirs`]), before its
    /// directories are looked at with [`first_time`](Self::first_time), which
    /// asks for `path`'s own and its ancestors, from the top down, so that
    /// `open_dirs` stays one path's ancestors. In a listing of one level, files
    /// are not entered: no directory is below one, and a common prefix a server
    /// repeats at the top of the next page is still known then.
    ///
    /// [`open_dirs`]: Self::open_dirs
    fn enter(&mut self, path: &str) {
        self.open_dirs
            .retain(|open| path.starts_with(open.as_str()));
    }

    /// `true` the first time directory `dir` comes, an ancestor of the path
    /// last [entered](Self::enter) or that path: it is then open.
    fn first_time(&mut self, dir: &str) -> bool {
        if self.open_dirs.iter().any(|open| open == dir) {
            return false;
        }
        self.open_dirs.push(dir.to_owned());
        true
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
