//! The configuration file (`cuentas.toml`), as an administrator may write it.
//!
//! Input: the file's text (UTF-8; other bytes are skipped), read as if it were the demo's
//! `fixtures/demo/cuentas.toml`, so that its relative paths name the demo's files and a valid
//! configuration goes all the way through validation.
//!
//! Properties: `Config::parse` never panics, and its errors print; of a configuration it
//! accepts, what the daemon computes from it at once never panics either: each kind's deadline
//! from a business-hours calendar, account names from the naming patterns, the rules for every
//! kind and holder, and a message from its addresses.
#![no_main]

use std::path::Path;

use cuentas::config::{Config, ConfigError};
use cuentas::directory::naming;
use cuentas::notify::Rendered;
use cuentas::notify::file::Envelope;
use cuentas::request::{HolderType, Kind};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo/cuentas.toml");

fn use_config(config: &Config) {
    // The demo's clock: Monday 30 November 2026, 10:00 in Bogotá.
    let now = Timestamp::from_second(1_796_050_800).expect("an instant");
    let calendar = &config.calendar;
    let deadline = |business: SignedDuration| {
        let deadline = calendar.add_business_hours(now, business);
        assert!(deadline >= now);
    };
    for kind in Kind::ALL.into_iter().map(Some).chain([None]) {
        deadline(SignedDuration::from_hours(i64::from(config.sla.hours_for(kind))));
        for holder in [HolderType::Employee, HolderType::Contractor, HolderType::Institutional] {
            if let Some(kind) = kind {
                let _ = (config.rules.applies(kind, holder), config.rules.grants(kind, holder));
            }
        }
    }
    // A request waiting on its requester: reminded, then cancelled, after so many working days.
    let day = config.time.business_day_start.duration_until(config.time.business_day_end);
    for days in [config.sla.needs_info_reminder_business_days, config.sla.needs_info_expiry_business_days] {
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        deadline(day.checked_mul(days).unwrap_or(SignedDuration::MAX));
    }
    let later = calendar.add_business_hours(now, SignedDuration::from_hours(300));
    let _ = calendar.business_hours_between(now, later);
    let _ = calendar.start_of_business_day_on_or_after(jiff::civil::date(2026, 12, 24));
    let _ = naming::candidates(&config.naming, "María José", "De La Hoz Peñaloza", 5);
    let _ = naming::choose(&config.naming, "Ana", "Díaz", |c| c.len() < 4);
    let envelope = Envelope::new(&config.mailboxes, false);
    let rendered = Rendered { subject: "Prueba".into(), body: "Cuerpo".into() };
    let to = config.mailboxes.service_desk.to_string();
    if let Ok(message) = envelope.message("GU-2026-000001.0.acuse", &[to], &rendered) {
        let _ = message.formatted();
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new(PATH)) {
        Ok(config) => use_config(&config),
        Err(e) => {
            let message = e.to_string();
            if let ConfigError::Invalid { problems, .. } = &e {
                assert!(!problems.is_empty(), "invalid without a problem: {message}");
            }
        }
    }
});
