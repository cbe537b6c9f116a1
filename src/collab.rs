//! The collaboration domain: statuses and the lifecycle rules between them.

use serde::{Deserialize, Serialize};

/// Where a collaboration stands. Mirrors the Postgres enum `collab_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "collab_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CollabStatus {
    Pending,
    Negotiating,
    Fulfilling,
    Completed,
    Cancelled,
}

impl CollabStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [CollabStatus; 5] = [
        CollabStatus::Pending,
        CollabStatus::Negotiating,
        CollabStatus::Fulfilling,
        CollabStatus::Completed,
        CollabStatus::Cancelled,
    ];

    /// The spelling used in the database, the admin protocol and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CollabStatus::Pending => "pending",
            CollabStatus::Negotiating => "negotiating",
            CollabStatus::Fulfilling => "fulfilling",
            CollabStatus::Completed => "completed",
            CollabStatus::Cancelled => "cancelled",
        }
    }

    /// Completed and cancelled collaborations never change again.
    pub fn is_final(self) -> bool {
        matches!(self, CollabStatus::Completed | CollabStatus::Cancelled)
    }

    /// The statuses reachable in one step: the next stage, and cancellation while open.
    pub fn next_states(self) -> Vec<CollabStatus> {
        let forward = match self {
            CollabStatus::Pending => Some(CollabStatus::Negotiating),
            CollabStatus::Negotiating => Some(CollabStatus::Fulfilling),
            CollabStatus::Fulfilling => Some(CollabStatus::Completed),
            CollabStatus::Completed | CollabStatus::Cancelled => None,
        };
        let cancel = (!self.is_final()).then_some(CollabStatus::Cancelled);
        forward.into_iter().chain(cancel).collect()
    }

    /// Whether `self → to` is a legal move.
    pub fn can_move_to(self, to: CollabStatus) -> bool {
        self.next_states().contains(&to)
    }
}

impl std::fmt::Display for CollabStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CollabStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CollabStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::CollabStatus::{self, *};

    #[test]
    fn lifecycle_moves_forward_or_cancels() {
        assert!(Pending.can_move_to(Negotiating));
        assert!(Negotiating.can_move_to(Fulfilling));
        assert!(Fulfilling.can_move_to(Completed));
        assert!(!Pending.can_move_to(Fulfilling));
        assert!(!Negotiating.can_move_to(Pending));
        for open in [Pending, Negotiating, Fulfilling] {
            assert!(open.can_move_to(Cancelled));
        }
        for done in [Completed, Cancelled] {
            assert!(done.next_states().is_empty());
        }
        assert_eq!("Fulfilling".parse::<CollabStatus>(), Ok(Fulfilling));
        assert!("done".parse::<CollabStatus>().is_err());
    }
}

/// Post types a deliverable may name. A table: add a platform's format by adding a line.
pub const POST_TYPES: &[&str] = &[
    "tiktok_video",
    "tiktok_story",
    "instagram_reel",
    "instagram_post",
    "instagram_story",
    "instagram_carousel",
    "youtube_short",
    "youtube_video",
    "youtube_integration",
    "twitch_stream",
    "x_post",
    "linkedin_post",
    "pinterest_pin",
    "snapchat_story",
    "blog_post",
    "podcast_mention",
    "ugc_video",
];

/// Active ISO 4217 currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR \
FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS \
KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN \
MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG \
SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS \
VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// One thing the creator will publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deliverable {
    pub post_type: String,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub talking_points: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashtags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribution_keywords: Vec<String>,
}

/// An amount in a currency; amounts are kept as entered (two decimals at most).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: f64,
    pub currency: String,
}

/// How the creator is paid: any combination, at least one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compensation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_fee: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission_percent: Option<f64>,
    /// Gifted product, described in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

impl Compensation {
    fn is_empty(&self) -> bool {
        self.fixed_fee.is_none() && self.commission_percent.is_none() && self.product.is_none()
    }
}

