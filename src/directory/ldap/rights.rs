//! What `cuentas check` asks the directory about the bind account: who it is, which groups it is
//! in, and which rights of the delegation (`deploy/ad-delegation.txt`) it lacks on each OU and
//! group cuentas works in. The decisions are `directory::acl`'s; this module only reads.

use std::collections::{HashMap, HashSet};

use ldap3::controls::RawControl;
use ldap3::{Scope, SearchEntry, ldap_escape};

use super::{Ldap, LdapError, guid_string};
use crate::directory::acl::{self, Grant, Guid, Right, Target};
use crate::directory::privilege;

/// `LDAP_SERVER_SD_FLAGS_OID` asking for the DACL only (`SEQUENCE { INTEGER 4 }`): without it
/// AD also asks for the SACL, which only administrators may read, and returns nothing.
const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
const DACL_ONLY: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x04];
/// Everyone and Authenticated Users: in every bound account's token.
const WELL_KNOWN: [&str; 2] = ["S-1-1-0", "S-1-5-11"];
/// The account cuentas binds as.
#[derive(Debug, Clone)]
pub struct BindAccount {
    pub dn: String,
    /// The groups it is directly a member of, by name (its primary group, Domain Users, is not
    /// listed by AD).
    pub groups: Vec<String>,
    /// AD's administrative groups it is in, directly or through other groups.
    pub administrative: Vec<String>,
    token: HashSet<String>,
}

/// An OU or group cuentas works in, and the rights of the delegation missing there.
#[derive(Debug, Clone)]
pub struct Rights {
    pub dn: String,
    pub exists: bool,
    pub missing: Vec<Grant>,
    /// For a group: the administrative or protected group it is, or is nested in (a request
    /// that adds a member to it would make them an administrator).
    pub privileged: Option<String>,
}

/// GUIDs the delegation names: classes and attributes (with their property sets) from the
/// schema, extended rights from the configuration partition.
struct Schema {
    objects: HashMap<String, Vec<Guid>>,
    rights: HashMap<String, Guid>,
}

impl Schema {
    fn guids(&self, grant: &Grant) -> Result<Vec<Guid>, LdapError> {
        let found = match grant.right {
            Right::ExtendedRight => self.rights.get(&grant.what.to_lowercase()).map(|g| vec![*g]),
            _ => self.objects.get(&grant.what.to_lowercase()).cloned(),
        };
        found.ok_or_else(|| {
            LdapError::Inconsistent(format!(
                "the directory's schema has no «{}» (delegation line «{grant}»)",
                grant.what
            ))
        })
    }
}

impl Ldap {
    /// The bind account's entry, its direct groups and its security token.
    pub fn bind_account(&mut self) -> Result<BindAccount, LdapError> {
        let bind = self.settings.bind_dn.clone();
        let name = bind.rsplit('\\').next().unwrap_or(&bind);
        let e = ldap_escape(name);
        let filter = format!("(|(distinguishedName={e})(userPrincipalName={e})(sAMAccountName={e}))");
        let base = self.settings.base_dn.clone();
        let entries = self.search(&base, Scope::Subtree, &filter, &["objectSid", "memberOf"])?;
        let entry = entries.into_iter().next().ok_or_else(|| {
            LdapError::Inconsistent(format!("the bind account «{bind}» is not under {base}"))
        })?;
        let tokens = self.search(&entry.dn, Scope::Base, "(objectClass=*)", &["tokenGroups"])?;
        let sids = |e: &SearchEntry, k: &str| -> Vec<String> {
            super::octets(e, k).iter().filter_map(|b| acl::sid_string(b)).collect()
        };
        let mut token: HashSet<String> = WELL_KNOWN.iter().map(|s| s.to_string()).collect();
        token.extend(sids(&entry, "objectSid"));
        token.extend(tokens.iter().flat_map(|t| sids(t, "tokenGroups")));
        let groups = entry
            .attrs
            .get("memberOf")
            .into_iter()
            .flatten()
            .map(|dn| crate::directory::dn::first_value(dn))
            .collect();
        // AD's administrative groups by well-known SID: found in the account's token, they
        // count however deep the membership is nested, whatever the DC's language names them.
        let mut administrative: Vec<String> =
            token.iter().filter_map(|sid| privilege::administrative(sid)).map(String::from).collect();
        administrative.sort();
        Ok(BindAccount { dn: entry.dn, groups, administrative, token })
    }

