//! A file of an image's build context: what the image plan ([`crate::image`]) and the lock layer
//! ([`crate::lock`]) both produce. It lives apart from both so that neither module needs the
//! other for it (`image` uses `lock`, never the reverse).

/// A file of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the build context.
    pub name: String,
    pub bytes: Vec<u8>,
}
