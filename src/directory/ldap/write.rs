//! Writing to AD: a plan's operations, each one idempotent (the target is read first and only
//! what it lacks is written), keyed on `objectGUID`, with the safety rails checked again
//! against what AD holds at the moment of acting.

use std::collections::HashSet;

use jiff::civil::Date;
use ldap3::Mod;

use super::*;

impl Ldap {
    /// Applies a plan, each operation only if AD does not already hold its result. The
    /// password (plans that set one) is set on the create or reset operation.
    pub fn apply(
        &mut self,
        plan: &Plan,
        password: Option<&Password>,
        layout: &Layout,
        request_id: &str,
    ) -> Result<Vec<String>, LdapError> {
        let start = self.writes.len();
        self.known.clear();
        let result = plan.ops.iter().try_for_each(|op| self.apply_op(op, password, layout, request_id));
        self.known.clear();
        result.map(|()| self.writes[start..].to_vec())
    }

    fn apply_op(
        &mut self,
        op: &DirectoryOp,
        password: Option<&Password>,
        layout: &Layout,
        request_id: &str,
    ) -> Result<(), LdapError> {
        match op {
            DirectoryOp::Create { sam, dn, attributes, expires } => {
                let new = NewAccount { sam, dn, attributes, expires: *expires };
                self.create(new, password, layout, request_id)
            }
            DirectoryOp::ResetPassword { sam } => {
                let account = self.target(sam, layout)?;
                let password =
                    password.ok_or_else(|| LdapError::Inconsistent("no password to set".into()))?;
                self.set_password(&account, password)?;
                self.unlock(&account)
            }
            DirectoryOp::SetAttributes { sam, changes } => self.set_attributes(sam, changes, layout),
            DirectoryOp::SetExpiry { sam, expires } => self.set_expiry(sam, *expires, layout),
            DirectoryOp::Enable { sam } => self.set_disabled(sam, false, layout),
            DirectoryOp::Disable { sam } => self.set_disabled(sam, true, layout),
            DirectoryOp::AddToGroup { sam, group } => self.membership(sam, group, true, layout),
            DirectoryOp::RemoveFromGroup { sam, group } => self.membership(sam, group, false, layout),
            DirectoryOp::Move { sam, to_ou } => self.move_to(sam, to_ou, layout),
            DirectoryOp::Delete { sam } => self.delete(sam, layout),
        }
    }

    /// Replaces the attributes that differ from what AD holds.
    fn set_attributes(
        &mut self,
        sam: &str,
        changes: &[AttributeChange],
        layout: &Layout,
    ) -> Result<(), LdapError> {
        let account = self.target(sam, layout)?;
        let target = guid_dn(&account);
        let current = |attr: &str| match attr {
            "givenName" => account.given_name.clone(),
            "sn" => account.surname.clone(),
            "department" => account.department.clone(),
            "title" => account.title.clone(),
            "manager" => account.manager_dn.clone(),
            "employeeType" => account.employee_type.clone(),
            "description" => account.description.clone(),
            "displayName" => account.display_name.clone(),
            _ => String::new(),
        };
        let mods: Vec<Mod<Vec<u8>>> = changes
            .iter()
            .filter(|c| !current(&c.attribute).eq(&c.to))
            .map(|c| {
                Mod::Replace(c.attribute.clone().into_bytes(), HashSet::from([c.to.clone().into_bytes()]))
            })
            .collect();
        if mods.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> =
            changes.iter().filter(|c| current(&c.attribute) != c.to).map(|c| c.attribute.as_str()).collect();
        let what = format!("modify {sam}: replace {}", names.join(", "));
        self.write(what, &account.dn, "modify", |c| c.modify(&target, mods))?;
        let personal = self.settings.personal_email_attribute.clone();
        self.update_known(sam, |a| {
            for c in changes {
                a.set(&c.attribute, &c.to, personal.as_deref());
            }
        });
        Ok(())
    }

    /// `accountExpires` at the end of the given day (or never).
    fn set_expiry(&mut self, sam: &str, expires: Option<Date>, layout: &Layout) -> Result<(), LdapError> {
        let account = self.target(sam, layout)?;
        if account.expires == expires {
            return Ok(());
        }
        let value = expires.map_or(0, |d| end_of_day_filetime(d, &self.tz)).to_string();
        let target = guid_dn(&account);
        let mods = vec![Mod::Replace(b"accountExpires".to_vec(), HashSet::from([value.into_bytes()]))];
        self.write(format!("modify {sam}: replace accountExpires"), &account.dn, "modify", |c| {
            c.modify(&target, mods)
        })?;
        self.update_known(sam, |a| a.expires = expires);
        Ok(())
    }

