//! Privilege known by security identifier (pure): AD's administrative groups and accounts have
//! fixed SIDs whatever the DC's language calls them («Admins. del dominio» on a Spanish DC is
//! still `…-512`), and an account's `tokenGroups` holds the SID of every group it is in,
//! nested memberships and its primary group (`primaryGroupID`) included. Names alone miss both.
//! (`acl::sid_string` reads the binary form.)

/// Relative identifiers, under a domain's SID (`S-1-5-21-a-b-c-RID`), of the accounts and
/// groups AD protects (AdminSDHolder) or that administer the domain, in any domain of the
/// forest, with their English names (for messages only).
const DOMAIN_RIDS: [(u32, &str); 11] = [
    (498, "Enterprise Read-only Domain Controllers"),
    (500, "Administrator"),
    (502, "krbtgt"),
    (512, "Domain Admins"),
    (516, "Domain Controllers"),
    (518, "Schema Admins"),
    (519, "Enterprise Admins"),
    (520, "Group Policy Creator Owners"),
    (521, "Read-only Domain Controllers"),
    (526, "Key Admins"),
    (527, "Enterprise Key Admins"),
];

/// The built-in domain's groups (`S-1-5-32-RID`) that administer DCs.
const BUILTIN_RIDS: [(u32, &str); 6] = [
    (544, "Administrators"),
    (548, "Account Operators"),
    (549, "Server Operators"),
    (550, "Print Operators"),
    (551, "Backup Operators"),
    (552, "Replicator"),
];

/// The English name of one of AD's administrative accounts or groups, if `sid` (string form,
/// `S-1-5-…`) is one; `None` for any other SID.
pub fn administrative(sid: &str) -> Option<&'static str> {
    let rest = sid.strip_prefix("S-1-5-")?;
    let parts: Vec<&str> = rest.split('-').collect();
    let rid = parts.last()?.parse::<u32>().ok()?;
    let table: &[(u32, &str)] = match (parts.first(), parts.len()) {
        (Some(&"32"), 2) => &BUILTIN_RIDS,
        // A domain SID has three sub-authorities after 21, then the RID.
        (Some(&"21"), 5) => &DOMAIN_RIDS,
        _ => return None,
    };
    table.iter().find(|(r, _)| *r == rid).map(|(_, name)| *name)
}

/// Whether `sid` is one of AD's administrative accounts or groups.
pub fn is_privileged(sid: &str) -> bool {
    administrative(sid).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrative_sids_are_known_in_any_language_and_domain() {
        assert_eq!(administrative("S-1-5-21-7-8-9-512"), Some("Domain Admins"));
        assert_eq!(administrative("S-1-5-32-551"), Some("Backup Operators"));
        for sid in [
            "S-1-5-21-1928645081-1101637045-751993248-512",
            "S-1-5-21-1-2-3-519",
            "S-1-5-21-1-2-3-500",
            "S-1-5-21-1-2-3-520",
            "S-1-5-32-544",
            "S-1-5-32-551",
        ] {
            assert!(is_privileged(sid), "{sid}");
            assert!(administrative(sid).is_some(), "{sid}");
        }
        for sid in [
            // Domain Users, Domain Guests, an ordinary group, Users, Authenticated Users.
            "S-1-5-21-1-2-3-513",
            "S-1-5-21-1-2-3-514",
            "S-1-5-21-1-2-3-1105",
            "S-1-5-32-545",
            "S-1-5-11",
            "S-1-5-21-1-2-512",
            "S-1-5-32-544-1",
            "",
        ] {
            assert!(!is_privileged(sid), "{sid}");
        }
    }
}
