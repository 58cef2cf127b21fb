//! Catalog coverage of an OpenAPI spec.
