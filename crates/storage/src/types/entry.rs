//! [`Entry`]: one item of a listing.

use crate::Metadata;

/// One item of a listing: a path relative to the root (directories end with `/`)
/// and what the listing learned about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    path: String,
    metadata: Metadata,
}

impl Entry {
    /// A new entry.
    pub fn new(path: impl Into<String>, metadata: Metadata) -> Self {
        Self {
            path: path.into(),
            metadata,
        }
    }

    /// The path relative to the root; directories end with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The last path component (with its trailing `/` for a directory).
    pub fn name(&self) -> &str {
        let trimmed = self.path.strip_suffix('/').unwrap_or(&self.path);
        let start = trimmed.rfind('/').map_or(0, |i| i + 1);
        &self.path[start..]
    }

    /// What the listing learned about the entry.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Splits the entry into its path and metadata.
    pub fn into_parts(self) -> (String, Metadata) {
        (self.path, self.metadata)
    }
}