/// A dated milestone ("draft", "publish", …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    #[serde(default = "default_deadline_label")]
    pub what: String,
    pub date: chrono::NaiveDate,
}

fn default_deadline_label() -> String {
    "deliver".into()
}

/// When things are due.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    #[serde(default)]
    pub deadlines: Vec<Deadline>,
}

/// The negotiable terms of a collaboration: what `collab create` and `collab update` set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    #[serde(default)]
    pub deliverables: Vec<Deliverable>,
    #[serde(default)]
    pub compensation: Compensation,
    #[serde(default)]
    pub timeline: Timeline,
    #[serde(default)]
    pub additional_terms: Option<String>,
}

/// A rule a set of terms breaks, naming the field so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidTerms {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidTerms {
    InvalidTerms { field: field.into(), message: message.into() }
}

impl Terms {
    /// Checks post types, quantities, compensation and amounts before anything is stored.
    pub fn validate(&self) -> Result<(), InvalidTerms> {
        for (i, d) in self.deliverables.iter().enumerate() {
            if !POST_TYPES.contains(&d.post_type.as_str()) {
                return Err(invalid(
                    format!("deliverables[{i}].post_type"),
                    format!(
                        "unknown post type {:?}; known: {}",
                        d.post_type,
                        POST_TYPES.join(", ")
                    ),
                ));
            }
            if d.quantity < 1 {
                return Err(invalid(format!("deliverables[{i}].quantity"), "must be at least 1"));
            }
        }
        let c = &self.compensation;
        if c.is_empty() {
            return Err(invalid(
                "compensation",
                "give at least one of fixed_fee, commission_percent or product",
            ));
        }
        if let Some(fee) = &c.fixed_fee {
            if !fee.amount.is_finite() || fee.amount < 0.0 {
                return Err(invalid("compensation.fixed_fee.amount", "must be a number ≥ 0"));
            }
            if !is_currency(&fee.currency) {
                return Err(invalid(
                    "compensation.fixed_fee.currency",
                    format!("{:?} is not an ISO 4217 currency code", fee.currency),
                ));
            }
        }
        if let Some(p) = c.commission_percent
            && (!p.is_finite() || !(0.0..=100.0).contains(&p))
        {
            return Err(invalid("compensation.commission_percent", "must be between 0 and 100"));
        }
        if c.product.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(invalid("compensation.product", "must not be empty"));
        }
        Ok(())
    }
}

/// Whether `code` is an active ISO 4217 code (upper case, as stored).
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && CURRENCIES.split_whitespace().any(|c| c == code)
}

#[cfg(test)]
mod terms_tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            deliverables: vec![Deliverable {
                post_type: "tiktok_video".into(),
                quantity: 2,
                talking_points: vec![],
                hashtags: vec!["#ad".into()],
                attribution_keywords: vec![],
            }],
            compensation: Compensation {
                fixed_fee: Some(Money { amount: 500.0, currency: "USD".into() }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(terms().validate(), Ok(()));
        let mut t = terms();
        t.deliverables[0].post_type = "tiktok_dance".into();
        assert_eq!(t.validate().unwrap_err().field, "deliverables[0].post_type");
        let mut t = terms();
        t.deliverables[0].quantity = 0;
        assert_eq!(t.validate().unwrap_err().field, "deliverables[0].quantity");
        let mut t = terms();
        t.compensation = Compensation::default();
        assert_eq!(t.validate().unwrap_err().field, "compensation");
        let mut t = terms();
        t.compensation.fixed_fee = Some(Money { amount: -1.0, currency: "USD".into() });
        assert_eq!(t.validate().unwrap_err().field, "compensation.fixed_fee.amount");
        let mut t = terms();
        t.compensation.fixed_fee = Some(Money { amount: 1.0, currency: "usd".into() });
        assert_eq!(t.validate().unwrap_err().field, "compensation.fixed_fee.currency");
        let mut t = terms();
        t.compensation.commission_percent = Some(150.0);
        assert_eq!(t.validate().unwrap_err().field, "compensation.commission_percent");
    }
}