    /// For each OU in `ous` and each group named in `groups`, the rights of `grants` the bind
    /// account lacks there. Creating accounts is asked of AD (`allowedChildClassesEffective`);
    /// the rest is worked out from the OU's DACL, whose inheritable entries every account
    /// created in it will carry.
    pub fn missing_rights(
        &mut self,
        account: &BindAccount,
        ous: &[String],
        groups: &[String],
        protected: &[String],
        grants: &[Grant],
    ) -> Result<Vec<Rights>, LdapError> {
        let schema = self.schema(grants)?;
        let user_class = Grant { scope: acl::Scope::Ou, right: Right::CreateChild, what: "user".into() };
        let user = schema.guids(&user_class)?.first().copied().ok_or_else(|| {
            LdapError::Inconsistent("the directory's schema gives the class «user» no schemaIDGUID".into())
        })?;
        let mut found = Vec::new();
        for ou in ous {
            found.push(self.ou_rights(account, ou, grants, &schema, &user)?);
        }
        for group in groups {
            found.push(self.group_rights(group, protected, grants)?);
        }
        Ok(found)
    }

    fn ou_rights(
        &mut self,
        account: &BindAccount,
        ou: &str,
        grants: &[Grant],
        schema: &Schema,
        user: &Guid,
    ) -> Result<Rights, LdapError> {
        let Some(entry) = self.entry_with_dacl(ou)? else {
            return Ok(Rights { dn: ou.to_string(), exists: false, missing: Vec::new(), privileged: None });
        };
        // Not readable (no "Read permissions" on the OU): every right would look missing.
        let dacl = super::octets(&entry, "nTSecurityDescriptor").into_iter().next().ok_or_else(|| {
            LdapError::Inconsistent(format!(
                "{ou}: the bind account cannot read its permissions (grant it «Read permissions» there)"
            ))
        })?;
        let aces = acl::parse_dacl(&dacl).map_err(|e| LdapError::Inconsistent(format!("{ou}: {e}")))?;
        let creatable: HashSet<String> = entry
            .attrs
            .get("allowedChildClassesEffective")
            .into_iter()
            .flatten()
            .map(|c| c.to_lowercase())
            .collect();
        let child = Target::Child { class: user };
        let mut missing = Vec::new();
        for grant in grants.iter().filter(|g| g.scope != acl::Scope::Group) {
            let guids = schema.guids(grant)?;
            let held = match (grant.scope, grant.right) {
                (acl::Scope::Ou, Right::CreateChild) => creatable.contains(&grant.what.to_lowercase()),
                // Moving or deleting an account: delete-child on its OU, or DELETE on the account.
                (acl::Scope::Ou, Right::DeleteChild) => {
                    acl::allowed(&aces, &account.token, Target::Ou, acl::mask(grant.right), &guids)
                        || acl::allowed(&aces, &account.token, child, acl::DELETE, &[])
                }
                (acl::Scope::Ou, _) => {
                    acl::allowed(&aces, &account.token, Target::Ou, acl::mask(grant.right), &guids)
                }
                _ => acl::allowed(&aces, &account.token, child, acl::mask(grant.right), &guids),
            };
            if !held {
                missing.push(grant.clone());
            }
        }
        Ok(Rights { dn: ou.to_string(), exists: true, missing, privileged: None })
    }

    /// A group's rights are asked of AD: `allowedAttributesEffective` on the group itself.
    fn group_rights(
        &mut self,
        name: &str,
        protected: &[String],
        grants: &[Grant],
    ) -> Result<Rights, LdapError> {
        let dn = match self.group_dn(name) {
            Ok(dn) => dn,
            // Only a group that is not there; two of that name, or a lost connection, are errors.
            Err(LdapError::NoSuchGroup { .. }) => {
                return Ok(Rights {
                    dn: name.to_string(),
                    exists: false,
                    missing: Vec::new(),
                    privileged: None,
                });
            }
            Err(e) => return Err(e),
        };
        let entries = self.search(&dn, Scope::Base, "(objectClass=*)", &["allowedAttributesEffective"])?;
        let writable: HashSet<String> = entries
            .iter()
            .flat_map(|e| e.attrs.get("allowedAttributesEffective").into_iter().flatten())
            .map(|a| a.to_lowercase())
            .collect();
        let missing = grants
            .iter()
            .filter(|g| g.scope == acl::Scope::Group && !writable.contains(&g.what.to_lowercase()))
            .cloned()
            .collect();
        let privileged = self.privileged_group(&dn, protected)?;
        Ok(Rights { dn, exists: true, missing, privileged })
    }

