//! Tool bands: `read` ⊂ `prepare` ⊂ `sign` ⊂ `broadcast`. A band is a session scope
//! of the same name (a session scope grants its band and every band below), so the
//! type is `mandate_core::Scope` itself: one definition of the names and of their
//! inclusion for REST and MCP. A caller's band is only ever one of `Scope::BANDS`
//! (`Scope::top_band`, `Scope::parse_band_list`).

pub use mandate_core::{Scope as Band, ScopeError as BandError};
