//! What the bind account may do, worked out from the directory's own security descriptors:
//! the delegation cuentas needs (`deploy/ad-delegation.txt`, compiled in), a parser for the
//! binary `nTSecurityDescriptor` AD returns, and the access check AD would make for an account
//! created in an OU. Pure: `directory::ldap::rights` reads the descriptors, the schema and the
//! account's groups; `check` reports.
//!
//! AD computes some of this itself (`allowedChildClassesEffective`, `allowedAttributesEffective`),
//! but only for objects that exist: an empty OU has no account to ask about, and extended rights
//! (reset password) are in neither. So the check reads the OU's DACL, whose inheritable entries
//! are what every account created there will carry.

use std::collections::HashSet;

/// The delegation the install guides document, one right per line.
pub const DELEGATION: &str = include_str!("../../deploy/ad-delegation.txt");

/// Where a delegated right applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On each managed OU (and the OUs below it).
    Ou,
    /// On the user accounts below each managed OU.
    User,
    /// On each group of `allowed_groups`.
    Group,
}

/// A right AD grants: its bit in an access mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    CreateChild,
    DeleteChild,
    WriteProperty,
    ExtendedRight,
}

impl Right {
    fn mask(self) -> u32 {
        match self {
            Right::CreateChild => 0x1,
            Right::DeleteChild => 0x2,
            Right::WriteProperty => 0x20,
            Right::ExtendedRight => 0x100,
        }
    }
}

/// One line of the delegation: `user WP title`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    pub right: Right,
    /// A class (`user`), an attribute (`title`) or an extended right's name.
    pub what: String,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match self.scope {
            Scope::Ou => "ou",
            Scope::User => "user",
            Scope::Group => "group",
        };
        let right = match self.right {
            Right::CreateChild => "CC",
            Right::DeleteChild => "DC",
            Right::WriteProperty => "WP",
            Right::ExtendedRight => "CR",
        };
        write!(f, "{scope} {right} {}", self.what)
    }
}

impl Grant {
    /// What the right lets cuentas do, for the line that says it is missing.
    pub fn describe(&self) -> String {
        match self.right {
            Right::CreateChild => format!("create {} objects", self.what),
            Right::DeleteChild => format!("delete (or move out) {} objects", self.what),
            Right::WriteProperty => format!("write «{}»", self.what),
            Right::ExtendedRight => format!("use the extended right «{}»", self.what),
        }
    }
}

/// The delegation: the compiled-in lines, and the personal e-mail's attribute when one is set.
pub fn delegation(personal_email_attribute: Option<&str>) -> Vec<Grant> {
    let mut grants: Vec<Grant> = DELEGATION.lines().filter_map(parse_line).collect();
    if let Some(attribute) = personal_email_attribute {
        grants.push(Grant { scope: Scope::User, right: Right::WriteProperty, what: attribute.to_string() });
    }
    grants
}

fn parse_line(line: &str) -> Option<Grant> {
    let mut words = line.split_whitespace();
    let scope = match words.next()? {
        "ou" => Scope::Ou,
        "user" => Scope::User,
        "group" => Scope::Group,
        _ => return None,
    };
    let right = match words.next()? {
        "CC" => Right::CreateChild,
        "DC" => Right::DeleteChild,
        "WP" => Right::WriteProperty,
        "CR" => Right::ExtendedRight,
        _ => return None,
    };
    Some(Grant { scope, right, what: words.next()?.to_string() })
}

/// A GUID in AD's binary order (the first three fields little-endian).
pub type Guid = [u8; 16];

/// An access control entry, as far as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    pub flags: u8,
    pub mask: u32,
    pub object_type: Option<Guid>,
    pub inherited_object_type: Option<Guid>,
    /// The trustee, as `S-1-5-21-…`.
    pub sid: String,
}

const CONTAINER_INHERIT: u8 = 0x02;
const INHERIT_ONLY: u8 = 0x08;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
/// DELETE on the object itself: moving or deleting an account it covers needs no delete-child.
pub const DELETE: u32 = 0x1_0000;

/// The DACL of a self-relative security descriptor (what `nTSecurityDescriptor` holds).
pub fn parse_dacl(sd: &[u8]) -> Result<Vec<Ace>, String> {
    let bad = |what: &str| format!("security descriptor: {what}");
    let offset = u32_at(sd, 16).ok_or_else(|| bad("too short"))? as usize;
    if offset == 0 {
        return Ok(Vec::new());
    }
    let count = u16_at(sd, offset + 4).ok_or_else(|| bad("DACL header out of range"))?;
    let mut at = offset + 8;
    let mut aces = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let head = sd.get(at..at + 2).ok_or_else(|| bad("ACE out of range"))?;
        let (kind, flags) = (head[0], head[1]);
        let size = u16_at(sd, at + 2).ok_or_else(|| bad("ACE out of range"))? as usize;
        let body = sd.get(at + 4..at + size).ok_or_else(|| bad("ACE larger than the descriptor"))?;
        if let Some(ace) = parse_ace(kind, flags, body) {
            aces.push(ace);
        }
        at += size.max(4);
    }
    Ok(aces)
}

