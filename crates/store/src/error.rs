//! What can go wrong in storage, in words the handlers can act on.

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("unsupported database URL scheme {0:?}; expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}
