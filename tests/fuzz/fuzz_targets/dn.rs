//! Distinguished names as the directory, a configuration or an error text may hold them, and
//! values (a holder's name) escaped into one.
//!
//! Input: up to two strings separated by 0x1F, read as UTF-8 lossily: `a` and `b`.
//!
//! Properties: nothing panics; `equal` is reflexive and symmetric; a DN that parses is within
//! itself, within its parent and within the root, and splits into `first_rdn` and `parent` as
//! `parse` splits it; `without_names` changes no text without a `CN=` and is idempotent; a
//! value escaped with `dn_escape` into a DN parses back to the same value, and a name the form
//! accepts is wholly taken out of that DN by `without_names`.
#![no_main]

use cuentas::directory::dn::{self, Ava};
use cuentas::directory::plan::dn_escape;
use libfuzzer_sys::fuzz_target;

const OU: &str = "OU=Usuarios,DC=upme,DC=gov,DC=co";

/// A name the form keeps (src/intake: Latin letters and " '-."), as `clean` leaves it.
fn is_form_name(v: &str) -> bool {
    let latin = |c: char| {
        c.is_ascii_alphabetic()
            || (c.is_alphabetic() && matches!(u32::from(c), 0x00C0..=0x024F | 0x1E00..=0x1EFF))
    };
    !v.is_empty() && v.trim() == v && !v.contains("  ") && v.chars().all(|c| latin(c) || " '-.".contains(c))
}

fn ava(attribute: &str, value: &str) -> Ava {
    Ava { attribute: attribute.into(), value: value.into() }
}

fn one(a: &str) {
    let parsed = dn::parse(a);
    assert!(dn::equal(a, a), "not equal to itself: {a:?}");
    let first = dn::first_rdn(a);
    let parent = dn::parent(a);
    assert!(a.starts_with(first));
    assert!(a.ends_with(parent));
    let value = dn::first_value(a);
    if let Ok(rdns) = &parsed {
        for rdn in rdns {
            assert!(!rdn.is_empty());
            for x in rdn {
                assert!(!x.attribute.is_empty() && x.attribute.trim() == x.attribute, "{x:?}");
            }
        }
        assert!(dn::within(a, a), "not within itself: {a:?}");
        assert!(dn::within(a, ""), "not within the root: {a:?}");
        if let Some(head) = rdns.first() {
            assert_eq!(value, head[0].value, "first_value of {a:?}");
            assert_eq!(dn::parse(first).as_ref().ok(), Some(&rdns[..1].to_vec()), "first_rdn of {a:?}");
            assert_eq!(dn::parse(parent).as_ref().ok(), Some(&rdns[1..].to_vec()), "parent of {a:?}");
            assert!(dn::within(a, parent), "not within its parent: {a:?}");
        }
    }
    let hidden = dn::without_names(a);
    if !a.to_ascii_lowercase().contains("cn=") {
        assert_eq!(hidden, a);
    }
    assert_eq!(dn::without_names(&hidden), hidden, "without_names twice differs: {a:?}");
}

fn escaped(v: &str) {
    let escaped = dn_escape(v);
    let dn = format!("CN={escaped},{OU}");
    let want = vec![
        vec![ava("CN", v)],
        vec![ava("OU", "Usuarios")],
        vec![ava("DC", "upme")],
        vec![ava("DC", "gov")],
        vec![ava("DC", "co")],
    ];
    assert_eq!(dn::parse(&dn).ok(), Some(want), "dn_escape({v:?}) = {escaped:?}");
    assert_eq!(dn::first_value(&dn), v);
    assert_eq!(dn::parent(&dn), OU);
    assert!(dn::within(&dn, OU));
    assert!(dn::equal(&dn, &dn.to_ascii_lowercase()), "case: {dn:?}");
    if is_form_name(v) {
        assert_eq!(dn::without_names(&dn), format!("CN=…,{OU}"), "a name left in the log: {v:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\u{1F}').unwrap_or((&text, ""));
    one(a);
    one(b);
    assert_eq!(dn::equal(a, b), dn::equal(b, a));
    let _ = dn::within(a, b);
    escaped(a);
});
