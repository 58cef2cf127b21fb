//! The generated permissions page.
