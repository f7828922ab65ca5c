//! The operations a plan is made of: what each changes in the directory, said in full for the
//! dry run and `cuentas plan`, and without its values for the log.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// One change to the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryOp {
    /// A new account, enabled, with a new temporary password that must be changed at next logon.
    Create {
        sam: String,
        dn: String,
        attributes: Vec<(String, String)>,
        expires: Option<Date>,
    },
    /// A new temporary password, must be changed at next logon; a lockout is cleared.
    ResetPassword {
        sam: String,
    },
    SetAttributes {
        sam: String,
        changes: Vec<AttributeChange>,
    },
    /// `accountExpires` at the end of `expires`, or never.
    SetExpiry {
        sam: String,
        expires: Option<Date>,
    },
    Enable {
        sam: String,
    },
    Disable {
        sam: String,
    },
    AddToGroup {
        sam: String,
        group: String,
    },
    RemoveFromGroup {
        sam: String,
        group: String,
    },
    /// Into another OU (`modifydn`), keeping the CN.
    Move {
        sam: String,
        to_ou: String,
    },
    /// Removes the account; only ever from the retired OU.
    Delete {
        sam: String,
    },
}

/// An attribute's old and new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub attribute: String,
    pub from: String,
    pub to: String,
}

impl DirectoryOp {
    /// The account it acts on.
    pub fn sam(&self) -> &str {
        match self {
            DirectoryOp::Create { sam, .. }
            | DirectoryOp::ResetPassword { sam }
            | DirectoryOp::SetAttributes { sam, .. }
            | DirectoryOp::SetExpiry { sam, .. }
            | DirectoryOp::Enable { sam }
            | DirectoryOp::Disable { sam }
            | DirectoryOp::AddToGroup { sam, .. }
            | DirectoryOp::RemoveFromGroup { sam, .. }
            | DirectoryOp::Move { sam, .. }
            | DirectoryOp::Delete { sam } => sam,
        }
    }

    /// The operation without the values it writes, for the log: account names and attribute
    /// names only, never a document number, a personal address or a person's name.
    pub fn summary(&self) -> String {
        match self {
            DirectoryOp::Create { sam, .. } => format!("create {sam}"),
            DirectoryOp::ResetPassword { sam } => format!("reset the password of {sam}"),
            DirectoryOp::SetAttributes { sam, changes } => {
                let names: Vec<&str> = changes.iter().map(|c| c.attribute.as_str()).collect();
                format!("modify {sam}: {}", names.join(", "))
            }
            DirectoryOp::SetExpiry { sam, .. } => format!("set the expiry of {sam}"),
            DirectoryOp::Enable { sam } => format!("enable {sam}"),
            DirectoryOp::Disable { sam } => format!("disable {sam}"),
            DirectoryOp::AddToGroup { sam, group } => format!("add {sam} to group {group}"),
            DirectoryOp::RemoveFromGroup { sam, group } => format!("remove {sam} from group {group}"),
            DirectoryOp::Move { sam, .. } => format!("move {sam}"),
            DirectoryOp::Delete { sam } => format!("delete {sam}"),
        }
    }
}

impl fmt::Display for DirectoryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryOp::Create { sam, dn, attributes, expires } => {
                write!(f, "create {sam} at «{dn}», enabled, temporary password (must change at next logon)")?;
                if let Some(e) = expires {
                    write!(f, ", expires at the end of {e}")?;
                }
                let attrs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "; {}", attrs.join(", "))
            }
            DirectoryOp::ResetPassword { sam } => {
                write!(
                    f,
                    "reset the password of {sam} (temporary, must change at next logon; any lockout cleared)"
                )
            }
            DirectoryOp::SetAttributes { sam, changes } => {
                let c: Vec<String> =
                    changes.iter().map(|c| format!("{}: «{}» → «{}»", c.attribute, c.from, c.to)).collect();
                write!(f, "modify {sam}: {}", c.join(", "))
            }
            DirectoryOp::SetExpiry { sam, expires: Some(e) } => {
                write!(f, "set {sam} to expire at the end of {e}")
            }
            DirectoryOp::SetExpiry { sam, expires: None } => write!(f, "set {sam} to never expire"),
            DirectoryOp::Enable { sam } => write!(f, "enable {sam}"),
            DirectoryOp::Disable { sam } => write!(f, "disable {sam}"),
            DirectoryOp::AddToGroup { sam, group } => write!(f, "add {sam} to group {group}"),
            DirectoryOp::RemoveFromGroup { sam, group } => write!(f, "remove {sam} from group {group}"),
            DirectoryOp::Move { sam, to_ou } => write!(f, "move {sam} to «{to_ou}»"),
            DirectoryOp::Delete { sam } => write!(f, "delete {sam}"),
        }
    }
}

/// What a request will do to the directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// The account the plan is about.
    pub account: String,
    pub ops: Vec<DirectoryOp>,
    /// Whether carrying it out sets a new password that goes to the personal e-mail.
    pub sends_credentials: bool,
    /// Where the access data go when it is not the form's personal address: for a reset, the
    /// address on record for the account (set when the request is triaged).
    #[serde(default)]
    pub credentials_to: Option<String>,
    /// The account's institutional mailbox, told of what was done to it.
    #[serde(default)]
    pub notice_to: Option<String>,
    /// The personal address on record in the directory (`[directory] personal_email_attribute`)
    /// as the plan found it, told too: the mailbox may be closed to its holder. Never the form's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_personal: Option<String>,
    /// A *cesión*: the previous contractor's account, disabled by the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_holder: Option<String>,
}
