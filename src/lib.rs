//! cuentas: an entity's user-account procedure, from form responses to the directory and e-mail.
//!
//! The modules follow the data flow: `source` → `intake` → `store` ⇄ `engine` → `directory`,
//! `notify`. `app` wires them and is the only place that reads the clock.

pub mod app;
pub mod calendar;
pub mod config;
pub mod directory;
pub mod engine;
pub mod intake;
pub mod notify;
pub mod policy;
pub mod request;
pub mod source;
pub mod store;
