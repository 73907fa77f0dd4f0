//! Entities (instansi): the governments and institutions whose units are assessed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of an entity. Rankings are computed per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A ministry (kementerian).
    Ministry,
    /// A non-ministerial agency (lembaga).
    Agency,
    /// A provincial government (pemerintah provinsi).
    Province,
    /// A city government (pemerintah kota).
    City,
    /// A regency government (pemerintah kabupaten).
    Regency,
}

/// An unknown entity kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entity kind `{0}` (expected ministry, agency, province, city or regency)")]
pub struct UnknownEntityKind(pub String);

impl EntityKind {
    /// All kinds, in display order.
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Ministry,
        EntityKind::Agency,
        EntityKind::Province,
        EntityKind::City,
        EntityKind::Regency,
    ];

    /// The stable English identifier used in the API and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Ministry => "ministry",
            EntityKind::Agency => "agency",
            EntityKind::Province => "province",
            EntityKind::City => "city",
            EntityKind::Regency => "regency",
        }
    }

    /// The Indonesian name of the kind, as printed on certificates and public pages.
    pub fn label_id(self) -> &'static str {
        match self {
            EntityKind::Ministry => "Kementerian",
            EntityKind::Agency => "Lembaga",
            EntityKind::Province => "Pemerintah Provinsi",
            EntityKind::City => "Pemerintah Kota",
            EntityKind::Regency => "Pemerintah Kabupaten",
        }
    }

    /// Whether the entity is a local government below the province (city or regency).
    /// These are the ones ranked together inside their province.
    pub fn is_local_government(self) -> bool {
        matches!(self, EntityKind::City | EntityKind::Regency)
    }

    /// Whether entities of this kind belong to a province (local governments, including the
    /// provincial government itself). Ministries and agencies are national.
    pub fn has_province(self) -> bool {
        matches!(
            self,
            EntityKind::Province | EntityKind::City | EntityKind::Regency
        )
    }
}

impl FromStr for EntityKind {
    type Err = UnknownEntityKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEntityKind(s.to_owned()))
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_refuses_others() {
        for kind in EntityKind::ALL {
            assert_eq!(kind.as_str().parse::<EntityKind>().unwrap(), kind);
        }
        assert_eq!(
            " Regency ".parse::<EntityKind>().unwrap(),
            EntityKind::Regency
        );
        assert!("kabupaten".parse::<EntityKind>().is_err());
    }

    #[test]
    fn province_membership() {
        assert!(EntityKind::Regency.is_local_government());
        assert!(EntityKind::City.is_local_government());
        assert!(!EntityKind::Province.is_local_government());
        assert!(EntityKind::Province.has_province());
        assert!(!EntityKind::Ministry.has_province());
        assert!(!EntityKind::Agency.has_province());
    }
}
