//! cuentas: an entity's user-account procedure, from form responses to the directory and e-mail.
//!
//! The modules, in the order a response goes through them:
//! - [`source`]: where rows come from (the response spreadsheet, or a CSV export).
//! - [`intake`]: one row to a [`request::Submission`], every problem named (pure).
//! - [`request`]: the request, its states and the one transition that moves it (pure).
//! - [`outbox`]: the messages a request sends, and their delivery (pure; `request/outbox.rs`).
//! - [`store`]: the requests, durably (sled), each step's outcome before the next outside effect.
//! - [`policy`]: who may ask for what: the rules and the authorizer matrix (pure).
//! - [`calendar`]: business hours and Colombian holidays, for the SLA (pure).
//! - [`sla`]: a request's service level in business time, from its history (pure).
//! - [`wake`]: when an open request next needs the daemon, for the store's index of what is due (pure).
//! - [`report`]: the report of the work done over a period (pure).
//! - [`retention`]: personal data of old closed requests removed, their skeleton kept (pure).
//! - [`directory`]: plans against what AD holds (pure), carried out over LDAPS or in a dry run.
//! - [`notify`]: the Spanish messages and the transports that deliver them.
//! - [`hooks`]: the administrator's commands run around the directory (domain sync, mailboxes).
//! - [`https`]: the HTTPS client for Google's APIs and the mail providers' token endpoints.
//! - [`engine`]: one cycle: ingest, triage, execute, mail, each step one file.
//! - [`config`]: the one TOML file, validated and typed at load.
//! - [`check`]: `cuentas check`, every connection and right the configuration needs, a line each.
//! - [`cli`]: the administrator's commands on the store (pure over a store and an actor).
//! - [`desk`]: the service desk's form: its responses read into those commands, who may, the links (pure).
//! - [`control`]: the daemon's control socket, through which those commands reach it.
//! - [`logging`]: the log, without personal data at any level, its dependencies capped.
//! - [`app`]: wiring, the command line and the poll loop; the only place that reads the clock.

pub mod app;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod desk;
pub mod directory;
pub mod engine;
pub mod hooks;
pub mod https;
pub mod intake;
pub mod logging;
pub mod notify;
pub mod policy;
pub mod report;
pub mod request;
/// A request's messages (`request/outbox.rs`), by the path the rest of the crate uses.
pub use request::outbox;
pub mod retention;
pub mod sla;
pub mod source;
pub mod store;
pub mod wake;