    /// The administrative group (by SID) or protected group (by name, `protected`) that the
    /// group `dn` is, or is nested in at any depth (`LDAP_MATCHING_RULE_IN_CHAIN`).
    fn privileged_group(&mut self, dn: &str, protected: &[String]) -> Result<Option<String>, LdapError> {
        let own = self.search(dn, Scope::Base, "(objectClass=group)", &["objectSid"])?;
        let filter = format!("(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={}))", ldap_escape(dn));
        let base = self.settings.base_dn.clone();
        let outer = self.search(&base, Scope::Subtree, &filter, &["objectSid"])?;
        for e in own.iter().chain(&outer) {
            let name = crate::directory::dn::first_value(&e.dn);
            let sid = super::octets(e, "objectSid").first().and_then(|b| acl::sid_string(b));
            if let Some(admin) = sid.as_deref().and_then(privilege::administrative) {
                return Ok(Some(if name == admin { name } else { format!("{name} ({admin})") }));
            }
            if protected.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// An OU's DACL and the classes AD says the bound account may create in it; `None` if there
    /// is no such object.
    fn entry_with_dacl(&mut self, dn: &str) -> Result<Option<SearchEntry>, LdapError> {
        let control = RawControl { ctype: SD_FLAGS_OID.into(), crit: true, val: Some(DACL_ONLY.to_vec()) };
        let attrs = vec!["nTSecurityDescriptor", "allowedChildClassesEffective"];
        let found = self.run("search", dn, |c| {
            c.with_controls(control)
                .search(dn, Scope::Base, "(objectClass=organizationalUnit)", attrs)?
                .success()
        });
        match found {
            Ok((entries, _)) => Ok(entries.into_iter().next().map(SearchEntry::construct)),
            // noSuchObject
            Err(LdapError::Operation { rc: 32, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn schema(&mut self, grants: &[Grant]) -> Result<Schema, LdapError> {
        let root = self.search(
            "",
            Scope::Base,
            "(objectClass=*)",
            &["schemaNamingContext", "configurationNamingContext"],
        )?;
        let context = |k: &str| root.first().and_then(|e| e.attrs.get(k)).and_then(|v| v.first()).cloned();
        let (Some(schema_nc), Some(config_nc)) =
            (context("schemaNamingContext"), context("configurationNamingContext"))
        else {
            return Err(LdapError::Inconsistent(
                "the root DSE names no schema or configuration partition".into(),
            ));
        };
        let names: HashSet<&str> =
            grants.iter().filter(|g| g.right != Right::ExtendedRight).map(|g| g.what.as_str()).collect();
        let filter: String = names.iter().map(|n| format!("(lDAPDisplayName={})", ldap_escape(*n))).collect();
        let attrs = ["lDAPDisplayName", "schemaIDGUID", "attributeSecurityGUID"];
        let mut objects = HashMap::new();
        for e in self.search(&schema_nc, Scope::OneLevel, &format!("(|{filter})"), &attrs)? {
            let name = e.attrs.get("lDAPDisplayName").and_then(|v| v.first()).map(|n| n.to_lowercase());
            let guids: Vec<Guid> = ["schemaIDGUID", "attributeSecurityGUID"]
                .iter()
                .filter_map(|k| super::octets(&e, k).into_iter().next())
                .filter_map(|b| Guid::try_from(b.as_slice()).ok())
                .collect();
            if let Some(name) = name {
                objects.insert(name, guids);
            }
        }
        let wanted: String = grants
            .iter()
            .filter(|g| g.right == Right::ExtendedRight)
            .map(|g| format!("(cn={})", ldap_escape(&g.what)))
            .collect();
        let mut rights = HashMap::new();
        if !wanted.is_empty() {
            let base = format!("CN=Extended-Rights,{config_nc}");
            for e in self.search(&base, Scope::OneLevel, &format!("(|{wanted})"), &["cn", "rightsGuid"])? {
                let first = |k: &str| e.attrs.get(k).and_then(|v| v.first()).cloned();
                if let (Some(cn), Some(guid)) =
                    (first("cn"), first("rightsGuid").and_then(|g| guid_bytes(&g)))
                {
                    rights.insert(cn.to_lowercase(), guid);
                }
            }
        }
        Ok(Schema { objects, rights })
    }
}

/// `00299570-246d-11d0-a768-00aa006e0529` in AD's binary order (the inverse of [`guid_string`]).
fn guid_bytes(s: &str) -> Option<Guid> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    (guid_string(&b) == s.trim().to_lowercase()).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_strings_turn_back_into_ad_s_bytes() {
        let s = "00299570-246d-11d0-a768-00aa006e0529";
        let b = guid_bytes(s).unwrap();
        assert_eq!(b[..4], [0x70, 0x95, 0x29, 0x00]);
        assert_eq!(guid_string(&b), s);
        assert_eq!(guid_bytes("not-a-guid"), None);
    }
}
