//! The directory: pure plans from requests, and appliers that carry them out (today the dry
//! run, which records what it would do).

pub mod dryrun;
pub mod naming;
pub mod password;
pub mod plan;
pub mod snapshot;
