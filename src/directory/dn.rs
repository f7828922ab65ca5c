//! Distinguished names read per RFC 4514, in one place: RDNs split on commas that are not
//! escaped (`CN=Pérez\, Ana,OU=…` is one RDN), multi-valued RDNs (`+`), escapes as `\,` or as
//! hex pairs (`\2C`, `\C3\A9`), spaces around names and values; compared ignoring case.

/// A DN that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("«{dn}» is not a distinguished name: {reason}")]
pub struct DnError {
    pub dn: String,
    pub reason: &'static str,
}

/// One `attribute=value` of an RDN, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ava {
    pub attribute: String,
    pub value: String,
}

/// The RDNs of a DN, from the entry up to the root; each has one or more values.
pub fn parse(dn: &str) -> Result<Vec<Vec<Ava>>, DnError> {
    let err = |reason| DnError { dn: dn.to_string(), reason };
    let mut rdns = Vec::new();
    if dn.trim().is_empty() {
        return Ok(rdns);
    }
    let mut rdn: Vec<Ava> = Vec::new();
    let mut attribute = String::new();
    let mut value: Vec<u8> = Vec::new();
    // Trailing spaces are dropped unless escaped: where the escaped ones end.
    let mut kept = 0;
    let mut in_value = false;
    let mut chars = dn.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '=' if !in_value => in_value = true,
            ',' | '+' | ';' if in_value => {
                value.truncate(kept.max(trim_end_len(&value)));
                let ava =
                    ava(&attribute, &value).ok_or_else(|| err("an attribute without a name or value"))?;
                rdn.push(ava);
                if c != '+' {
                    rdns.push(std::mem::take(&mut rdn));
                }
                (attribute, value, kept, in_value) = (String::new(), Vec::new(), 0, false);
            }
            ',' | '+' | ';' => return Err(err("a separator before «=»")),
            '\\' if in_value => {
                let Some(next) = chars.next() else { return Err(err("a «\\» at the end")) };
                match (next.to_digit(16), chars.peek().and_then(|c| c.to_digit(16))) {
                    (Some(hi), Some(lo)) => {
                        chars.next();
                        value.push((hi * 16 + lo) as u8);
                    }
                    _ => {
                        let mut buf = [0u8; 4];
                        value.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                    }
                }
                kept = value.len();
            }
            ' ' if in_value && value.is_empty() => {}
            c if in_value => {
                let mut buf = [0u8; 4];
                value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            c => attribute.push(c),
        }
    }
    if !in_value {
        return Err(err("an RDN without «=»"));
    }
    value.truncate(kept.max(trim_end_len(&value)));
    rdn.push(ava(&attribute, &value).ok_or_else(|| err("an attribute without a name or value"))?);
    rdns.push(rdn);
    Ok(rdns)
}

fn trim_end_len(value: &[u8]) -> usize {
    value.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1)
}

fn ava(attribute: &str, value: &[u8]) -> Option<Ava> {
    let attribute = attribute.trim();
    let value = String::from_utf8(value.to_vec()).ok()?;
    (!attribute.is_empty()).then(|| Ava { attribute: attribute.to_string(), value })
}

/// A DN in a form that compares: names and values lower-case, each RDN's values in order.
fn normal(dn: &str) -> Option<Vec<Vec<Ava>>> {
    let mut rdns = parse(dn).ok()?;
    for rdn in &mut rdns {
        for a in rdn.iter_mut() {
            a.attribute = a.attribute.to_lowercase();
            a.value = a.value.to_lowercase();
        }
        rdn.sort();
    }
    Some(rdns)
}

/// A key two DNs share when they name the same entry (see [`equal`]): for lookups by DN.
pub fn key(dn: &str) -> String {
    let Some(rdns) = normal(dn) else { return dn.to_lowercase() };
    let mut out = String::new();
    for rdn in rdns {
        for a in rdn {
            // Debug quotes and escapes: no value can pass for a separator.
            out.push_str(&format!("{:?}={:?}+", a.attribute, a.value));
        }
        out.push(',');
    }
    out
}