    /// Moves the account to another managed OU, keeping its RDN.
    fn move_to(&mut self, sam: &str, to_ou: &str, layout: &Layout) -> Result<(), LdapError> {
        let account = self.target(sam, layout)?;
        if !layout.config.managed_ous.iter().any(|m| dn_within(to_ou, m)) {
            return Err(LdapError::Refused(format!("«{to_ou}» is outside the managed OUs")));
        }
        if super::super::dn::equal(super::super::dn::parent(&account.dn), to_ou) {
            return Ok(());
        }
        let rdn = super::super::dn::first_rdn(&account.dn).to_string();
        let target = guid_dn(&account);
        let to = to_ou.to_string();
        self.write(format!("modrdn {sam}: to {to_ou}"), &account.dn, "modifydn", |c| {
            c.modifydn(&target, &rdn, true, Some(&to))
        })?;
        let dn = format!("{rdn},{to_ou}");
        self.update_known(sam, |a| a.dn = dn);
        Ok(())
    }

    /// Deletes an account that waits, disabled, in the retired OU (and only there).
    fn delete(&mut self, sam: &str, layout: &Layout) -> Result<(), LdapError> {
        let Some(account) = self.account_by_sam(sam)? else { return Ok(()) };
        layout.guard(&account).map_err(|e| LdapError::Refused(e.reason()))?;
        let retired = layout.config.retired_ou.clone().unwrap_or_default();
        if retired.is_empty() || !dn_within(&account.dn, &retired) {
            return Err(LdapError::Refused(format!(
                "«{sam}» is not in the retired OU; accounts are only deleted from there"
            )));
        }
        let target = guid_dn(&account);
        self.write(format!("delete {sam}"), &account.dn, "delete", |c| c.delete(&target))
    }

