//! The built-in durable engine: runs workflows described in definition files, on the
//! same SQLite database as the read model.

pub mod definition;