/// Allow and deny entries, plain (0, 1) or object (5, 6); audit and callback kinds are skipped.
fn parse_ace(kind: u8, flags: u8, body: &[u8]) -> Option<Ace> {
    let allow = match kind {
        0 | 5 => true,
        1 | 6 => false,
        _ => return None,
    };
    let mask = u32_at(body, 0)?;
    let (mut object_type, mut inherited_object_type, mut at) = (None, None, 4);
    if kind >= 5 {
        let present = u32_at(body, 4)?;
        at = 8;
        if present & 1 != 0 {
            object_type = Some(body.get(at..at + 16)?.try_into().ok()?);
            at += 16;
        }
        if present & 2 != 0 {
            inherited_object_type = Some(body.get(at..at + 16)?.try_into().ok()?);
            at += 16;
        }
    }
    Some(Ace { allow, flags, mask, object_type, inherited_object_type, sid: sid_string(body.get(at..)?)? })
}

/// A binary SID as `S-1-5-21-…`.
pub fn sid_string(b: &[u8]) -> Option<String> {
    let count = *b.get(1)? as usize;
    let authority = b.get(2..8)?.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut sid = format!("S-{}-{authority}", b.first()?);
    for i in 0..count {
        sid.push_str(&format!("-{}", u32_at(b, 8 + 4 * i)?));
    }
    Some(sid)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// What a right is asked about: the OU itself, or an account of class `class` created in it.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Ou,
    Child { class: &'a Guid },
}

/// Whether `token` (the account's SID and its groups') holds `mask` over an object type in
/// `objects` (any of them: an attribute's own GUID or its property set's) on `target`, as AD's
/// access check decides: the entries in order, the first deny or allow that matches wins.
pub fn allowed(
    aces: &[Ace],
    token: &HashSet<String>,
    target: Target<'_>,
    mask: u32,
    objects: &[Guid],
) -> bool {
    for ace in aces.iter().filter(|a| applies(a, target) && token.contains(&a.sid)) {
        let mut granted = ace.mask;
        if granted & GENERIC_ALL != 0 {
            granted |= 0xF_01FF;
        }
        if granted & GENERIC_WRITE != 0 {
            granted |= Right::WriteProperty.mask();
        }
        let object_matches = ace.object_type.is_none_or(|t| objects.contains(&t));
        if granted & mask == mask && object_matches {
            return ace.allow;
        }
    }
    false
}

/// An entry counts on the OU unless it is inherit-only; on a child account when it is
/// inherited by containers (AD's objects are all containers) for that class or any.
fn applies(ace: &Ace, target: Target<'_>) -> bool {
    match target {
        Target::Ou => ace.flags & INHERIT_ONLY == 0,
        Target::Child { class } => {
            ace.flags & CONTAINER_INHERIT != 0 && ace.inherited_object_type.is_none_or(|t| t == *class)
        }
    }
}

/// The mask a grant asks for.
pub fn mask(right: Right) -> u32 {
    right.mask()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Guid = [1; 16];
    const TITLE: Guid = [2; 16];
    const PERSONAL_INFO: Guid = [3; 16];
    const RESET: Guid = [4; 16];

    fn sid_bytes(rid: u32) -> Vec<u8> {
        let mut b = vec![1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
        b.extend([7u32, 8, 9, rid].iter().flat_map(|x| x.to_le_bytes()));
        b[1] = 5;
        b
    }

    fn ace_bytes(
        kind: u8,
        flags: u8,
        mask: u32,
        object: Option<Guid>,
        inherited: Option<Guid>,
        rid: u32,
    ) -> Vec<u8> {
        let mut body = mask.to_le_bytes().to_vec();
        if kind >= 5 {
            let present = u32::from(object.is_some()) | (u32::from(inherited.is_some()) << 1);
            body.extend(present.to_le_bytes());
            body.extend(object.iter().flatten());
            body.extend(inherited.iter().flatten());
        }
        body.extend(sid_bytes(rid));
        let mut ace = vec![kind, flags];
        ace.extend(((body.len() + 4) as u16).to_le_bytes());
        ace.extend(body);
        ace
    }

    fn descriptor(aces: &[Vec<u8>]) -> Vec<u8> {
        let mut dacl = vec![4, 0, 0, 0];
        dacl.extend((aces.len() as u16).to_le_bytes());
        dacl.extend([0, 0]);
        aces.iter().for_each(|a| dacl.extend(a));
        let size = dacl.len() as u16;
        dacl[2..4].copy_from_slice(&size.to_le_bytes());
        let mut sd = vec![1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        sd.extend(20u32.to_le_bytes());
        sd.extend(dacl);
        sd
    }

    fn token(rid: u32) -> HashSet<String> {
        HashSet::from([format!("S-1-5-21-7-8-9-{rid}"), "S-1-5-11".to_string()])
    }

    #[test]
    fn sids_read_as_ad_writes_them() {
        assert_eq!(sid_string(&sid_bytes(1106)).as_deref(), Some("S-1-5-21-7-8-9-1106"));
        assert_eq!(sid_string(&[1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0]).as_deref(), Some("S-1-5-11"));
        assert_eq!(sid_string(&[1, 2, 0, 0]), None);
    }

    #[test]
    fn the_delegation_file_parses_whole() {
        let grants = delegation(Some("otherMailbox"));
        let data_lines = DELEGATION.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
        assert_eq!(grants.len(), data_lines + 1, "every line of the delegation is understood");
        assert!(grants.contains(&Grant { scope: Scope::Ou, right: Right::CreateChild, what: "user".into() }));
        assert!(grants.contains(&Grant {
            scope: Scope::User,
            right: Right::ExtendedRight,
            what: "User-Force-Change-Password".into()
        }));
        assert_eq!(grants.last().map(ToString::to_string).as_deref(), Some("user WP otherMailbox"));
    }

    #[test]
    fn inheritable_entries_grant_rights_on_accounts_created_in_the_ou() {
        let sd = descriptor(&[
            ace_bytes(5, 0x02, 0x1 | 0x2, Some(USER), None, 1106),
            ace_bytes(5, 0x0A, 0x20, Some(TITLE), Some(USER), 1106),
            ace_bytes(5, 0x0A, 0x100, Some(RESET), Some(USER), 1106),
        ]);
        let aces = parse_dacl(&sd).unwrap();
        assert_eq!(aces.len(), 3);
        let t = token(1106);
        assert!(allowed(&aces, &t, Target::Ou, 0x1, &[USER]));
        assert!(allowed(&aces, &t, Target::Ou, 0x2, &[USER]));
        assert!(allowed(&aces, &t, Target::Child { class: &USER }, 0x20, &[TITLE, PERSONAL_INFO]));
        assert!(allowed(&aces, &t, Target::Child { class: &USER }, 0x100, &[RESET]));
        // Not another attribute, not on the OU itself (inherit-only), not for another class,
        // not for another account.
        assert!(!allowed(&aces, &t, Target::Child { class: &USER }, 0x20, &[[9; 16]]));
        assert!(!allowed(&aces, &t, Target::Ou, 0x20, &[TITLE]));
        assert!(!allowed(&aces, &t, Target::Child { class: &[8; 16] }, 0x20, &[TITLE]));
        assert!(!allowed(&aces, &token(1107), Target::Child { class: &USER }, 0x20, &[TITLE]));
    }

    #[test]
    fn property_sets_generic_rights_and_denials_count_as_ad_counts_them() {
        let t = token(1106);
        let child = Target::Child { class: &USER };
        // A property set covers its attributes; "write all properties" and GENERIC_ALL cover all.
        let set =
            parse_dacl(&descriptor(&[ace_bytes(5, 0x02, 0x20, Some(PERSONAL_INFO), None, 1106)])).unwrap();
        assert!(allowed(&set, &t, child, 0x20, &[TITLE, PERSONAL_INFO]));
        let all = parse_dacl(&descriptor(&[ace_bytes(0, 0x02, 0x1000_0000, None, None, 1106)])).unwrap();
        assert!(allowed(&all, &t, child, 0x100, &[RESET]));
        // A group of the token counts (Authenticated Users here).
        let mut ace = ace_bytes(0, 0x02, 0x20, None, None, 0);
        let au = [1u8, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0];
        let cut = ace.len() - sid_bytes(0).len();
        ace.truncate(cut);
        ace.extend(au);
        let size = ace.len() as u16;
        ace[2..4].copy_from_slice(&size.to_le_bytes());
        let via_group = parse_dacl(&descriptor(&[ace])).unwrap();
        assert!(allowed(&via_group, &t, child, 0x20, &[TITLE]));
        // A deny before the allow wins; after it, the allow does.
        let deny = ace_bytes(6, 0x02, 0x20, Some(TITLE), None, 1106);
        let allow = ace_bytes(0, 0x02, 0x20, None, None, 1106);
        let denied = parse_dacl(&descriptor(&[deny.clone(), allow.clone()])).unwrap();
        assert!(!allowed(&denied, &t, child, 0x20, &[TITLE]));
        let granted = parse_dacl(&descriptor(&[allow, deny])).unwrap();
        assert!(allowed(&granted, &t, child, 0x20, &[TITLE]));
    }

    #[test]
    fn a_truncated_descriptor_is_an_error_not_a_panic() {
        let sd = descriptor(&[ace_bytes(5, 0x02, 0x1, Some(USER), None, 1106)]);
        for cut in [0, 10, 19, 24, 30, sd.len() - 1] {
            let _ = parse_dacl(&sd[..cut]);
        }
        assert!(parse_dacl(&sd[..10]).is_err());
    }
}
