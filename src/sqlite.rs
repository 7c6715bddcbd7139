//! TEMPORARY: SQLite manager placeholder.
