//! The ids of what refreshd keeps, each its own type, so an app's id cannot be passed where a
//! user's is meant.

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        /// Serialized as the bare number, as GitHub's objects carry it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An app's (OAuth client's) id: GitHub's `app.id`.
    AppId
);
id!(
    /// A provider user's id: GitHub's `user.id`.
    UserId
);
id!(
    /// A token family's id: every pair descending from one authorization.
    FamilyId
);
