//! Local storage locations (`LOCAL_STORAGE_PATHS`), confined to their roots.
//!
//! (Being implemented; see issue 4.)
