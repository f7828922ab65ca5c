//! The directory: pure plans from requests, and the ways of carrying them out: Active Directory
//! over LDAPS; the dry run, which records what it would do against a snapshot; and the shadow,
//! which reads the real AD and records what it would do there, writing nothing.

pub mod acl;
pub mod dn;
pub mod drift;
pub mod dryrun;
pub mod ldap;
pub mod naming;
pub mod ops;
pub mod password;
pub mod plan;
pub mod privilege;
pub mod snapshot;

use std::sync::Arc;

use self::dryrun::DryRun;
use self::ldap::{Ldap, LdapError};
use self::password::{Password, PasswordPolicy};
use self::plan::{Layout, Plan};
use self::snapshot::{Account, Snapshot, SnapshotError};
use crate::config::{Config, DirectoryMode};
use crate::request::Request;

/// A directory that cannot be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Ldap(#[from] LdapError),
}

/// Where plans are carried out.
pub enum Directory {
    DryRun(DryRun),
    Ldap(Box<Ldap>),
    /// AD read as `Ldap` reads it; `apply` says what it would do and writes nothing.
    Shadow(Box<Ldap>),
}

impl Directory {
    /// The directory `[directory] mode` names: the dry run with its snapshot loaded, or AD with
    /// its CA and bind password read (reached at the first operation).
    pub fn from_config(config: &Config) -> Result<Directory, SetupError> {
        Ok(match config.directory.mode {
            DirectoryMode::DryRun => {
                let snapshot = match &config.directory.snapshot_path {
                    Some(path) => Snapshot::load(path)?,
                    None => Snapshot::default(),
                };
                let dry = DryRun::new(snapshot, config.directory.personal_email_attribute.clone());
                Directory::DryRun(dry.kept_in(config.state_dir.join("directorio-simulado.json"))?)
            }
            mode @ (DirectoryMode::Ldap | DirectoryMode::Shadow) => {
                let settings = ldap::LdapSettings::from_config(config)?;
                let ldap = Box::new(Ldap::new(settings, config.calendar.time_zone().clone()));
                if mode == DirectoryMode::Shadow { Directory::Shadow(ldap) } else { Directory::Ldap(ldap) }
            }
        })
    }

    /// Whether nothing is written to AD (the dry run, the shadow): no hook follows a change.
    pub fn is_dry_run(&self) -> bool {
        !matches!(self, Directory::Ldap(_))
    }

    pub fn is_shadow(&self) -> bool {
        matches!(self, Directory::Shadow(_))
    }

    /// The reading side of AD, in the modes that read it.
    fn ldap(&mut self) -> Option<&mut Ldap> {
        match self {
            Directory::DryRun(_) => None,
            Directory::Ldap(ldap) | Directory::Shadow(ldap) => Some(ldap),
        }
    }

    /// What the directory holds that `request`'s plan depends on.
    pub fn snapshot_for(&mut self, request: &Request, layout: &Layout) -> Result<Arc<Snapshot>, LdapError> {
        match self {
            Directory::DryRun(dry) => Ok(dry.snapshot()),
            Directory::Ldap(ldap) | Directory::Shadow(ldap) => {
                Ok(Arc::new(ldap.snapshot_for(request, layout)?))
            }
        }
    }

    /// Looks up a batch's document numbers at once (the LDAP directory; nothing for the dry run).
    pub fn prefetch_employees(&mut self, ids: &[String]) -> Result<(), LdapError> {
        self.ldap().map_or(Ok(()), |ldap| ldap.prefetch_employees(ids))
    }

    pub fn clear_prefetch(&mut self) {
        if let Some(ldap) = self.ldap() {
            ldap.clear_prefetch();
        }
    }

    /// A connection, bound (the one open if it still is): proof that the directory can be used.
    pub fn connect(&mut self) -> Result<(), LdapError> {
        self.ldap().map_or(Ok(()), Ldap::connect)
    }

    /// Length of new passwords: at least 16, more if the domain asks for more.
    pub fn password_length(&mut self) -> Result<usize, LdapError> {
        match self.ldap() {
            None => Ok(16),
            Some(ldap) => Ok(ldap.password_policy()?.min_length.max(16)),
        }
    }

    /// The domain's password rules, which the access-data message states: read from AD (once,
    /// then kept); the dry run's are a new domain's.
    pub fn password_policy(&mut self) -> Result<PasswordPolicy, LdapError> {
        match self {
            Directory::DryRun(dry) => Ok(dry.password_policy()),
            Directory::Ldap(ldap) | Directory::Shadow(ldap) => ldap.password_policy(),
        }
    }

    /// Every user account of the managed OUs `ous`, with the times drift reports (the dry run:
    /// its simulated directory, as its plans left it).
    pub fn managed_accounts(&mut self, ous: &[String]) -> Result<Vec<Account>, LdapError> {
        match self {
            Directory::DryRun(dry) => Ok(dry
                .snapshot()
                .accounts()
                .filter(|a| ous.iter().any(|ou| crate::config::dn_within(&a.dn, ou)))
                .cloned()
                .collect()),
            Directory::Ldap(ldap) | Directory::Shadow(ldap) => ldap.managed_accounts(ous),
        }
    }

    /// The `mail` of the account at `dn`, wherever it lives (a manager outside the managed OUs).
    pub fn mail_of(&mut self, dn: &str) -> Result<Option<String>, LdapError> {
        match self {
            Directory::DryRun(dry) => Ok(dry.snapshot().by_dn(dn).map(|a| a.mail.clone())),
            Directory::Ldap(ldap) | Directory::Shadow(ldap) => ldap.mail_of(dn),
        }
    }

    /// Carries out `plan`; returns one line per operation done (the shadow: one per operation
    /// it would do, each read again from the plan, none sent to AD).
    pub fn apply(
        &mut self,
        plan: &Plan,
        password: Option<&Password>,
        layout: &Layout,
        request_id: &str,
    ) -> Result<Vec<String>, LdapError> {
        match self {
            Directory::DryRun(dry) => Ok(dry.apply(plan, request_id)),
            Directory::Ldap(ldap) => ldap.apply(plan, password, layout, request_id),
            Directory::Shadow(_) => Ok(plan.ops.iter().map(ToString::to_string).collect()),
        }
    }
}