/// Whether two DNs name the same entry (`\,` and `\2C` alike, case and spacing ignored).
pub fn equal(a: &str, b: &str) -> bool {
    match (normal(a), normal(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Whether `dn` is `base` or below it.
pub fn within(dn: &str, base: &str) -> bool {
    match (normal(dn), normal(base)) {
        (Some(dn), Some(base)) => dn.len() >= base.len() && dn[dn.len() - base.len()..] == base[..],
        _ => false,
    }
}

/// Where the first RDN ends: the first comma (or semicolon) not escaped.
fn first_separator(dn: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | ';' => return Some(i),
            _ => {}
        }
    }
    None
}

/// The first RDN as written (`CN=Pérez\, Ana`).
pub fn first_rdn(dn: &str) -> &str {
    first_separator(dn).map_or(dn, |i| &dn[..i])
}

/// The parent's DN as written: what follows the first RDN.
pub fn parent(dn: &str) -> &str {
    first_separator(dn).map_or("", |i| dn[i + 1..].trim_start())
}

/// The first RDN's value, unescaped (`CN=Grupo\, X,OU=…` → `Grupo, X`).
pub fn first_value(dn: &str) -> String {
    parse(dn)
        .ok()
        .and_then(|rdns| rdns.into_iter().next())
        .and_then(|r| r.into_iter().next())
        .map_or_else(|| first_rdn(dn).split_once('=').map_or("", |(_, v)| v).to_string(), |a| a.value)
}

/// `text` with the value of every `CN=` in it replaced by `…`, for the log: an account's CN is
/// its holder's name as typed in the form, and the directory's error texts quote whole DNs.
/// The OUs and DCs stay, and say where; the account name is logged beside.
pub fn without_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = common_name_at(rest) {
        out.push_str(&rest[..at + 3]);
        out.push('…');
        rest = &rest[at + 3 + value_len(&rest[at + 3..])..];
    }
    out.push_str(rest);
    out
}

/// Where the next `CN=` starts (any case) that is not the end of a longer word.
fn common_name_at(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("cn=").map(|i| i + from) {
        if !lower[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            return Some(i);
        }
        from = i + 3;
    }
    None
}

/// The length of an RDN value as written: up to a separator that is not escaped, or a quote
/// or bracket around the DN; to the end of the text when nothing ends it. An apostrophe is a
/// name's (O'Neill, D' Angelo, D'-Costa, a name ending in one before `,OU=`) unless it closes
/// a quoted DN. A little too much hidden is better than part of a name logged.
fn value_len(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' if i > 0 && closes_a_quote(&text[i + 1..]) => return i,
            ',' | ';' | '+' | '»' | '"' | '>' | ')' | '\n' => return i,
            _ => {}
        }
    }
    text.len()
}

