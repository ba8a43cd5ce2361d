//! Typed route parameters.
//!
//! Each [`RouteId`](super::RouteId) names the parameter type its handler receives
//! (one variant of [`Params`](super::Params)), and the router fills it from the
//! matched pattern, percent-decoding each value once. Handlers read struct fields,
//! so a misspelt parameter, or one the route does not have, is a compile error.
//! Each row of [`ROUTES`](super::ROUTES) is checked at compile time against its
//! id's parameter type ([`pattern_fits`](super::pattern_fits)): a pattern that lacks
//! a required parameter, or names one the type does not read, does not build.

/// A parameter that is not valid UTF-8 after percent-decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEncoding;

/// Looks up one parameter of the matched pattern by name, percent-decoded
/// (`Ok(None)` when the pattern has no such parameter).
pub type Lookup<'a> = dyn FnMut(&'static str) -> Result<Option<String>, BadEncoding> + 'a;

/// The parameters of one route shape, filled from a matched pattern.
pub trait RouteParams: Sized {
    /// Names the pattern must contain.
    const REQUIRED: &'static [&'static str];
    /// Names the pattern may contain (absent on some of the id's rows).
    const OPTIONAL: &'static [&'static str];

    /// Reads the parameters from a match.
    ///
    /// # Errors
    /// [`BadEncoding`] when a value is not UTF-8 after percent-decoding.
    #[doc(hidden)]
    fn decode(lookup: &mut Lookup<'_>) -> Result<Self, BadEncoding>;

    /// Every parameter as `(name, value)`, in declaration order (`None` for an
    /// optional parameter the matched row does not have).
    fn fields(&self) -> Vec<(&'static str, Option<&str>)>;
}

/// Declares a parameter struct: required names, then `;` and optional names.
/// Field names are the pattern's parameter names (`{key}`, `{*path}` → `path`).
macro_rules! params {
    ($(#[$doc:meta])* $name:ident { $($req:ident),* $(; $($opt:ident),*)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(
                #[doc = concat!("`{", stringify!($req), "}`, percent-decoded.")]
                pub $req: String,
            )*
            $($(
                #[doc = concat!("`{", stringify!($opt), "}`, percent-decoded; `None` on the rows without it.")]
                pub $opt: Option<String>,
            )*)?
        }

        impl RouteParams for $name {
            const REQUIRED: &'static [&'static str] = &[$(stringify!($req)),*];
            const OPTIONAL: &'static [&'static str] = &[$($(stringify!($opt)),*)?];

            fn decode(lookup: &mut Lookup<'_>) -> Result<Self, BadEncoding> {
                Ok($name {
                    // `pattern_fits` proved at compile time that every row of this
                    // shape has the required names, so `None` cannot occur here.
                    $( $req: lookup(stringify!($req))?.unwrap_or_default(), )*
                    $($( $opt: lookup(stringify!($opt))?, )*)?
                })
            }

            fn fields(&self) -> Vec<(&'static str, Option<&str>)> {
                vec![
                    $( (stringify!($req), Some(self.$req.as_str())), )*
                    $($( (stringify!($opt), self.$opt.as_deref()), )*)?
                ]
            }
        }
    };
}

params!(
    /// `{bucket}`: bucket deletion, notification configuration.
    BucketParams { bucket }
);
params!(
    /// `{bucket}` and `{key}` (base64 of the key): one object.
    ObjectParams { bucket, key }
);
params!(
    /// `{bucket}` and, on the second row, `{prefix}` (base64): a listing.
    ListParams { bucket; prefix }
);
params!(
    /// `{resource}`: the resource an SSE stream follows (and its ticket names).
    ResourceParams { resource }
);
params!(
    /// `{key}` (base64): an upload to abort.
    KeyParams { key }
);
params!(
    /// `{location}` and the `{*path}` tail (base64), absent at the location root.
    LocationParams { location; path }
);
params!(
    /// `{job}`: a transfer job id.
    JobParams { job }
);
params!(
    /// `{bucket}` and `{id}`: one notification configuration.
    NotificationParams { bucket, id }
);

/// Whether `path` holds the parameter `{name}` or `{*name}`.
const fn has_param(path: &[u8], name: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'{' {
            let mut j = i + 1;
            if j < path.len() && path[j] == b'*' {
                j += 1;
            }
            let mut k = 0;
            while k < name.len() && j + k < path.len() && path[j + k] == name[k] {
                k += 1;
            }
            if k == name.len() && j + k < path.len() && path[j + k] == b'}' {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// How many parameters `path` holds.
const fn count_params(path: &[u8]) -> usize {
    let mut i = 0;
    let mut n = 0;
    while i < path.len() {
        if path[i] == b'{' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Whether the pattern `path` has every `required` name and no name outside
/// `required` and `optional`.
pub(super) const fn names_fit(
    path: &str,
    required: &[&str],
    optional: &[&str],
    ticket: bool,
) -> bool {
    let path = path.as_bytes();
    let mut found = 0;
    let mut has_resource = false;
    let mut i = 0;
    while i < required.len() {
        let name = required[i].as_bytes();
        if !has_param(path, name) {
            return false;
        }
        if is(name, b"resource") {
            has_resource = true;
        }
        found += 1;
        i += 1;
    }
    let mut i = 0;
    while i < optional.len() {
        if has_param(path, optional[i].as_bytes()) {
            found += 1;
        }
        i += 1;
    }
    found == count_params(path) && (!ticket || has_resource)
}

const fn is(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_checks_both_ways() {
        assert!(names_fit(
            "/objects/{bucket}/{key}",
            &["bucket", "key"],
            &[],
            false
        ));
        assert!(names_fit(
            "/local/files/{location}/{*path}",
            &["location"],
            &["path"],
            false
        ));
        assert!(names_fit(
            "/local/files/{location}",
            &["location"],
            &["path"],
            false
        ));
        // A required name the pattern lacks.
        assert!(!names_fit(
            "/buckets/{bucket}",
            &["bucket", "key"],
            &[],
            false
        ));
        // A pattern name the type does not read.
        assert!(!names_fit(
            "/objects/{bucket}/{key}",
            &["bucket"],
            &[],
            false
        ));
        // A prefix of a name is not the name.
        assert!(!names_fit("/objects/{bucketName}", &["bucket"], &[], false));
        // A ticket route must name its resource.
        assert!(!names_fit("/transfer/{job}", &["job"], &[], true));
        assert!(names_fit(
            "/transfer/progress/{resource}",
            &["resource"],
            &[],
            true
        ));
    }
}