    fn create(
        &mut self,
        new: NewAccount<'_>,
        password: Option<&Password>,
        layout: &Layout,
        request_id: &str,
    ) -> Result<(), LdapError> {
        let NewAccount { sam, dn, attributes, expires } = new;
        let password =
            password.ok_or_else(|| LdapError::Inconsistent("a creation needs a password".into()))?;
        let clash = self.accounts(&format!("(|{})", name_clauses(sam, &layout.config.domain)))?;
        if let Some(other) = clash.iter().find(|a| !a.sam.eq_ignore_ascii_case(sam)) {
            return Err(LdapError::Operation {
                op: "add",
                target: dn.to_string(),
                rc: 68,
                text: format!("«{sam}» is already the mail or UPN of «{}»", other.sam),
            });
        }
        if let Some(existing) = clash.into_iter().find(|a| a.sam.eq_ignore_ascii_case(sam)) {
            // Ours from an interrupted run: finish it (new password, must change, enabled).
            if existing.description != request_id {
                return Err(LdapError::Operation {
                    op: "add",
                    target: dn.to_string(),
                    rc: 68,
                    text: format!("«{sam}» was taken by someone else after it was planned"),
                });
            }
            layout.guard(&existing).map_err(|e| LdapError::Refused(e.reason()))?;
            self.known.insert(sam.to_lowercase(), existing.clone());
            self.set_password(&existing, password)?;
            return self.set_disabled(sam, false, layout);
        }
        let ou = super::super::dn::parent(dn);
        if !layout.config.managed_ous.iter().any(|m| dn_within(ou, m)) {
            return Err(LdapError::Refused(format!("«{dn}» is outside the managed OUs")));
        }
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![(
            b"objectClass".to_vec(),
            ["top", "person", "organizationalPerson", "user"].iter().map(|c| c.as_bytes().to_vec()).collect(),
        )];
        for (k, v) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            attrs.push((k.clone().into_bytes(), HashSet::from([v.clone().into_bytes()])));
        }
        if let Some(d) = expires {
            attrs.push((
                b"accountExpires".to_vec(),
                HashSet::from([end_of_day_filetime(d, &self.tz).to_string().into_bytes()]),
            ));
        }
        // The password goes in the same Add as the enabled flag: AD refuses to enable an
        // account without one.
        attrs.push((b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(password)])));
        attrs
            .push((b"userAccountControl".to_vec(), HashSet::from([NORMAL_ACCOUNT.to_string().into_bytes()])));
        let dn_owned = dn.to_string();
        self.write(format!("add {dn}"), dn, "add", |c| c.add(&dn_owned, attrs))?;
        // Just written: what it holds is known without reading it back (targets by DN).
        let created = Account {
            sam: sam.to_string(),
            dn: dn.to_string(),
            enabled: true,
            uac: NORMAL_ACCOUNT,
            expires,
            description: request_id.to_string(),
            ..Account::default()
        };
        self.known.insert(sam.to_lowercase(), created.clone());
        self.must_change_password(&created)
    }

    fn set_password(&mut self, account: &Account, password: &Password) -> Result<(), LdapError> {
        let target = guid_dn(account);
        let mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(password)]))];
        self.write(format!("modify {}: replace unicodePwd", account.sam), &account.dn, "modify", |c| {
            c.modify(&target, mods)
        })?;
        self.must_change_password(account)
    }

    /// Clears a lockout (`lockoutTime` 0 is the one value AD lets a client write there).
    fn unlock(&mut self, account: &Account) -> Result<(), LdapError> {
        if !account.locked {
            return Ok(());
        }
        let target = guid_dn(account);
        let mods = vec![Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()]))];
        self.write(
            format!("modify {}: replace lockoutTime (unlock)", account.sam),
            &account.dn,
            "modify",
            |c| c.modify(&target, mods),
        )
    }

    fn must_change_password(&mut self, account: &Account) -> Result<(), LdapError> {
        let target = guid_dn(account);
        let mods = vec![Mod::Replace(b"pwdLastSet".to_vec(), HashSet::from([b"0".to_vec()]))];
        self.write(format!("modify {}: replace pwdLastSet", account.sam), &account.dn, "modify", |c| {
            c.modify(&target, mods)
        })
    }

    fn set_disabled(&mut self, sam: &str, disabled: bool, layout: &Layout) -> Result<(), LdapError> {
        let account = self.target(sam, layout)?;
        let target = guid_dn(&account);
        let uac = account.uac;
        // Flip only the disable bit; the others (password never expires, smartcard…) stay.
        let wanted = if disabled { uac | ACCOUNTDISABLE } else { uac & !ACCOUNTDISABLE };
        if wanted == uac {
            return Ok(());
        }
        let mods = vec![Mod::Replace(
            b"userAccountControl".to_vec(),
            HashSet::from([wanted.to_string().into_bytes()]),
        )];
        let what = format!(
            "modify {sam}: replace userAccountControl ({})",
            if disabled { "disable" } else { "enable" }
        );
        self.write(what, &account.dn, "modify", |c| c.modify(&target, mods))?;
        self.update_known(sam, |a| {
            a.uac = wanted;
            a.enabled = !disabled;
        });
        Ok(())
    }

    fn membership(&mut self, sam: &str, group: &str, add: bool, layout: &Layout) -> Result<(), LdapError> {
        if !layout.config.allowed_groups.iter().any(|g| g.eq_ignore_ascii_case(group)) {
            return Err(LdapError::Refused(format!("group «{group}» is not in allowed_groups")));
        }
        let account = self.target(sam, layout)?;
        let group_dn = self.group_dn(group)?;
        let member = account.groups.iter().any(|g| g.eq_ignore_ascii_case(group));
        if member == add {
            return Ok(());
        }
        let value = HashSet::from([account.dn.clone().into_bytes()]);
        let m =
            if add { Mod::Add(b"member".to_vec(), value) } else { Mod::Delete(b"member".to_vec(), value) };
        let what = format!("modify {group}: {} member {sam}", if add { "add" } else { "delete" });
        let result = self.write(what, &group_dn.clone(), "modify", |c| c.modify(&group_dn, vec![m]));
        match result {
            // Already a member (20) / already not (16): someone else got there first.
            Err(LdapError::Operation { rc: 20 | 16 | 53, .. }) if !add => {}
            Err(LdapError::Operation { rc: 20 | 68, .. }) if add => {}
            other => other?,
        }
        let group = group.to_string();
        self.update_known(sam, |a| {
            a.groups.retain(|g| !g.eq_ignore_ascii_case(&group));
            if add {
                a.groups.push(group);
            }
        });
        Ok(())
    }
}

/// The account a `DirectoryOp::Create` makes.
struct NewAccount<'a> {
    sam: &'a str,
    dn: &'a str,
    attributes: &'a [(String, String)],
    expires: Option<Date>,
}