/// Whether an apostrophe followed by `after` closes a quoted DN: at the end of the text, or
/// before punctuation that no further RDN (`,OU=…`) or word of a name follows.
fn closes_a_quote(after: &str) -> bool {
    let mut rest = after.chars();
    match rest.next() {
        None => true,
        Some(',' | ';' | '+') => {
            let next = rest.as_str().trim_start();
            let attribute = next.split('=').next().unwrap_or_default();
            let another_rdn = next.contains('=')
                && !attribute.is_empty()
                && attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            !another_rdn
        }
        Some(':' | ')' | '>' | '"' | '\n') => true,
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ava(attribute: &str, value: &str) -> Ava {
        Ava { attribute: attribute.into(), value: value.into() }
    }

    /// The examples of RFC 4514, section 4, and the forms AD writes.
    #[test]
    fn the_rfc_examples_read_as_their_values() {
        let cases: [(&str, Vec<Vec<Ava>>); 8] = [
            (
                "UID=jsmith,DC=example,DC=net",
                vec![vec![ava("UID", "jsmith")], vec![ava("DC", "example")], vec![ava("DC", "net")]],
            ),
            (
                "OU=Sales+CN=J.  Smith,DC=example,DC=net",
                vec![
                    vec![ava("OU", "Sales"), ava("CN", "J.  Smith")],
                    vec![ava("DC", "example")],
                    vec![ava("DC", "net")],
                ],
            ),
            (
                "CN=James \\\"Jim\\\" Smith\\, III,DC=example,DC=net",
                vec![
                    vec![ava("CN", "James \"Jim\" Smith, III")],
                    vec![ava("DC", "example")],
                    vec![ava("DC", "net")],
                ],
            ),
            (
                "CN=Before\\0dAfter,DC=example,DC=net",
                vec![vec![ava("CN", "Before\rAfter")], vec![ava("DC", "example")], vec![ava("DC", "net")]],
            ),
            ("1.3.6.1.4.1.1466.0=#04024869", vec![vec![ava("1.3.6.1.4.1.1466.0", "#04024869")]]),
            ("CN=Lu\\C4\\8Di\\C4\\87", vec![vec![ava("CN", "Lučić")]]),
            (
                "CN=Pérez\\, Ana,OU=Energia, OU=Funcionarios",
                vec![
                    vec![ava("CN", "Pérez, Ana")],
                    vec![ava("OU", "Energia")],
                    vec![ava("OU", "Funcionarios")],
                ],
            ),
            (
                "CN=\\ lead\\#and trail\\ ,DC=x",
                vec![vec![ava("CN", " lead#and trail ")], vec![ava("DC", "x")]],
            ),
        ];
        for (dn, want) in cases {
            assert_eq!(parse(dn).unwrap(), want, "{dn}");
        }
        for bad in ["CN", "CN=a,b", "=x", "CN=a\\"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaped_commas_stay_in_their_rdn() {
        let dn = "CN=Pérez\\, Ana,OU=Energia,OU=Funcionarios,OU=Usuarios,DC=upme,DC=test";
        assert_eq!(first_rdn(dn), "CN=Pérez\\, Ana");
        assert_eq!(parent(dn), "OU=Energia,OU=Funcionarios,OU=Usuarios,DC=upme,DC=test");
        assert_eq!(first_value(dn), "Pérez, Ana");
        assert!(equal(dn, "cn=PÉREZ\\2C Ana, ou=Energia,ou=Funcionarios,ou=Usuarios,dc=upme,dc=test"));
        assert!(within(dn, "OU=Funcionarios, OU=Usuarios,DC=upme,DC=test"));
        assert!(!within(
            "CN=x\\,OU=Usuarios\\,DC=upme\\,DC=test,OU=Proveedores,DC=upme,DC=test",
            "OU=Usuarios,DC=upme,DC=test"
        ));
        assert!(!within("CN=a,OU=Domain Admins,DC=upme,DC=gov,DC=co", "OU=Usuarios,DC=upme,DC=gov,DC=co"));
    }

    #[test]
    fn names_are_taken_out_of_dns_in_any_text() {
        let text = "add «CN=Lidia Pérez\\, Ana,OU=NoExiste,OU=Funcionarios,DC=upme,DC=test»: 00002030: \
                    objectclass: Cannot add cn=Lidia Pérez\\2C Ana,OU=NoExiste,DC=upme,DC=test, parent does not exist";
        assert_eq!(
            without_names(text),
            "add «CN=…,OU=NoExiste,OU=Funcionarios,DC=upme,DC=test»: 00002030: \
             objectclass: Cannot add cn=…,OU=NoExiste,DC=upme,DC=test, parent does not exist"
        );
        assert_eq!(without_names("OU=Sales+CN=J. Smith,DC=x"), "OU=Sales+CN=…,DC=x");
        assert_eq!(without_names("no such object: CN=Ana Díaz"), "no such object: CN=…");
        assert_eq!(without_names("(member=CN=Ana Díaz,OU=x)"), "(member=CN=…,OU=x)");
        assert_eq!(
            without_names("attribute 'title' on entry 'CN=María O'Neill,OU=x': too long"),
            "attribute 'title' on entry 'CN=…,OU=x': too long"
        );
        assert_eq!(without_names("entry 'CN=María O'Neill'"), "entry 'CN=…'");
        // Apostrophes a name may hold before a space or a hyphen (found by fuzzing).
        assert_eq!(without_names("CN=Ana D' Angelo,OU=Usuarios,DC=x"), "CN=…,OU=Usuarios,DC=x");
        assert_eq!(without_names("CN=Łxkasz ł'-,DC=x"), "CN=…,DC=x");
        assert_eq!(without_names("CN=',OU=x"), "CN=…,OU=x");
        assert_eq!(without_names("CN=Ana',OU=x"), "CN=…,OU=x");
        assert_eq!(without_names("dn 'CN=Ana',"), "dn 'CN=…',");
        // Words that end in «cn» are not an attribute; text without a DN stays as it is.
        assert_eq!(without_names("dnscn=1, Bind as svc-cuentas"), "dnscn=1, Bind as svc-cuentas");
        assert_eq!(without_names("<GUID=00112233-4455>: 53"), "<GUID=00112233-4455>: 53");
    }
}
