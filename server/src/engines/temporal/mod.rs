//! The Temporal adapter. For now, the mapping of workflow histories (the HTTP API's
//! JSON) onto source events; following a live server comes next.

pub mod history;
